package lock

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/kubefake"
)

func TestContentionLevel(t *testing.T) {
	const widest = 2 * time.Second // the default RetryPeriod
	var c contention
	for range 2 {
		if d := c.delay(widest); d != 0 {
			t.Fatalf("delay at level %d = %v, want 0", c.level, d)
		}
		c.lost(widest)
	}
	for range 30 {
		c.lost(widest)
	}
	// 2^(13-2) ms = 2048 ms is the first window at least 2 s wide.
	if c.level != 13 {
		t.Fatalf("level after 32 lost races = %d, want the cap 13", c.level)
	}
	var widestSeen time.Duration
	for range 1000 {
		d := c.delay(widest)
		if d < 0 || d >= widest {
			t.Fatalf("delay at the cap = %v, want in [0, %v)", d, widest)
		}
		widestSeen = max(widestSeen, d)
	}
	if widestSeen < widest/2 {
		t.Fatalf("the longest of 1000 delays at the cap = %v, want the window to reach %v", widestSeen, widest)
	}
	c.won()
	if c.level != 11 {
		t.Fatalf("level after a win = %d, want 11", c.level)
	}
	for range 10 {
		c.won()
	}
	if c.level != 0 {
		t.Fatalf("level after many wins = %d, want 0", c.level)
	}
}

func TestContentionCapFollowsTheRetryPeriod(t *testing.T) {
	for _, tc := range []struct {
		widest time.Duration
		cap    int
	}{{time.Millisecond, 2}, {500 * time.Millisecond, 11}, {2 * time.Second, 13}, {10 * time.Second, 16}} {
		if got := contentionCap(tc.widest); got != tc.cap {
			t.Errorf("contentionCap(%v) = %d, want %d", tc.widest, got, tc.cap)
		}
		var c contention
		for range 40 {
			c.lost(tc.widest)
		}
		for range 100 {
			if d := c.delay(tc.widest); d < 0 || d >= tc.widest {
				t.Errorf("widest %v: delay %v, want in [0, %v)", tc.widest, d, tc.widest)
			}
		}
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

func TestAcquireUnderContentionReadsBeforeWriting(t *testing.T) {
	env := kubefake.NewEnv(leaseObject("", 4, kubefake.Epoch))
	l := newTestLease(t, env, me)
	l.contention.level = 4
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the stagger timer", func() bool { return env.Clock.Waiters() == 1 })
	gets := countActions(env, "get")
	env.Clock.Step(4 * time.Millisecond)
	got := kubefake.Receive(t, res, "acquisition")
	if got.err != nil {
		t.Fatalf("Acquire: %v", got.err)
	}
	defer releaseTerm(t, got.term)
	// One read after the delay, which found the Lease unchanged, then the write.
	var verbs []string
	for _, a := range env.Client.Actions() {
		if a.GetVerb() == "get" || a.GetVerb() == "update" {
			verbs = append(verbs, a.GetVerb())
		}
	}
	if n := countActions(env, "get") - gets; n != 1 || verbs[len(verbs)-1] != "update" || verbs[len(verbs)-2] != "get" {
		t.Errorf("requests after the delay: %d reads, then %v; want one read, then the update", n, verbs)
	}
}

func TestAcquireUnderContentionDropsAWriteTheReadShowsWouldConflict(t *testing.T) {
	env := kubefake.NewEnv(leaseObject("", 4, kubefake.Epoch))
	l := newTestLease(t, env, me)
	l.contention.level = 4
	// The read sees a rival's record that the watch has not brought yet.
	env.Client.PrependReactor("get", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		taken := leaseObject(rival, 5, kubefake.Epoch)
		taken.ResourceVersion = "999"
		env.Signal.Notify() // the read is recorded before this reactor runs
		return true, taken, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(ctx, l)
	env.Await(t, "the stagger timer", func() bool { return env.Clock.Waiters() == 1 })
	gets := countActions(env, "get")
	env.Clock.Step(4 * time.Millisecond)
	env.Await(t, "the read after the delay", func() bool { return countActions(env, "get") == gets+1 })
	// The watch brings the rival's record; the candidate handles it after its read, and waits
	// for the record's expiry.
	timers := env.Clock.TimersCreated()
	putLease(t, env, leaseObject(rival, 5, kubefake.Epoch))
	env.Await(t, "the rival's expiry timer", func() bool {
		return env.Clock.TimersCreated() > timers && env.Clock.Waiters() == 1
	})
	l.contention.mu.Lock()
	level := l.contention.level
	l.contention.mu.Unlock()
	if level != 5 {
		t.Errorf("contention level = %d, want 5: the read showed a race lost", level)
	}
	if n := countActions(env, "update"); n != 0 {
		t.Errorf("%d updates after the read showed the Lease moved on, want 0", n)
	}
	cancel()
	if got := kubefake.Receive(t, res, "Acquire to return"); got.err == nil {
		t.Fatalf("Acquire took the Lease")
	}
	if n := countActions(env, "update"); n != 0 {
		t.Errorf("%d updates, want 0", n)
	}
}
