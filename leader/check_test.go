package leader

import (
	"context"
	"errors"
	"testing"

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
