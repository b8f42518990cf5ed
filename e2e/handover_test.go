package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/leader"
)

// Planned handover on the real API server: a leader stops its work and hands the Lease to a
// named candidate, which must lead next, at once, while the third waits; and beside it, in the
// same run, the plain release. Measured: the gap without a leader, from the old work's end to
// the new work's start. Then a handover to a candidate that is gone: the others take the Lease
// once the handover's bound (RetryPeriod, rounded up to a second) has passed.
func TestPlannedHandover(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	cands := make([]*candidate, 3)
	for i := range cands {
		cands[i] = newCandidate(t, controlplane.AdminUser, ns, "handover", fmt.Sprintf("h%d", i), fast)
	}
	type led struct {
		who   int
		l     *leader.Leadership
		start time.Time
	}
	leds := make(chan led, 3)
	lead := func(i int) {
		go func() {
			l, err := cands[i].election.Lead(ctx)
			if err != nil {
				t.Error(err)
				return
			}
			leds <- led{who: i, l: l, start: time.Now()}
		}()
	}
	for i := range cands {
		lead(i)
	}
	next := func() led {
		select {
		case l := <-leds:
			return l
		case <-time.After(guard):
			t.Fatal("no leader")
			panic("unreachable")
		}
	}
	cur := next()
	var handover, release []time.Duration
	for round := range 10 {
		time.Sleep(fast.RetryPeriod) // the waiters settle on the held record: a handover is not a race at start
		stopped := time.Now()
		planned := round%2 == 0
		to := (cur.who + 2) % 3 // not the one a plain release would favour by order
		var err error
		if planned {
			err = cur.l.HandOver(ctx, cands[to].name)
		} else {
			err = cur.l.Release(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		n := next()
		if n.start.Before(stopped) {
			t.Fatalf("round %d: %s led before %s's work stopped", round, cands[n.who].name, cands[cur.who].name)
		}
		gap := n.start.Sub(stopped)
		if planned {
			if n.who != to {
				t.Errorf("round %d: handed to %s, but %s leads", round, cands[to].name, cands[n.who].name)
			}
			handover = append(handover, gap)
		} else {
			release = append(release, gap)
		}
		lead(cur.who)
		cur = n
	}
	slices.Sort(handover)
	slices.Sort(release)
	t.Logf("gap without a leader: handover %v; plain release %v", handover, release)
	if worst := handover[len(handover)-1]; worst > time.Second {
		t.Errorf("a planned handover left the lock without a leader for %v", worst)
	}

	// To a candidate that is gone: the others wait out the bound, then one takes the Lease.
	time.Sleep(fast.RetryPeriod)
	stopped := time.Now()
	if err := cur.l.HandOver(ctx, "nobody"); err != nil {
		t.Fatal(err)
	}
	n := next()
	gap := n.start.Sub(stopped)
	t.Logf("handover to a candidate that is gone: %s led %v later", cands[n.who].name, gap.Round(time.Millisecond))
	if gap < time.Second-100*time.Millisecond {
		t.Errorf("a candidate not named took a handed-over Lease after %v, before the 1 s bound", gap)
	}
	if gap > fast.LeaseDuration {
		t.Errorf("after a handover to nobody the others waited %v, more than a lease duration", gap)
	}
	lead(cur.who)
	_ = n.l.Release(ctx)
	for range 2 {
		_ = next().l.Release(ctx)
	}
}
