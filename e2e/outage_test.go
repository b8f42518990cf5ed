package e2e

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// outage timings leave room for an API server restart (about three seconds here) inside the
// renew deadline.
var outage = lock.Timings{LeaseDuration: 12 * time.Second, RenewDeadline: 8 * time.Second, RetryPeriod: time.Second}

// 4. The API server goes away: briefly, the leader keeps its term; for longer than the renew
// deadline, the work is cancelled before the lease could pass to anyone else, the term is lost,
// and leadership comes back after the server does.
func TestAPIServerOutage(t *testing.T) {
	ns := namespace(t)
	c := newCandidate(t, controlplane.AdminUser, ns, "outage", "a", outage)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	type termEnd struct {
		returned       time.Time
		exclusiveUntil time.Time
	}
	starts := make(chan lock.Token, 10)
	ends := make(chan termEnd, 10)
	results := make(chan error, 10)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		results <- leader.RetryOnLost(func(ctx context.Context) error {
			err := c.election.RunAsLeader(ctx, func(wctx context.Context) error {
				l, _ := leader.FromContext(wctx)
				starts <- l.Token()
				<-wctx.Done()
				ends <- termEnd{returned: time.Now(), exclusiveUntil: l.Term().ExclusiveUntil()}
				return nil
			})
			results <- err
			return err
		}, leader.RetryBackoff(100*time.Millisecond, time.Second))(ctx)
	}()
	defer wg.Wait()

	first := receiveT(t, starts, "the first term")

	t.Run("shorter than the renew deadline", func(t *testing.T) {
		cp.StopAPIServer()
		time.Sleep(2 * time.Second) // the fault: the server stays away for 2 s
		if err := cp.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		// Two renewals after the restart, the term still stands.
		quietly(t, ends, 2*outage.RetryPeriod, "the term ended during a short outage")
	})

	t.Run("longer than the renew deadline", func(t *testing.T) {
		cp.StopAPIServer()
		stopped := time.Now()
		end := receiveT(t, ends, "the work to be cancelled")
		if err := receiveT(t, results, "RunAsLeader's result"); !isLost(err) {
			t.Errorf("RunAsLeader = %v, want lost leadership", err)
		}
		if !end.returned.Before(end.exclusiveUntil) {
			t.Errorf("work returned at %v, not before others could take over at %v", end.returned, end.exclusiveUntil)
		}
		if d := end.returned.Sub(stopped); d > outage.RenewDeadline {
			t.Errorf("work cancelled %v after the server went away, later than the renew deadline %v", d, outage.RenewDeadline)
		}
		time.Sleep(2 * time.Second) // the fault lasts a little longer
		if err := cp.StartAPIServer(ctx); err != nil {
			t.Fatal(err)
		}
		again := receiveT(t, starts, "leadership after the server returned")
		if again.Seq <= first.Seq {
			t.Errorf("token after the outage %v, not above %v", again, first)
		}
	})
	cancel()
}

func receiveT[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(guard):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
