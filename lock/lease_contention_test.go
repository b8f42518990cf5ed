package lock

import (
	"context"
	"testing"
	"time"

	"github.com/regent-k8s/regent/kubefake"
)

func TestContentionLevel(t *testing.T) {
	var c contention
	for range 2 {
		if d := c.delay(); d != 0 {
			t.Fatalf("delay at level %d = %v, want 0", c.level, d)
		}
		c.lost()
	}
	for range 20 {
		c.lost()
	}
	if c.level != maxContentionLevel {
		t.Fatalf("level after 20 lost races = %d, want the cap %d", c.level, maxContentionLevel)
	}
	for range 100 {
		if d := c.delay(); d < 0 || d >= 128*time.Millisecond {
			t.Fatalf("delay at the cap = %v, want in [0, 128ms)", d)
		}
	}
	c.won()
	if c.level != maxContentionLevel-2 {
		t.Fatalf("level after a win = %d, want %d", c.level, maxContentionLevel-2)
	}
	for range 10 {
		c.won()
	}
	if c.level != 0 {
		t.Fatalf("level after many wins = %d, want 0", c.level)
	}
}

func TestAcquireLosingTheRaceRaisesContentionAndWritesOnce(t *testing.T) {
	// The rival's write lands just before this process's. The watch opens with a synthetic ADDED
	// event of the Lease, as the real API server's does, so the free version this process wrote
	// against is observed a second time after its write lost: that repetition must not start
	// another write, nor plan one.
	env := kubefake.NewEnv(leaseObject("", 2, kubefake.Epoch))
	l := newTestLease(t, env, me)
	env.React("update", "leases", raceOnce(t, env))
	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(ctx, l)
	env.Await(t, "waiting on the rival's expiry", func() bool { return env.Clock.Waiters() == 1 })
	cancel()
	kubefake.Receive(t, res, "Acquire to return")
	if l.contention.level != 1 {
		t.Errorf("contention level = %d, want 1 after one lost race", l.contention.level)
	}
	if n := countActions(env, "update"); n != 1 {
		t.Errorf("%d updates, want 1", n)
	}
	if n := env.Clock.TimersCreated(); n != 1 {
		t.Errorf("%d timers created, want only the rival's expiry timer", n)
	}
}

func TestAcquireUnderContentionWaitsBeforeWriting(t *testing.T) {
	env := kubefake.NewEnv(leaseObject("", 4, kubefake.Epoch))
	l := newTestLease(t, env, me)
	l.contention.level = 4 // delays below 4 ms
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the stagger timer", func() bool { return env.Clock.Waiters() == 1 })
	if n := countActions(env, "update"); n != 0 {
		t.Fatalf("%d updates before the stagger delay passed, want 0", n)
	}
	env.Clock.Step(4 * time.Millisecond)
	got := kubefake.Receive(t, res, "acquisition")
	if got.err != nil {
		t.Fatalf("Acquire: %v", got.err)
	}
	defer releaseTerm(t, got.term)
	if l.contention.level != 2 {
		t.Errorf("contention level after winning = %d, want 2", l.contention.level)
	}
}

func TestAcquireUnderContentionStandsDownWhenAnotherTakesTheLease(t *testing.T) {
	env := kubefake.NewEnv(leaseObject("", 4, kubefake.Epoch))
	l := newTestLease(t, env, me)
	l.contention.level = 4
	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(ctx, l)
	env.Await(t, "the stagger timer", func() bool { return env.Clock.Waiters() == 1 })

	putLease(t, env, leaseObject(rival, 5, kubefake.Epoch)) // someone else's write arrives first
	// The stagger timer is dropped and the expiry timer of the rival's record is set in its place.
	env.Await(t, "the rival's expiry timer", func() bool {
		return env.Clock.TimersCreated() == 2 && env.Clock.Waiters() == 1
	})
	env.Clock.Step(4 * time.Millisecond)
	if n := countActions(env, "update"); n != 0 {
		t.Errorf("%d updates after the rival took the Lease, want 0", n)
	}
	cancel()
	kubefake.Receive(t, res, "Acquire to return")
	if l.contention.level != 4 {
		t.Errorf("contention level = %d, want 4 unchanged: no race was run", l.contention.level)
	}
}
