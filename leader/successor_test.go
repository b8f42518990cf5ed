package leader

import (
	"context"
	"errors"
	"testing"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

// stopLeading runs a's work as leader until ctx is cancelled (the process stopping), while b
// waits; it returns a channel on which b's leadership arrives.
// timers is the count of fake-clock timers created before the stop.
func stopLeading(t *testing.T, env *kubefake.Env, a, b *Election) (led <-chan *Leadership, result <-chan error, timers int64) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	working := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- a.RunAsLeader(ctx, func(ctx context.Context) error {
			close(working)
			<-ctx.Done()
			return nil
		})
	}()
	kubefake.Receive(t, working, "a to lead")
	leds := leadAsync(t, b)
	env.Await(t, "b to wait for the held lease", func() bool { return env.Clock.Waiters() >= 3 })
	timers = env.Clock.TimersCreated()
	cancel() // SIGTERM
	return leds, res, timers
}

func TestAStoppingLeaderHandsOverToItsSuccessor(t *testing.T) {
	env := kubefake.NewEnv()
	var asked *lock.Term
	a := newElection(t, env, "a_1", WithSuccessor(func(_ context.Context, term *lock.Term) (string, error) {
		asked = term
		return "b_2", nil
	}))
	led, result, _ := stopLeading(t, env, a, newElection(t, env, "b_2"))
	if err := kubefake.Receive(t, result, "a's RunAsLeader to return"); err != nil {
		t.Fatalf("RunAsLeader = %v, want nil: the process was stopping", err)
	}
	if asked == nil || asked.Holder() != "a_1" {
		t.Fatalf("the successor was asked with term %v, want a's", asked)
	}
	lb := kubefake.Receive(t, led, "b, the successor, to lead with no time passing")
	if err := lb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAStoppingLeaderHandsOverOnlyToTheSuccessorNamed(t *testing.T) {
	env := kubefake.NewEnv()
	a := newElection(t, env, "a_1", WithSuccessor(func(context.Context, *lock.Term) (string, error) { return "c_3", nil }))
	led, result, timers := stopLeading(t, env, a, newElection(t, env, "b_2"))
	kubefake.Receive(t, result, "a's RunAsLeader to return")
	if lease := holder(t, env); lease != "a_1" {
		t.Fatalf("after a handover to c_3 the lease names %q, want a_1 still (held for c_3)", lease)
	}
	select {
	case <-led:
		t.Fatal("b led at once although a handed over to c_3")
	default:
	}
	env.Await(t, "b to time the handover record", func() bool { return env.Clock.TimersCreated() > timers })
	env.Clock.Step(lock.DefaultTimings.RetryPeriod) // c_3 never comes: after the bound, anyone may
	lb := kubefake.Receive(t, led, "b to lead once the handover's bound passed")
	if err := lb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestASuccessorThatFailsLeavesAPlainRelease(t *testing.T) {
	env := kubefake.NewEnv()
	a := newElection(t, env, "a_1", WithSuccessor(func(context.Context, *lock.Term) (string, error) {
		return "", errors.New("pods: forbidden")
	}))
	led, result, _ := stopLeading(t, env, a, newElection(t, env, "b_2"))
	kubefake.Receive(t, result, "a's RunAsLeader to return")
	lb := kubefake.Receive(t, led, "b to take the released lease at once")
	if err := lb.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestWorkThatReturnsOnItsOwnIsReleasedNotHandedOver(t *testing.T) {
	env := kubefake.NewEnv()
	called := false
	a := newElection(t, env, "a_1", WithSuccessor(func(context.Context, *lock.Term) (string, error) {
		called = true
		return "b_2", nil
	}))
	if err := a.RunAsLeader(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if called {
		t.Error("the successor was asked although the work returned on its own")
	}
}
