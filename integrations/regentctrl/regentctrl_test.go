package regentctrl

import (
	"context"
	"errors"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/regent-k8s/regent/lock"
)

func TestNewRefusesMissingParts(t *testing.T) {
	setup := func(context.Context, manager.Manager) ([]controller.Controller, error) { return nil, nil }
	for _, tt := range []struct {
		field string
		err   error
	}{
		{"mgr", func() error { _, err := New(nil, nil, setup); return err }()},
	} {
		var ce *lock.ConfigError
		if !errors.As(tt.err, &ce) || ce.Field != tt.field {
			t.Errorf("New = %v, want a ConfigError naming %s", tt.err, tt.field)
		}
	}
}

func TestNewControllerCanBeBuiltOnceForEveryTerm(t *testing.T) {
	r := reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) { return reconcile.Result{}, nil })
	for term := range 3 {
		if _, err := NewController("same-name", controller.Options{Reconciler: r}); err != nil {
			t.Fatalf("term %d: %v", term, err)
		}
	}
}
