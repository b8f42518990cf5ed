package lock

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/kubefake"
)

// clearLease writes a free record over the Lease's current one, keeping its object (UID), as
// client-go's release or an operator's edit does.
func clearLease(t *testing.T, env *kubefake.Env) {
	t.Helper()
	cur := getLease(t, env).DeepCopy()
	rec := recordOf(cur)
	free := leaseRecord{durationSeconds: 1, acquireTime: env.Clock.Now(), renewTime: env.Clock.Now(), transitions: rec.transitions}
	free.writeTo(cur)
	putLease(t, env, cur)
}

// loseByClear clears the record of term a second after it began and steps the clock to its
// next renewal, which finds the record gone and ends the term.
func loseByClear(t *testing.T, env *kubefake.Env, l *Lease, term *Term) {
	t.Helper()
	env.Clock.Step(time.Second) // a free record written at the term's acquireTime would read as its release
	clearLease(t, env)
	env.Clock.Step(l.Timings().RetryPeriod)
	env.Await(t, "the term to be lost", func() bool { return closed(term.Lost()) })
}

func TestAHandoverReachesANamedCandidateThatAClearOfTheHandersEarlierRecordBinds(t *testing.T) {
	// The waiter saw the holder's first record cleared by someone else, which binds it for the
	// record's whole duration. The holder's process learnt of it, stopped, led again and then
	// handed the lock over to the waiter: the handover record, a later record of the same
	// holder, shows that the cleared term is over, so the waiter takes it at once (before this
	// was fixed it waited out the old bound, the handover record expired first, and the holder
	// took the lock back).
	env := kubefake.NewEnv()
	holder := newTestLease(t, env, rival)
	first, err := holder.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	waiter := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), waiter)
	env.Await(t, "the waiter's expiry timer", func() bool { return env.Clock.Waiters() >= 3 })
	loseByClear(t, env, holder, first)
	releaseTerm(t, first)
	second, err := holder.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("the holder leads again once its lost term is released: %v", err)
	}
	if err := second.HandOver(context.Background(), me); err != nil {
		t.Fatalf("HandOver: %v", err)
	}
	got := kubefake.Receive(t, res, "the named waiter to take the handed-over lease, with no time passing")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Token().Seq <= second.Token().Seq {
		t.Errorf("token %v after %v", got.term.Token(), second.Token())
	}
}

func TestAHandoverByAnotherHolderDoesNotLiftTheBindOfAClearedRecord(t *testing.T) {
	// The cleared record's holder may still work; a handover by someone else says nothing of it.
	env := kubefake.NewEnv(leaseObject(rival, 5, kubefake.Epoch))
	waiter := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), waiter)
	env.Await(t, "the waiter's expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	env.Clock.Step(5 * time.Second)
	clearLease(t, env)
	env.Await(t, "the waiter to see the clear", func() bool { return waiter.goneInForce() != nil })
	third := newTestLease(t, env, "third_3") // never saw the rival's record: nothing binds it
	term, err := third.TryAcquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := term.HandOver(context.Background(), me); err != nil {
		t.Fatal(err)
	}
	env.Clock.Step(10*time.Second - time.Millisecond) // the rival's record binds until 15 s
	noTerm(t, res, "a waiter bound by a cleared record of another holder")
	if n := countActions(env, "update"); n != 2 {
		t.Fatalf("%d updates, want only the third's take and handover", n)
	}
	env.Clock.Step(time.Millisecond)
	got := kubefake.Receive(t, res, "the acquisition once the cleared record expired")
	if got.err != nil {
		t.Fatal(got.err)
	}
	releaseTerm(t, got.term)
}

func TestALostTermBindsItsOwnValueUntilReleased(t *testing.T) {
	// A renewal finds the record cleared and the term is lost, but its work may still run until
	// it is released: neither a second Acquire nor TryAcquire of the same value may take the
	// free record before that (they did, the value having noted the free record as its own).
	env := kubefake.NewEnv()
	l := newTestLease(t, env, me)
	first, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	loseByClear(t, env, l, first)
	var held *HeldError
	if _, err := l.TryAcquire(context.Background()); !errors.As(err, &held) {
		t.Fatalf("TryAcquire while the lost term's work may run = %v, want a HeldError", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res := acquireAsync(ctx, l)
	env.Await(t, "the second Acquire's wait", func() bool { return env.Clock.Waiters() >= 1 })
	noTerm(t, res, "a second Acquire while the lost term's work may run")
	releaseTerm(t, first) // the work has stopped
	got := kubefake.Receive(t, res, "the second Acquire once the lost term was released")
	if got.err != nil {
		t.Fatal(got.err)
	}
	releaseTerm(t, got.term)
}

func TestALostTermThatIsNeverReleasedBindsItsValueUntilItsRecordWouldExpire(t *testing.T) {
	env := kubefake.NewEnv()
	l := newTestLease(t, env, me)
	first, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	loseByClear(t, env, l, first)
	until := first.ExclusiveUntil()
	env.Clock.SetTime(until.Add(-time.Millisecond))
	if _, err := l.TryAcquire(context.Background()); err == nil {
		t.Fatal("TryAcquire took the lock before the lost term's record would have expired")
	}
	env.Clock.SetTime(until)
	term, err := l.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire once the lost term's record expired: %v", err)
	}
	releaseTerm(t, term)
	releaseTerm(t, first)
}

func TestAWaiterThatRelistsAfterAWatchGapAndFindsTheLeaseDeletedWaitsAWholeLease(t *testing.T) {
	// The waiter followed the rival's record from the epoch; then its watch broke. Meanwhile the
	// Lease may have been released, taken by a term the waiter never saw, and deleted while that
	// term held it. The re-list finds it absent: nothing may be written before a whole
	// LeaseDuration from the re-list (it bound only the rival's record, until 15 s).
	env := kubefake.NewEnv(leaseObject(rival, 5, kubefake.Epoch))
	first := watch.NewFake()
	var watches atomic.Int32
	env.ReactWatch("leases", func(k8stesting.Action) (bool, watch.Interface, error) {
		if watches.Add(1) == 1 {
			return true, first, nil
		}
		return false, nil, nil
	})
	l := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	env.Clock.Step(10 * time.Second)
	if err := env.Tracker.Delete(leasesGVR, testNS, testName); err != nil {
		t.Fatal(err)
	}
	first.Error(&metav1.Status{Status: metav1.StatusFailure, Code: 410, Reason: metav1.StatusReasonGone})
	env.Await(t, "the watch's retry timer", func() bool { return env.Clock.Waiters() == 2 })
	env.Clock.Step(110 * time.Millisecond) // the first retry, 100 ms ±10%
	env.Await(t, "the re-list and its binding", func() bool { return watches.Load() == 2 && l.goneInForce() != nil })
	// Past the rival's record (15 s), within a LeaseDuration of the re-list (25.11 s): a timer
	// that fires before 20.11 s leaves none waiting until the waiter has written or set another.
	env.Await(t, "the waiter's timer", func() bool { return env.Clock.Waiters() == 1 })
	env.Clock.Step(10 * time.Second)
	env.Await(t, "the waiter's state at 20.11 s", func() bool {
		return countActions(env, "create") > 0 || env.Clock.Waiters() == 1
	})
	noTerm(t, res, "a waiter within a LeaseDuration of a deletion it listed")
	if n := countActions(env, "create"); n != 0 {
		t.Fatalf("%d creates within a LeaseDuration of the re-list", n)
	}
	env.Clock.Step(5 * time.Second)
	got := kubefake.Receive(t, res, "the acquisition a LeaseDuration after the re-list")
	if got.err != nil {
		t.Fatal(got.err)
	}
	releaseTerm(t, got.term)
}

var leasesGVR = coordinationv1.SchemeGroupVersion.WithResource("leases")
