package lock

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/kubefake"
)

func TestAcquireTakesAbsentOrFreeLeaseAtOnce(t *testing.T) {
	tests := []struct {
		name      string
		objs      []runtime.Object
		wantToken int64
	}{
		{name: "absent", wantToken: 1},
		{name: "released by client-go or regent", objs: []runtime.Object{leaseObject("", 4, kubefake.Epoch)}, wantToken: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := kubefake.NewEnv(tt.objs...)
			l := newTestLease(t, env, me)
			term, err := l.Acquire(context.Background())
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			defer releaseTerm(t, term)
			if got := term.Token().Seq; got != tt.wantToken {
				t.Errorf("token = %d, want %d", got, tt.wantToken)
			}
			rec := recordOf(getLease(t, env))
			if rec.holder != me || rec.durationSeconds != 15 || int64(rec.transitions) != tt.wantToken {
				t.Errorf("record = %+v, want holder %q, 15 s, transitions %d", rec, me, tt.wantToken)
			}
			if !rec.acquireTime.Equal(kubefake.Epoch) || !rec.renewTime.Equal(kubefake.Epoch) {
				t.Errorf("times = %v/%v, want the clock's now %v", rec.acquireTime, rec.renewTime, kubefake.Epoch)
			}
		})
	}
}

func TestAcquireWaitsForObservedExpiry(t *testing.T) {
	// The holder's renewTime is far in the past, as a skewed clock would write it: only the
	// local observation counts, so the candidate still waits the whole duration.
	env := kubefake.NewEnv(leaseObject(rival, 3, kubefake.Epoch.Add(-time.Hour)))
	l := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })

	env.Clock.Step(15*time.Second - time.Millisecond)
	if env.Clock.Waiters() != 1 || countActions(env, "update") != 0 {
		t.Fatal("candidate acted before the lease expired")
	}
	env.Clock.Step(time.Millisecond)
	got := kubefake.Receive(t, res, "acquisition")
	if got.err != nil {
		t.Fatalf("Acquire: %v", got.err)
	}
	defer releaseTerm(t, got.term)
	if rec := recordOf(getLease(t, env)); rec.holder != me || rec.transitions != 4 {
		t.Errorf("record = %+v, want holder %q with transitions 4", rec, me)
	}
}

func TestAcquireExpiryRestartsWhenHolderRenews(t *testing.T) {
	env := kubefake.NewEnv(leaseObject(rival, 1, kubefake.Epoch))
	l := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), l)
	// The candidate arms its timer on the list; the watch's replay of the listed object is dropped.
	env.Await(t, "the initial observation", func() bool { return env.Clock.TimersCreated() == 1 })
	timers := env.Clock.TimersCreated()

	env.Clock.Step(10 * time.Second)
	putLease(t, env, leaseObject(rival, 1, kubefake.Epoch.Add(10*time.Second))) // the rival renews
	env.Await(t, "a new expiry timer", func() bool { return env.Clock.TimersCreated() > timers })

	env.Clock.Step(15*time.Second - time.Millisecond) // 25 s after start, 15 s after the renewal
	if countActions(env, "update") != 0 {
		t.Fatal("candidate took a lease whose holder renewed")
	}
	env.Clock.Step(time.Millisecond)
	got := kubefake.Receive(t, res, "acquisition")
	if got.err != nil {
		t.Fatalf("Acquire: %v", got.err)
	}
	releaseTerm(t, got.term)
}

func TestAcquireTakesReleasedLeaseOnItsWatchEvent(t *testing.T) {
	env := kubefake.NewEnv(leaseObject(rival, 7, kubefake.Epoch))
	l := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })

	putLease(t, env, leaseObject("", 7, kubefake.Epoch)) // the rival releases; no time passes
	got := kubefake.Receive(t, res, "acquisition")
	if got.err != nil {
		t.Fatalf("Acquire: %v", got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Token().Seq != 8 {
		t.Errorf("token = %d, want 8", got.term.Token().Seq)
	}
}

func TestAcquireLosingTheRaceKeepsWaiting(t *testing.T) {
	env := kubefake.NewEnv(leaseObject("", 2, kubefake.Epoch))
	env.React("update", "leases", raceOnce(t, env))
	l := newTestLease(t, env, me)
	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(ctx, l)
	env.Await(t, "waiting on the rival's expiry", func() bool { return env.Clock.Waiters() == 1 })
	if rec := recordOf(getLease(t, env)); rec.holder != rival {
		t.Fatalf("holder = %q, want the rival's write to stand", rec.holder)
	}
	cancel()
	got := kubefake.Receive(t, res, "Acquire to return")
	var held *HeldError
	if !errors.As(got.err, &held) || held.Holder != rival || !errors.Is(got.err, context.Canceled) || !errors.Is(got.err, ErrHeld) {
		t.Fatalf("Acquire = %v, want a HeldError naming %q that wraps context.Canceled", got.err, rival)
	}
}

// raceOnce is a reactor under which a rival's write lands just before this process's first
// update, which then conflicts.
func raceOnce(t *testing.T, env *kubefake.Env) k8stesting.ReactionFunc {
	var raced atomic.Bool
	return func(k8stesting.Action) (bool, runtime.Object, error) {
		if raced.CompareAndSwap(false, true) {
			putLease(t, env, leaseObject(rival, 3, kubefake.Epoch))
		}
		return false, nil, nil
	}
}

func TestAcquireAdoptsItsOwnWriteWhoseReplyWasLost(t *testing.T) {
	env := kubefake.NewEnv(leaseObject("", 1, kubefake.Epoch))
	var once atomic.Bool
	env.React("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if once.CompareAndSwap(false, true) {
			// The write is applied, but the reply never arrives.
			if err := env.Tracker.Update(a.GetResource(), a.(k8stesting.UpdateAction).GetObject(), testNS); err != nil {
				t.Errorf("apply: %v", err)
			}
			return true, nil, apierrors.NewTimeoutError("reply lost", 1)
		}
		return false, nil, nil
	})
	l := newTestLease(t, env, me)
	got := kubefake.Receive(t, acquireAsync(context.Background(), l), "acquisition")
	if got.err != nil {
		t.Fatalf("Acquire: %v", got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Token().Seq != 2 || countActions(env, "update") != 1 {
		t.Errorf("token %d after %d updates, want the first write's term 2 after one update", got.term.Token().Seq, countActions(env, "update"))
	}
}

func TestAcquireRetriesTransientFailures(t *testing.T) {
	env := kubefake.NewEnv()
	var failures atomic.Int32
	failLeases(env, "create", func() bool { return failures.Add(1) <= 2 }, apierrors.NewServiceUnavailable("restarting"))
	l := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), l)
	for range 2 {
		env.Await(t, "a retry timer", func() bool { return env.Clock.Waiters() == 1 })
		env.Clock.Step(l.Timings().RetryPeriod)
	}
	got := kubefake.Receive(t, res, "acquisition")
	if got.err != nil {
		t.Fatalf("Acquire: %v", got.err)
	}
	releaseTerm(t, got.term)
}

func TestAcquireTakesAgainAWriteAnsweredAfterTheRenewDeadline(t *testing.T) {
	env := kubefake.NewEnv(leaseObject("", 4, kubefake.Epoch))
	l := newTestLease(t, env, me)
	var once atomic.Bool
	env.React("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if once.CompareAndSwap(false, true) {
			// The API server applies the write but answers only after the renew deadline.
			obj := a.(k8stesting.UpdateAction).GetObject()
			if err := env.Tracker.Update(a.GetResource(), obj, testNS); err != nil {
				t.Errorf("apply: %v", err)
			}
			env.Clock.Step(l.Timings().RenewDeadline)
			stored, err := env.Tracker.Get(a.GetResource(), testNS, testName)
			return true, stored, err
		}
		return false, nil, nil
	})
	got := kubefake.Receive(t, acquireAsync(context.Background(), l), "acquisition")
	if got.err != nil {
		t.Fatalf("Acquire: %v", got.err)
	}
	defer releaseTerm(t, got.term)
	if closed(got.term.Done()) {
		t.Fatalf("the term began lost: %v", got.term.Err())
	}
	if got.term.Token().Seq != 6 || countActions(env, "update") != 2 {
		t.Errorf("token %d after %d updates, want a fresh term 6 after taking the late write 5 again", got.term.Token().Seq, countActions(env, "update"))
	}
	if want := kubefake.Epoch.Add(l.Timings().RenewDeadline + l.Timings().LeaseDuration); !got.term.ExclusiveUntil().Equal(want) {
		t.Errorf("exclusive until %v, want %v: timed from the second write", got.term.ExclusiveUntil(), want)
	}
}

func TestAcquireRetriesAFailedWatchAtLeastEveryRetryPeriod(t *testing.T) {
	env := kubefake.NewEnv(leaseObject("", 1, kubefake.Epoch))
	var failures atomic.Int32
	const outage = 8 // long enough for a doubling backoff to pass 2 s
	env.ReactWatch("leases", func(k8stesting.Action) (bool, watch.Interface, error) {
		if failures.Add(1) <= outage {
			return true, nil, apierrors.NewServiceUnavailable("the API server is restarting")
		}
		return false, nil, nil
	})
	l := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), l)
	for i := 1; i <= outage; i++ {
		env.Await(t, fmt.Sprintf("watch attempt %d and its retry timer", i), func() bool {
			return int(failures.Load()) >= i && env.Clock.Waiters() == 1
		})
		env.Clock.Step(l.Timings().RetryPeriod) // never more than a RetryPeriod between attempts
	}
	got := kubefake.Receive(t, res, "acquisition after the outage")
	if got.err != nil {
		t.Fatalf("Acquire: %v", got.err)
	}
	releaseTerm(t, got.term)
}

func TestAcquireReportsPermanentFailures(t *testing.T) {
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "coordination.k8s.io", Resource: "leases"}, testName, errors.New(`User "bob" cannot create resource "leases"`))
	tests := []struct {
		name   string
		verb   string
		wantOp string
	}{
		{name: "create forbidden", verb: "create", wantOp: "create"},
		{name: "list forbidden", verb: "list", wantOp: "list"},
		{name: "watch forbidden", verb: "watch", wantOp: "watch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := kubefake.NewEnv()
			if tt.verb == "watch" {
				env.ReactWatch("leases", func(k8stesting.Action) (bool, watch.Interface, error) {
					return true, nil, forbidden
				})
			} else {
				failLeases(env, tt.verb, func() bool { return true }, forbidden)
			}
			l := newTestLease(t, env, me)
			got := kubefake.Receive(t, acquireAsync(context.Background(), l), "Acquire to fail")
			var apiErr *APIError
			if !errors.As(got.err, &apiErr) || !apierrors.IsForbidden(got.err) || !errors.Is(got.err, ErrAPI) {
				t.Fatalf("Acquire = %v, want a Forbidden APIError", got.err)
			}
			if apiErr.Op != tt.wantOp || apiErr.Lock != "lease default/lock" {
				t.Errorf("APIError op %q lock %q, want %q on lease default/lock", apiErr.Op, apiErr.Lock, tt.wantOp)
			}
		})
	}
}

func TestTryAcquire(t *testing.T) {
	env := kubefake.NewEnv(leaseObject(rival, 1, kubefake.Epoch))
	l := newTestLease(t, env, me)
	_, err := l.TryAcquire(context.Background())
	var held *HeldError
	if !errors.As(err, &held) || held.Holder != rival || !errors.Is(err, ErrHeld) {
		t.Fatalf("TryAcquire on a held lease = %v, want HeldError naming %q", err, rival)
	}
	putLease(t, env, leaseObject("", 1, kubefake.Epoch))
	term, err := l.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire on a free lease: %v", err)
	}
	releaseTerm(t, term)
}
