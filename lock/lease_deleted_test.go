package lock

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/kubefake"
)

var leases = coordinationv1.SchemeGroupVersion.WithResource("leases")

func deleteLease(t *testing.T, env *kubefake.Env) {
	t.Helper()
	if err := env.Tracker.Delete(leases, testNS, testName); err != nil {
		t.Fatalf("delete lease: %v", err)
	}
}

func TestADeletedHeldLeaseIsNotCreatedBeforeItsRecordExpires(t *testing.T) {
	// A rival holds the Lease with token 5; the waiter observes that at the epoch. Five seconds
	// later someone runs kubectl delete lease. The rival keeps working until its next renewal
	// tells it, so the waiter must treat the deletion like the record: no create before 15 s.
	env := kubefake.NewEnv(leaseObject(rival, 5, kubefake.Epoch))
	l := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	env.Clock.Step(5 * time.Second)
	timers := env.Clock.TimersCreated()
	deleteLease(t, env)
	env.Await(t, "a timer for the deleted record", func() bool {
		return env.Clock.TimersCreated() > timers && env.Clock.Waiters() == 1
	})
	env.Clock.Step(10*time.Second - time.Millisecond)
	if n := countActions(env, "create"); n != 0 {
		t.Fatalf("%d creates before the deleted record expired", n)
	}
	env.Clock.Step(time.Millisecond)
	got := kubefake.Receive(t, res, "the acquisition")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	// Deleting the Lease reset its count; the waiter saw 5, so the new term's token is above it.
	if got.term.Token().Seq != 6 {
		t.Errorf("token %d, want 6: tokens must keep growing across a deletion the waiter saw", got.term.Token().Seq)
	}
}

func TestADeletedFreeLeaseIsCreatedAtOnce(t *testing.T) {
	env := kubefake.NewEnv(leaseObject("", 3, kubefake.Epoch))
	l := newTestLease(t, env, me)
	var conflicts atomic.Bool // the free record is taken by someone else first, then deleted
	conflicts.Store(true)
	env.React("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if conflicts.Load() {
			return true, nil, apierrors.NewConflict(leases.GroupResource(), testName, errors.New("modified"))
		}
		return false, nil, nil
	})
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the lost race", func() bool { return countActions(env, "update") == 1 })
	conflicts.Store(false)
	deleteLease(t, env)
	got := kubefake.Receive(t, res, "the acquisition")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Token().Seq != 4 {
		t.Errorf("token %d, want 4", got.term.Token().Seq)
	}
}

func TestAHolderWhoseLeaseWasDeletedWaitsALeaseDurationThenCreatesItWithAGreaterToken(t *testing.T) {
	// The holder learns of the deletion at its next renewal. Others may have created the Lease
	// and lost it again since, unseen by this value: the absent Lease binds it for a whole
	// LeaseDuration from the moment it finds it absent.
	env := kubefake.NewEnv()
	l, term := holdLease(t, env)
	deleteLease(t, env)
	env.Clock.Step(l.Timings().RetryPeriod)
	kubefake.Receive(t, term.Lost(), "the term to be lost")
	releaseTerm(t, term)
	if _, err := l.TryAcquire(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("TryAcquire right after the unseen deletion = %v, want ErrHeld", err)
	}
	env.Clock.Step(l.Timings().LeaseDuration)
	again, err := l.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire a LeaseDuration after the deletion: %v", err)
	}
	defer releaseTerm(t, again)
	if again.Token().Seq != 2 {
		t.Errorf("token %d, want 2", again.Token().Seq)
	}
}

func TestTryAcquireDoesNotCreateALeaseWhoseDeletedRecordIsInForce(t *testing.T) {
	env := kubefake.NewEnv(leaseObject(rival, 5, kubefake.Epoch))
	l := newTestLease(t, env, me)
	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(ctx, l)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	deleteLease(t, env)
	env.Await(t, "the deletion noted", func() bool { return l.goneInForce() != nil })
	cancel()
	kubefake.Receive(t, res, "Acquire to end")
	if _, err := l.TryAcquire(context.Background()); !errors.Is(err, ErrHeld) || !strings.Contains(err.Error(), rival) {
		t.Fatalf("TryAcquire = %v, want held by %s", err, rival)
	}
	env.Clock.Step(15 * time.Second)
	term, err := l.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire after expiry: %v", err)
	}
	releaseTerm(t, term)
}

func TestALeaseCreatedAgainUnderTheSameIdentityAndCountIsNotThisTerms(t *testing.T) {
	env := kubefake.NewEnv()
	l, term := holdLease(t, env)
	old := getLease(t, env)
	// Deleted, then created again by another instance with the same identity: same holder, same
	// transition count, another object.
	deleteLease(t, env)
	again := leaseObject(me, 1, kubefake.Epoch)
	if err := env.Tracker.Create(leases, again, testNS); err != nil {
		t.Fatal(err)
	}
	recreated := getLease(t, env)
	if recreated.UID == old.UID {
		t.Fatal("the fake reused the uid")
	}
	env.Clock.Step(l.Timings().RetryPeriod)
	kubefake.Receive(t, term.Lost(), "the term to be lost")
	releaseTerm(t, term)
	if now := getLease(t, env); now.ResourceVersion != recreated.ResourceVersion {
		t.Errorf("the other instance's Lease was written to by the old term: %+v", recordOf(now))
	}
}

func TestImplausibleTimingsAreRefusedWithTheFieldAndAUnitHint(t *testing.T) {
	tests := []struct {
		name      string
		timings   Timings
		wantField string
		wantHint  bool
	}{
		{name: "nanoseconds by mistake", timings: Timings{15 * time.Second, 10, 2}, wantField: "RetryPeriod", wantHint: true},
		{name: "retry period below the floor", timings: Timings{15 * time.Second, 10 * time.Second, 50 * time.Millisecond}, wantField: "RetryPeriod"},
		{name: "deadline in nanoseconds", timings: Timings{15 * time.Second, 10, 2 * time.Second}, wantField: "RenewDeadline", wantHint: true},
		{name: "margin below the floor", timings: Timings{3 * time.Second, 2500 * time.Millisecond, 500 * time.Millisecond}, wantField: "RenewDeadline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.timings.Validate()
			var cfg *ConfigError
			if !errors.As(err, &cfg) || cfg.Field != tt.wantField {
				t.Fatalf("Validate = %v, want a ConfigError for %s", err, tt.wantField)
			}
			if hint := strings.Contains(err.Error(), "time.Second"); hint != tt.wantHint {
				t.Errorf("error %q: unit hint %v, want %v", err, hint, tt.wantHint)
			}
		})
	}
	for _, ok := range []Timings{DefaultTimings, {3 * time.Second, 2 * time.Second, 500 * time.Millisecond}, {time.Second + time.Second, time.Second, 100 * time.Millisecond}} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
}

func TestWritesAnsweredLateAreRetakenABoundedNumberOfTimes(t *testing.T) {
	// Every write lands, but its answer comes after the renew deadline. Retaking is right once
	// or twice; forever would flood the API server (and once recursed until the stack overflowed).
	env := kubefake.NewEnv(leaseObject("", 4, kubefake.Epoch))
	l := newTestLease(t, env, me)
	var late atomic.Bool
	late.Store(true)
	env.React("update", "leases", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if !late.Load() {
			return false, nil, nil
		}
		obj := a.(k8stesting.UpdateAction).GetObject()
		if err := env.Tracker.Update(a.GetResource(), obj, testNS); err != nil {
			return true, nil, err
		}
		env.Clock.Step(l.Timings().RenewDeadline)
		stored, err := env.Tracker.Get(a.GetResource(), testNS, testName)
		return true, stored, err
	})
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the back-off after the late rounds", func() bool {
		return countActions(env, "update") == maxLateRounds && env.Clock.Waiters() == 1
	})
	late.Store(false)
	env.Clock.Step(l.Timings().RetryPeriod)
	got := kubefake.Receive(t, res, "the acquisition after the back-off")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	if closed(got.term.Done()) {
		t.Fatalf("the term began lost: %v", got.term.Err())
	}
}

func TestObserveNeverGoesBackInTime(t *testing.T) {
	// The watch opens while rival holds term 3; rival_new takes term 4 before the list. The
	// watch then replays term 3: an observer must not report it after term 4.
	env := kubefake.NewEnv(leaseObject(rival, 3, kubefake.Epoch))
	l := newTestLease(t, env, me)
	var once atomic.Bool
	env.React("list", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if once.CompareAndSwap(false, true) {
			cur := getLease(t, env)
			leaseRecord{holder: "rival_new", durationSeconds: 15, acquireTime: kubefake.Epoch, renewTime: kubefake.Epoch, transitions: 4}.writeTo(cur)
			if err := env.Tracker.Update(leases, cur, testNS); err != nil {
				t.Errorf("update: %v", err)
			}
		}
		return false, nil, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan Observation, 10)
	done := make(chan error, 1)
	go func() { done <- l.Observe(ctx, func(o Observation) { seen <- o }) }()
	first := kubefake.Receive(t, seen, "the first observation")
	if first.Holder != "rival_new" {
		t.Fatalf("first observation %q, want rival_new", first.Holder)
	}
	// A later change proves the stream has moved past the replay.
	cur := getLease(t, env)
	leaseRecord{holder: "", durationSeconds: 1, acquireTime: kubefake.Epoch, renewTime: kubefake.Epoch, transitions: 4}.writeTo(cur)
	if err := env.Tracker.Update(leases, cur, testNS); err != nil {
		t.Fatal(err)
	}
	if next := kubefake.Receive(t, seen, "the release"); next.Holder != "" {
		t.Errorf("observed %q after rival_new, want the release: an older record was replayed", next.Holder)
	}
	cancel()
	if err := kubefake.Receive(t, done, "Observe to return"); err != nil {
		t.Fatal(err)
	}
}

func TestAFreeLeaseCreatedAgainAfterADeletionWaitsForTheDeletedRecord(t *testing.T) {
	// kubectl delete lease, then kubectl apply of an empty Lease: the new object is free, but the
	// old holder works on until its next renewal. The waiter must still wait for the old record.
	env := kubefake.NewEnv(leaseObject(rival, 5, kubefake.Epoch))
	l := newTestLease(t, env, me)
	res := acquireAsync(context.Background(), l)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	deleteLease(t, env)
	env.Await(t, "the deletion noted", func() bool { return l.goneInForce() != nil })
	timers := env.Clock.TimersCreated()
	if err := env.Tracker.Create(leases, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: testName, Namespace: testNS}}, testNS); err != nil {
		t.Fatal(err)
	}
	env.Await(t, "a timer for the deleted record", func() bool { return env.Clock.TimersCreated() > timers && env.Clock.Waiters() == 1 })
	env.Clock.Step(15*time.Second - time.Millisecond)
	if n := countActions(env, "update"); n != 0 {
		t.Fatalf("%d updates before the deleted record expired", n)
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

func TestADeletionThisValueDidNotSeeBindsItForALeaseDuration(t *testing.T) {
	// This value knew the Lease (it held it once). While it was not following the Lease, the
	// Lease was deleted and created again, free, by someone else: a rival may have held the
	// deleted one and may still work. The next Acquire must not take the free record at once.
	for _, recreate := range []bool{false, true} {
		t.Run(map[bool]string{false: "absent", true: "created again free"}[recreate], func(t *testing.T) {
			env := kubefake.NewEnv()
			l, term := holdLease(t, env)
			releaseTerm(t, term)
			deleteLease(t, env)
			if recreate {
				if err := env.Tracker.Create(leases, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: testName, Namespace: testNS}}, testNS); err != nil {
					t.Fatal(err)
				}
			}
			res := acquireAsync(context.Background(), l)
			env.Await(t, "the wait for the unseen deletion", func() bool { return env.Clock.Waiters() == 1 })
			env.Clock.Step(l.Timings().LeaseDuration - time.Millisecond)
			if n := countActions(env, "create") + countActions(env, "update"); n != 2 { // the first term's create and release
				t.Fatalf("%d writes before a LeaseDuration passed, want none after the release", n-2)
			}
			env.Clock.Step(time.Millisecond)
			got := kubefake.Receive(t, res, "the acquisition")
			if got.err != nil {
				t.Fatal(got.err)
			}
			defer releaseTerm(t, got.term)
			if got.term.Token().Seq != 2 {
				t.Errorf("token %d, want 2", got.term.Token().Seq)
			}
		})
	}
}

func TestAHolderThatFindsItsLeaseCreatedAgainFreeWaitsALeaseDuration(t *testing.T) {
	// The holder's renewal finds another object: the Lease was deleted and created again, and
	// whoever did may have held it meanwhile. The free record is not taken before a LeaseDuration.
	env := kubefake.NewEnv()
	l, term := holdLease(t, env)
	deleteLease(t, env)
	if err := env.Tracker.Create(leases, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: testName, Namespace: testNS}}, testNS); err != nil {
		t.Fatal(err)
	}
	env.Clock.Step(l.Timings().RetryPeriod)
	kubefake.Receive(t, term.Lost(), "the term to be lost")
	releaseTerm(t, term)
	if _, err := l.TryAcquire(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("TryAcquire at once = %v, want ErrHeld", err)
	}
	env.Clock.Step(l.Timings().LeaseDuration)
	again, err := l.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire a LeaseDuration later: %v", err)
	}
	releaseTerm(t, again)
}
