package contextinfo

import (
	"context"
	"errors"
	"testing"

	"k8s.io/client-go/kubernetes/fake"
)

func TestLoadRefusesNilArgumentsWithoutPanicking(t *testing.T) {
	pods := fake.NewClientset().CoreV1()
	env := WithEnv(func(k string) string { return map[string]string{EnvPodNamespace: "ns"}[k] })
	tests := []struct {
		name string
		call func() error
	}{
		//lint:ignore SA1012 a nil context is what is tested
		{name: "nil ctx", call: func() error { _, err := Load(nil, pods, env); return err }},
		{name: "nil pods", call: func() error { _, err := Load(context.Background(), nil, env); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrNilArgument) {
				t.Errorf("got %v, want ErrNilArgument", err)
			}
		})
	}
	// Nil options and a nil getenv are ignored.
	if _, err := Load(context.Background(), pods, nil, WithEnv(nil), env); err != nil {
		t.Errorf("nil options: %v", err)
	}
}
