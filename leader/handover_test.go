package leader

import (
	"context"
	"errors"
	"testing"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

func TestHandOverPassesTheLeadershipToTheNamedCandidate(t *testing.T) {
	env := kubefake.NewEnv()
	a, b := newElection(t, env, "a_1"), newElection(t, env, "b_2")
	la, err := a.Lead(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	led := make(chan *Leadership, 1)
	go func() {
		lb, err := b.Lead(context.Background())
		if err != nil {
			t.Error(err)
		}
		led <- lb
	}()
	env.Await(t, "b to wait for the held lease", func() bool { return env.Clock.Waiters() >= 2 })
	if err := la.HandOver(context.Background(), ""); err == nil || la.Err() != nil {
		t.Fatalf("HandOver to no one = %v with the leadership ending (%v); want a refusal that leaves it", err, la.Err())
	}
	if err := la.HandOver(context.Background(), "b_2"); err != nil {
		t.Fatalf("HandOver: %v", err)
	}
	if !errors.Is(la.Err(), lock.ErrReleased) {
		t.Errorf("the handed-over leadership's Err = %v, want lock.ErrReleased", la.Err())
	}
	lb := kubefake.Receive(t, led, "b to lead, with no time passing")
	if lb == nil {
		t.FailNow()
	}
	if err := lb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := la.Release(context.Background()); err != nil {
		t.Errorf("Release after HandOver = %v, want the handover's result (nil)", err)
	}
}
