package leader

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

func TestCheckInsideAndOutsideTheWork(t *testing.T) {
	if err := Check(context.Background()); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("Check outside a leadership = %v, want ErrNotLeading", err)
	}
	e := newElection(t, kubefake.NewEnv(), "a_1")
	var inside error
	err := e.RunAsLeader(context.Background(), func(ctx context.Context) error {
		inside = Check(ctx)
		return nil
	})
	if err != nil {
		t.Fatalf("RunAsLeader: %v", err)
	}
	if inside != nil {
		t.Fatalf("Check inside the work = %v, want nil", inside)
	}
	l, err := e.Lead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := Check(l.Context()); !errors.Is(err, lock.ErrReleased) {
		t.Fatalf("Check after Release = %v, want lock.ErrReleased", err)
	}
}

func TestALossFoundByCheckIsReportedThoughTheWorkReturnsAtOnce(t *testing.T) {
	env := kubefake.NewEnv()
	clk := kubefake.NewPausedClock(env.Clock)
	core, logs := observer.New(zap.WarnLevel)
	l, err := lock.NewLease(env.Client.CoordinationV1(), "default", "lock", lock.WithIdentity("a_1"), lock.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(l, WithClock(env.Clock), WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	for range 20 { // the report must not depend on which goroutine runs first
		err = e.RunAsLeader(context.Background(), func(ctx context.Context) error {
			clk.SetPause(l.Timings().RenewDeadline) // resumed past the deadline
			return Check(ctx)
		})
		if !errors.Is(err, ErrLost) {
			t.Fatalf("RunAsLeader = %v, want ErrLost", err)
		}
		clk.SetPause(0)
	}
	if n := logs.FilterMessage("leadership lost; cancelling the work").Len(); n != 20 {
		t.Errorf("the loss was logged %d times in 20 terms ended by Check, want 20", n)
	}
}
