package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/utils/clock"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/lock"
)

// behindClock is the real clock, read d behind: a machine whose wall clock is slow by d.
type behindClock struct {
	clock.RealClock
	d time.Duration
}

func (c behindClock) Now() time.Time                  { return c.RealClock.Now().Add(-c.d) }
func (c behindClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// TryAcquire with WithMaxClockSkew judges a record's expiry by the holder's renewTime, written
// from the holder's clock. The fault that breaks it is a skew beyond the bound: a holder whose
// clock is 5 s behind keeps renewing, and a try-lock that assumes at most 2 s of skew takes its
// Lease while it works, as docs/design.md says it may; with a bound of 6 s it never does.
func TestTryAcquireWithASkewBoundOnTheRealServer(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	leases := cp.Client(controlplane.AdminUser).CoordinationV1()
	holder, err := lock.NewLease(leases, ns, "cron", lock.WithIdentity("holder"), lock.WithTimings(fast), lock.WithClock(behindClock{d: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	term, err := holder.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer term.Release(ctx)
	try := func(bound time.Duration) (*lock.Term, int) {
		l, err := lock.NewLease(leases, ns, "cron", lock.WithIdentity("try"), lock.WithTimings(fast), lock.WithMaxClockSkew(bound))
		if err != nil {
			t.Fatal(err)
		}
		attempts := 0
		for deadline := time.Now().Add(2 * fast.LeaseDuration); time.Now().Before(deadline); attempts++ {
			got, err := l.TryAcquire(ctx)
			if err == nil {
				return got, attempts
			}
			if !errors.Is(err, lock.ErrHeld) {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond) // a cron-style try-lock retries on its schedule
		}
		return nil, attempts
	}
	if got, n := try(6 * time.Second); got != nil {
		t.Fatalf("with a 6 s bound over a 5 s skew, TryAcquire took the live holder's Lease after %d attempts", n)
	}
	if term.Context().Err() != nil {
		t.Fatal("the holder lost its term while nobody took it")
	}
	got, n := try(2 * time.Second)
	if got == nil {
		t.Fatalf("with a 2 s bound under a 5 s skew, TryAcquire never took the Lease in %d attempts; the documented limit did not show", n)
	}
	t.Logf("with a 2 s bound under a 5 s skew, TryAcquire took the Lease of a live holder after %d attempts (the documented limit)", n)
	_ = got.Release(ctx)
}
