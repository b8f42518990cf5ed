package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// runCandidate runs c's work as leader until ctx ends, recording its terms; the work returns
// when its context ends or when stop is closed for that term.
func runCandidate(ctx context.Context, c *candidate, rec *terms, stops <-chan chan struct{}, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			_ = c.election.RunAsLeader(ctx, func(wctx context.Context) error {
				token, _ := leader.TokenFrom(wctx)
				rec.begin(c.name, token)
				defer rec.finish(c.name)
				select {
				case <-wctx.Done():
				case stop := <-stops:
					close(stop)
				}
				return nil
			})
		}
	}()
}

// runThree runs three candidates c0, c1, c2 on lockName, each with runCandidate, until the test
// ends; the test's cleanup then stops them and checks that no two terms overlapped.
func runThree(t *testing.T, ns, lockName string, timings lock.Timings) (map[string]*candidate, *terms, chan chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rec := newTerms()
	stops := make(chan chan struct{})
	var wg sync.WaitGroup
	cands := map[string]*candidate{}
	for i := range 3 {
		c := newCandidate(t, controlplane.AdminUser, ns, lockName, fmt.Sprintf("c%d", i), timings)
		cands[c.name] = c
		runCandidate(ctx, c, rec, stops, &wg)
	}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		rec.check(t)
	})
	return cands, rec, stops
}

// 1. Three candidates: exactly one leads; a graceful release hands over; a crash hands over only
// after the lease duration.
func TestThreeCandidatesOneLeader(t *testing.T) {
	ns := namespace(t)
	cands, rec, stops := runThree(t, ns, "three", fast)

	first := rec.next(t)
	quietly(t, rec.started, fast.LeaseDuration, "a second leader while the first holds the lease")

	// Graceful: the leader's work returns and it releases.
	stopped := make(chan struct{})
	stops <- stopped
	<-stopped
	second := rec.next(t)
	if second.start.Sub(first.start) <= 0 {
		t.Fatal("terms out of order")
	}

	// Crash: the leader is cut off and never renews nor releases.
	cutAt := time.Now()
	cands[second.who].cut.cut.Store(true)
	third := rec.next(t)
	if third.who == second.who {
		t.Fatalf("the cut-off candidate %s led again", second.who)
	}
	// Its last renewal was at most one retry period before the cut, and the others wait a whole
	// lease duration from observing it.
	if waited := third.start.Sub(cutAt); waited < fast.LeaseDuration-fast.RetryPeriod {
		t.Errorf("after a crash the next leader started %v later, before the lease could expire", waited)
	}
	for _, iv := range []interval{first, second, third} {
		t.Logf("%s led with token %v", iv.who, iv.token)
	}
	if !(first.token.Seq < second.token.Seq && second.token.Seq < third.token.Seq) {
		t.Errorf("tokens %v, %v, %v do not grow", first.token, second.token, third.token)
	}
}

// 2. A waiter takes a released Lease on its watch event, without waiting a retry period.
func TestHandoverThroughTheWatch(t *testing.T) {
	ns := namespace(t)
	slow := lock.Timings{LeaseDuration: 20 * time.Second, RenewDeadline: 15 * time.Second, RetryPeriod: 10 * time.Second}
	a := newCandidate(t, controlplane.AdminUser, ns, "handover", "a", slow)
	b := newCandidate(t, controlplane.AdminUser, ns, "handover", "b", slow)
	ctx := context.Background()
	la, err := a.election.Lead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan time.Time, 1)
	done := make(chan error, 1)
	go func() {
		done <- b.election.RunAsLeader(ctx, func(context.Context) error {
			started <- time.Now()
			return nil
		})
	}()
	// b is waiting; give its watch time to be established before the release.
	quietly(t, started, time.Second, "b led while a held the lease")
	released := time.Now()
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case at := <-started:
		handover := at.Sub(released)
		t.Logf("handover took %v (retry period %v)", handover, slow.RetryPeriod)
		if handover > time.Second {
			t.Errorf("handover took %v: the waiter did not act on the watch event", handover)
		}
	case <-time.After(guard):
		t.Fatal("b never led")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// 3. Candidates racing for a free Lease: one wins, the others keep waiting, and nobody errs.
func TestRacingCandidatesOneWinsWithoutErrors(t *testing.T) {
	ns := namespace(t)
	for round := range 5 {
		name := fmt.Sprintf("race-%d", round)
		var cands []*candidate
		for i := range 3 {
			cands = append(cands, newCandidate(t, controlplane.AdminUser, ns, name, fmt.Sprintf("r%d", i), fast))
		}
		rec := newTerms()
		errs := make(chan error, len(cands))
		start := make(chan struct{})
		release := make(chan struct{})
		for _, c := range cands {
			go func() {
				<-start
				errs <- c.election.RunAsLeader(context.Background(), func(ctx context.Context) error {
					token, _ := leader.TokenFrom(ctx)
					rec.begin(c.name, token)
					defer rec.finish(c.name)
					<-release
					return nil
				})
			}()
		}
		close(start)
		winner := rec.next(t)
		quietly(t, rec.started, 500*time.Millisecond, "a second winner")
		close(release) // each leader in turn returns at once
		for range len(cands) - 1 {
			rec.next(t)
		}
		for range cands {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		rec.check(t)
		t.Logf("round %d won by %s", round, winner.who)
	}
}

// 6. Fencing: tokens of successive terms strictly increase, also when one identity acquires again.
func TestTokensGrowAcrossTermsOfOneIdentity(t *testing.T) {
	ns := namespace(t)
	c := newCandidate(t, controlplane.AdminUser, ns, "tokens", "same", fast)
	var last int64
	for i := range 4 {
		var token lock.Token
		err := c.election.RunAsLeader(context.Background(), func(ctx context.Context) error {
			token, _ = leader.TokenFrom(ctx)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if token.Seq <= last {
			t.Fatalf("term %d token %d, not above %d", i, token.Seq, last)
		}
		last = token.Seq
	}
}

func isLost(err error) bool { return errors.Is(err, leader.ErrLost) }
