package leader

import (
	"context"
	"errors"
	"testing"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

// nilCtx is a nil context, passed on purpose.
var nilCtx context.Context

func TestZeroValuesAreRefusedWithoutPanicking(t *testing.T) {
	env := kubefake.NewEnv()
	l, err := lock.NewLease(env.Client.CoordinationV1(), "default", "lock", lock.WithIdentity("me"), lock.WithClock(env.Clock))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(l, nil) // a nil option is skipped
	if err != nil {
		t.Fatalf("New with a nil option: %v", err)
	}
	var zeroElection Election
	var zeroObserver Observer
	work := func(context.Context) error { return nil }
	tests := []struct {
		name string
		call func() error
	}{
		{"New nil lock", func() error { _, err := New(nil); return err }},
		{"RetryOnLost nil work", func() error { return RetryOnLost(nil)(context.Background()) }},
		{"RetryOnLost nil ctx", func() error { return RetryOnLost(work, nil)(nilCtx) }},
		{"RunAsLeader nil work", func() error { return e.RunAsLeader(context.Background(), nil) }},
		{"RunAsLeader nil ctx", func() error { return e.RunAsLeader(nilCtx, work) }},
		{"AsLeader nil work", func() error { return e.AsLeader(nil)(context.Background()) }},
		{"Lead nil ctx", func() error { _, err := e.Lead(nilCtx); return err }},
		{"zero Election Lead", func() error { _, err := zeroElection.Lead(context.Background()); return err }},
		{"zero Election RunAsLeader", func() error { return zeroElection.RunAsLeader(context.Background(), work) }},
		{"zero Election Observe", func() error { return zeroElection.Observe(context.Background(), nil) }},
		{"NewObserver nil lock", func() error { return NewObserver(nil).Run(context.Background(), nil) }},
		{"zero Observer", func() error { return zeroObserver.Run(context.Background(), nil) }},
		{"Observer nil ctx", func() error { return NewObserver(l).Run(nilCtx, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, lock.ErrInvalidConfig) {
				t.Errorf("got %v, want an error matching lock.ErrInvalidConfig", err)
			}
		})
	}
	if _, ok := FromContext(nilCtx); ok {
		t.Error("FromContext(nil) reported a leadership")
	}
	if _, ok := TokenFrom(nilCtx); ok {
		t.Error("TokenFrom(nil) reported a token")
	}
}
