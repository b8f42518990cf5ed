package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/regent-k8s/regent/kubefake"
)

// noTerm asserts that a waiter has not acquired.
func noTerm(t *testing.T, res <-chan acquired, what string) {
	t.Helper()
	select {
	case r := <-res:
		t.Fatalf("%s: acquired (%v)", what, r.err)
	default:
	}
}

// stopWaiter ends a waiter's Acquire, releasing the term it may have got meanwhile.
func stopWaiter(t *testing.T, cancel context.CancelFunc, res <-chan acquired) {
	cancel()
	if r := <-res; r.term != nil {
		releaseTerm(t, r.term)
	}
}

func TestTheNamedCandidateTakesAHandedOverLeaseAtOnceAndOthersWait(t *testing.T) {
	env := kubefake.NewEnv()
	holder := newTestLease(t, env, me)
	term, err := holder.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	named, other := newTestLease(t, env, "named_3"), newTestLease(t, env, rival)
	ctx, cancel := context.WithCancel(context.Background())
	otherRes := acquireAsync(ctx, other)
	defer stopWaiter(t, cancel, otherRes)
	env.Await(t, "the other waiter's expiry timer", func() bool { return env.Clock.Waiters() >= 3 })
	namedRes := acquireAsync(context.Background(), named)
	env.Await(t, "the named waiter's expiry timer", func() bool { return env.Clock.Waiters() >= 4 })

	if err := term.HandOver(context.Background(), "named_3"); err != nil {
		t.Fatalf("HandOver: %v", err)
	}
	if !errors.Is(context.Cause(term.Context()), ErrReleased) || closed(term.Lost()) {
		t.Fatalf("a handed-over term ends as released, not lost: %v", context.Cause(term.Context()))
	}
	r := kubefake.Receive(t, namedRes, "the named candidate to take the lease, with no time passing")
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer releaseTerm(t, r.term)
	if r.term.Token().Seq <= term.Token().Seq {
		t.Errorf("token %v after %v: a fencing store would refuse the successor", r.term.Token(), term.Token())
	}
	lease := getLease(t, env)
	if _, ok := lease.Annotations[HandoverToAnnotation]; ok {
		t.Errorf("the successor's record keeps the handover annotations: %v", lease.Annotations)
	}
	noTerm(t, otherRes, "a candidate not named")
}

func TestAHandoverToACandidateThatIsGoneFreesTheLeaseAfterRetryPeriod(t *testing.T) {
	env := kubefake.NewEnv()
	holder := newTestLease(t, env, me)
	term, err := holder.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	other := newTestLease(t, env, rival)
	res := acquireAsync(context.Background(), other)
	env.Await(t, "the waiter's expiry timer", func() bool { return env.Clock.Waiters() >= 3 })
	before := env.Clock.TimersCreated()
	if err := term.HandOver(context.Background(), "gone_9"); err != nil {
		t.Fatalf("HandOver: %v", err)
	}
	rec := recordOf(getLease(t, env))
	if rec.holder != me || rec.durationSeconds != 2 {
		t.Fatalf("handover record %+v, want held by %s for 2 s (RetryPeriod, rounded up)", rec, me)
	}
	env.Await(t, "the waiter to time the handover record", func() bool { return env.Clock.TimersCreated() > before })
	env.Clock.Step(2*time.Second - time.Millisecond)
	noTerm(t, res, "a candidate not named, before the handover's bound")
	env.Clock.Step(time.Millisecond)
	r := kubefake.Receive(t, res, "the other candidate to take the lease once the handover's bound passed")
	if r.err != nil {
		t.Fatal(r.err)
	}
	releaseTerm(t, r.term)
}

func TestAHandoverAnnotationOfAnotherTermLetsNoOneIn(t *testing.T) {
	// A record taken by a client-go candidate keeps the annotations of the handover before it;
	// they name the old term's token, not this record's.
	held := leaseObject(rival, 7, kubefake.Epoch)
	held.UID = "uid-1"
	held.Annotations = map[string]string{HandoverToAnnotation: me, HandoverOfAnnotation: "uid-1/6"}
	env := kubefake.NewEnv(held)
	l := newTestLease(t, env, me)
	if _, err := l.TryAcquire(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("TryAcquire of a record with a stale handover = %v, want ErrHeld", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(ctx, l)
	defer stopWaiter(t, cancel, res)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() >= 1 })
	noTerm(t, res, "a stale handover annotation")
}

func TestHandOverRefusesWhatItCannotDo(t *testing.T) {
	env := kubefake.NewEnv()
	term, err := newTestLease(t, env, me).Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer releaseTerm(t, term)
	for _, to := range []string{"", me} {
		var ce *ConfigError
		if err := term.HandOver(context.Background(), to); !errors.As(err, &ce) || ce.Field != "to" {
			t.Errorf("HandOver(%q) = %v, want a ConfigError naming to", to, err)
		}
	}
	if term.Err() != nil {
		t.Fatalf("a refused HandOver ended the term: %v", term.Err())
	}
	self := pod("me", "uid-me", corev1.PodRunning, "")
	lifeEnv := kubefake.NewEnv(self)
	lifeTerm, err := newTestLife(t, lifeEnv, self).Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer releaseTerm(t, lifeTerm)
	if err := lifeTerm.HandOver(context.Background(), "other"); !errors.Is(err, ErrHandoverUnsupported) {
		t.Errorf("HandOver of a leader-for-life term = %v, want ErrHandoverUnsupported", err)
	}
}
