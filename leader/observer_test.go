package leader

import (
	"context"
	"testing"

	"github.com/regent-k8s/regent/kubefake"
)

func TestObserverReportsLeaderChangesInOrder(t *testing.T) {
	env := kubefake.NewEnv()
	a, b := newElection(t, env, "a"), newElection(t, env, "b")
	obs := NewObserver(a.Lock())
	ctx, cancel := context.WithCancel(context.Background())
	changes := make(chan Change, 10)
	done := make(chan error, 1)
	go func() { done <- obs.Run(ctx, func(c Change) { changes <- c }) }()

	if c := kubefake.Receive(t, changes, "the initial state"); c.Leader != "" {
		t.Fatalf("initial leader %q, want none", c.Leader)
	}
	for _, e := range []*Election{a, b} {
		l, err := e.Lead(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := e.Lock().Identity()
		if c := kubefake.Receive(t, changes, "the new leader"); c.Leader != want || c.Token != l.Token() {
			t.Fatalf("observed %+v, want leader %q with token %v", c, want, l.Token())
		}
		if cur, ok := obs.Leader(); !ok || cur.Leader != want {
			t.Fatalf("Leader() = %+v, %v; want %q", cur, ok, want)
		}
		if err := l.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		if c := kubefake.Receive(t, changes, "the release"); c.Leader != "" {
			t.Fatalf("observed %+v after release, want no leader", c)
		}
	}
	cancel()
	if err := kubefake.Receive(t, done, "Run to return"); err != nil {
		t.Fatalf("Run = %v", err)
	}
}
