package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/regent-k8s/regent/kubefake"
)

// clearedBySomeoneElse is the free record client-go's release writes over whatever record it
// reads when its own leader has already lost the Lease: empty holder, duration 1 s, acquireTime
// and renewTime now, the transition count of the record it replaces.
func clearedBySomeoneElse(transitions int32, now time.Time) *coordinationv1.Lease {
	l := leaseObject("", transitions, now)
	d := int32(1)
	l.Spec.LeaseDurationSeconds = &d
	return l
}

func TestAFreeRecordWrittenOverALiveHolderWaitsForTheHoldersRecord(t *testing.T) {
	// The rival holds the Lease with a record the waiter sees at the epoch. Five seconds later
	// someone else clears the record (client-go's release after its own term was lost, or an
	// operator's edit). The rival works on until its next renewal tells it, so the waiter must not
	// take the free record before the rival's record would have expired: 15 s.
	env := kubefake.NewEnv(leaseObject(rival, 5, kubefake.Epoch))
	l := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	env.Clock.Step(5 * time.Second)
	timers := env.Clock.TimersCreated()
	putLease(t, env, clearedBySomeoneElse(5, env.Clock.Now()))
	env.Await(t, "a timer for the cleared record", func() bool {
		return env.Clock.TimersCreated() > timers && env.Clock.Waiters() == 1
	})
	env.Clock.Step(10*time.Second - time.Millisecond)
	if n := countActions(env, "update"); n != 0 {
		t.Fatalf("%d updates before the cleared record expired", n)
	}
	env.Clock.Step(time.Millisecond)
	got := kubefake.Receive(t, res, "the acquisition")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Token().Seq != 6 {
		t.Errorf("token %d, want 6", got.term.Token().Seq)
	}
}

func TestAFreeRecordWrittenOverAnExpiredRecordIsTakenAtOnce(t *testing.T) {
	env := kubefake.NewEnv(leaseObject(rival, 5, kubefake.Epoch))
	l := newTestLease(t, env, me)
	// The waiter saw the rival's record at the epoch; it expired at 15 s, and this value led and
	// released since. A free record written over its own release binds no one.
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	env.Clock.Step(15 * time.Second)
	got := kubefake.Receive(t, res, "the acquisition")
	if got.err != nil {
		t.Fatal(got.err)
	}
	releaseTerm(t, got.term)
	putLease(t, env, clearedBySomeoneElse(6, env.Clock.Now()))
	again, err := l.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire of a free record over this value's own released term: %v", err)
	}
	releaseTerm(t, again)
}

func TestAReleaseHandsOverAtOnceAndKeepsTheTermsAcquireTime(t *testing.T) {
	env := kubefake.NewEnv()
	holder := newTestLease(t, env, rival)
	term, err := holder.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	acquiredAt := recordOf(getLease(t, env)).acquireTime
	waiter := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), waiter)
	env.Await(t, "the waiter's expiry timer", func() bool { return env.Clock.Waiters() == 3 })
	env.Clock.Step(time.Second) // the release comes later than the term's start
	releaseTerm(t, term)
	if rec := recordOf(getLease(t, env)); rec.holder != "" && rec.holder != me {
		t.Fatalf("holder %q after the release", rec.holder)
	}
	got := kubefake.Receive(t, res, "the acquisition on the release's event")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	released := false
	for _, a := range env.Client.Actions() {
		if u, ok := a.(interface{ GetObject() runtime.Object }); ok && a.GetVerb() == "update" {
			if l, ok := u.GetObject().(*coordinationv1.Lease); ok && recordOf(l).holder == "" {
				released = true
				if got := recordOf(l).acquireTime; !got.Equal(acquiredAt) {
					t.Errorf("release wrote acquireTime %v, want the term's %v", got, acquiredAt)
				}
			}
		}
	}
	if !released {
		t.Fatal("no release was written")
	}
}

func TestAFreeRecordReadAfterAGapWaitsALeaseDuration(t *testing.T) {
	// This value saw the rival hold the Lease; its next read, a TryAcquire, finds a free record
	// that is not the rival's release. Terms it did not see may lie between, and one of them may
	// be working still: nothing is taken before a LeaseDuration from that read.
	env := kubefake.NewEnv(leaseObject(rival, 5, kubefake.Epoch))
	l := newTestLease(t, env, me)
	if _, err := l.TryAcquire(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("TryAcquire of a held Lease = %v, want ErrHeld", err)
	}
	env.Clock.Step(20 * time.Second) // the rival's record, as seen, has long expired
	putLease(t, env, clearedBySomeoneElse(7, env.Clock.Now()))
	if _, err := l.TryAcquire(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("TryAcquire of a free record read after a gap = %v, want ErrHeld", err)
	}
	env.Clock.Step(l.Timings().LeaseDuration)
	term, err := l.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire a LeaseDuration later: %v", err)
	}
	defer releaseTerm(t, term)
	if term.Token().Seq != 8 {
		t.Errorf("token %d, want 8", term.Token().Seq)
	}
}
