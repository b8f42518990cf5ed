package lock

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/regent-k8s/regent/kubefake"
)

// holdLease acquires the absent Lease at kubefake.Epoch and waits until the term's timers run.
func holdLease(t *testing.T, env *kubefake.Env, opts ...Option) (*Lease, *Term) {
	t.Helper()
	l := newTestLease(t, env, me, opts...)
	term, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	env.Await(t, "the deadline and renewal timers", func() bool { return env.Clock.Waiters() == 2 })
	return l, term
}

func TestRenewalKeepsTheTermAndItsToken(t *testing.T) {
	env := kubefake.NewEnv()
	var renewals atomic.Int32
	l, term := holdLease(t, env, WithRenewObserver(func(r Renewal) {
		if r.Err == nil && r.Lock == "lease default/lock" {
			renewals.Add(1)
			env.Notify() // wake the Await below: a count is not a timer or a write
		}
	}))
	defer releaseTerm(t, term)
	for i := 1; i <= 10; i++ {
		env.Clock.Step(l.Timings().RetryPeriod)
		want := kubefake.Epoch.Add(time.Duration(i) * l.Timings().RetryPeriod)
		env.Await(t, "a renewal", func() bool { return recordOf(getLease(t, env)).renewTime.Equal(want) })
	}
	if term.Err() != nil {
		t.Fatalf("term ended: %v", term.Err())
	}
	env.Await(t, "ten renewals observed", func() bool { return renewals.Load() >= 10 })
	rec := recordOf(getLease(t, env))
	if rec.transitions != 1 || !rec.acquireTime.Equal(kubefake.Epoch) {
		t.Errorf("record = %+v, want the acquisition's transitions and acquireTime kept", rec)
	}
	// The last renewal was sent at 20 s: others may take over 15 s later, not before.
	want := kubefake.Epoch.Add(20*time.Second + l.Timings().LeaseDuration)
	env.Await(t, "ExclusiveUntil to follow the last renewal", func() bool { return term.ExclusiveUntil().Equal(want) })
}

func TestTermIsLostAtTheRenewDeadline(t *testing.T) {
	env := kubefake.NewEnv()
	var failing atomic.Bool
	failLeases(env, "update", failing.Load, apierrors.NewServiceUnavailable("etcd is down"))
	l, term := holdLease(t, env)
	failing.Store(true)
	for range 4 { // renewals at 2, 4, 6 and 8 s all fail
		n := countActions(env, "update")
		env.Clock.Step(l.Timings().RetryPeriod)
		env.Await(t, "a failed renewal", func() bool { return countActions(env, "update") > n })
	}
	env.Clock.Step(2*time.Second - time.Millisecond)
	if term.Err() != nil || closed(term.Lost()) {
		t.Fatalf("term ended before the renew deadline: %v", term.Err())
	}
	env.Clock.Step(time.Millisecond) // 10 s after the acquisition was sent
	kubefake.Receive(t, term.Lost(), "the term to be lost")
	if !errors.Is(term.Err(), ErrLost) || !errors.Is(context.Cause(term.Context()), ErrLost) {
		t.Fatalf("Err = %v, cause = %v, want ErrLost", term.Err(), context.Cause(term.Context()))
	}
	if !apierrors.IsServiceUnavailable(term.Err()) {
		t.Errorf("Err = %v, want it to carry the last renewal failure", term.Err())
	}
	if want := kubefake.Epoch.Add(l.Timings().LeaseDuration); !term.ExclusiveUntil().Equal(want) {
		t.Errorf("ExclusiveUntil = %v, want %v", term.ExclusiveUntil(), want)
	}
	failing.Store(false)
	releaseTerm(t, term) // the record is still ours, so the release clears it
	if rec := recordOf(getLease(t, env)); rec.holder != "" {
		t.Errorf("holder after release = %q, want empty", rec.holder)
	}
}

func TestPausedHolderLosesWithoutRenewing(t *testing.T) {
	env := kubefake.NewEnv()
	_, term := holdLease(t, env)
	updates := countActions(env, "update")
	env.Clock.Step(30 * time.Second) // SIGSTOP ... SIGCONT: every timer is due at once
	kubefake.Receive(t, term.Lost(), "the term to be lost")
	releaseTerm(t, term)
	// One update: the release. No renewal was sent after the deadline had passed.
	if got := countActions(env, "update") - updates; got != 1 {
		t.Errorf("%d updates after the pause, want only the release", got)
	}
}

func TestHolderThatSeesAnotherHolderLosesAtOnce(t *testing.T) {
	env := kubefake.NewEnv()
	l, term := holdLease(t, env)
	putLease(t, env, leaseObject(rival, 2, kubefake.Epoch)) // a forced takeover
	env.Clock.Step(l.Timings().RetryPeriod)
	kubefake.Receive(t, term.Lost(), "the term to be lost")
	var lost *LostError
	if !errors.As(term.Err(), &lost) || lost.Reason == "" {
		t.Fatalf("Err = %v, want a LostError with a reason", term.Err())
	}
	releaseTerm(t, term)
	if rec := recordOf(getLease(t, env)); rec.holder != rival {
		t.Errorf("holder after release = %q, want the rival's record untouched", rec.holder)
	}
}

func TestDeletedLeaseEndsTheTerm(t *testing.T) {
	env := kubefake.NewEnv()
	l, term := holdLease(t, env)
	if err := env.Tracker.Delete(coordinationv1.SchemeGroupVersion.WithResource("leases"), testNS, testName); err != nil {
		t.Fatal(err)
	}
	env.Clock.Step(l.Timings().RetryPeriod)
	kubefake.Receive(t, term.Lost(), "the term to be lost")
	releaseTerm(t, term)
}

func TestTokenGrowsWhenTheSameIdentityAcquiresAgain(t *testing.T) {
	env := kubefake.NewEnv()
	l := newTestLease(t, env, me)
	var last int64
	for i := range 3 {
		term, err := l.Acquire(context.Background())
		if err != nil {
			t.Fatalf("Acquire %d: %v", i, err)
		}
		if term.Token().Seq <= last {
			t.Fatalf("term %d token %d, not greater than %d", i, term.Token().Seq, last)
		}
		last = term.Token().Seq
		releaseTerm(t, term)
	}
}

func TestReleaseSurvivesAnUnrelatedWrite(t *testing.T) {
	env := kubefake.NewEnv()
	_, term := holdLease(t, env)
	cur := getLease(t, env)
	cur.Labels = map[string]string{"team": "infra"} // e.g. kubectl label
	putLease(t, env, cur)
	releaseTerm(t, term)
	if rec := recordOf(getLease(t, env)); rec.holder != "" || rec.transitions != 1 || rec.durationSeconds != 1 {
		t.Errorf("record after release = %+v, want free with transitions kept", rec)
	}
}

func TestReleaseIsIdempotentAndEndsTheContext(t *testing.T) {
	env := kubefake.NewEnv()
	_, term := holdLease(t, env)
	releaseTerm(t, term)
	releaseTerm(t, term)
	if !errors.Is(context.Cause(term.Context()), ErrReleased) || closed(term.Lost()) {
		t.Errorf("after Release: cause %v, lost %v; want ErrReleased and not lost", context.Cause(term.Context()), closed(term.Lost()))
	}
	if countActions(env, "update") != 1 {
		t.Errorf("%d updates, want one release", countActions(env, "update"))
	}
}

func TestRecordsAreReadableByClientGo(t *testing.T) {
	env := kubefake.NewEnv()
	_, term := holdLease(t, env)
	defer releaseTerm(t, term)
	cg := &resourcelock.LeaseLock{LeaseMeta: getLease(t, env).ObjectMeta, Client: env.Client.CoordinationV1()}
	rec, _, err := cg.Get(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rec.HolderIdentity != me || rec.LeaseDurationSeconds != 15 || rec.LeaderTransitions != 1 || !rec.RenewTime.Time.Equal(kubefake.Epoch) {
		t.Errorf("client-go reads %+v", rec)
	}
}

func TestConfigValidation(t *testing.T) {
	env := kubefake.NewEnv()
	tests := []struct {
		name      string
		namespace string
		lockName  string
		opts      []Option
		wantField string
	}{
		{name: "empty identity", namespace: "ns", lockName: "x", opts: []Option{WithIdentity("")}, wantField: "Identity"},
		{name: "empty name", namespace: "ns", lockName: "", wantField: "name"},
		{name: "bad name", namespace: "ns", lockName: "Not_Valid", wantField: "name"},
		{name: "empty namespace", namespace: "", lockName: "x", wantField: "namespace"},
		{name: "zero retry period", namespace: "ns", lockName: "x", opts: []Option{WithTimings(Timings{15 * time.Second, 10 * time.Second, 0})}, wantField: "RetryPeriod"},
		{name: "deadline not above retry", namespace: "ns", lockName: "x", opts: []Option{WithTimings(Timings{15 * time.Second, 2 * time.Second, 2 * time.Second})}, wantField: "RenewDeadline"},
		{name: "duration not above deadline", namespace: "ns", lockName: "x", opts: []Option{WithTimings(Timings{10 * time.Second, 10 * time.Second, 2 * time.Second})}, wantField: "LeaseDuration"},
		{name: "fractional duration", namespace: "ns", lockName: "x", opts: []Option{WithTimings(Timings{15500 * time.Millisecond, 10 * time.Second, 2 * time.Second})}, wantField: "LeaseDuration"},
		{name: "nil clock", namespace: "ns", lockName: "x", opts: []Option{WithClock(nil)}, wantField: "Clock"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewLease(env.Client.CoordinationV1(), tt.namespace, tt.lockName, append([]Option{WithIdentity("me")}, tt.opts...)...)
			var cfg *ConfigError
			if !errors.As(err, &cfg) || cfg.Field != tt.wantField || !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("NewLease = %v, want a ConfigError for %s", err, tt.wantField)
			}
		})
	}
	if _, err := NewLease(nil, "ns", "x"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("NewLease(nil client) = %v, want ErrInvalidConfig", err)
	}
}

func TestOwnRecordLeftByAFailedReleaseIsRetakenAtOnce(t *testing.T) {
	env := kubefake.NewEnv()
	var failing atomic.Bool
	failLeases(env, "update", failing.Load, apierrors.NewServiceUnavailable("down"))
	l, term := holdLease(t, env)
	failing.Store(true)
	if err := term.Release(context.Background()); !errors.Is(err, ErrAPI) {
		t.Fatalf("Release = %v, want the API failure", err)
	}
	failing.Store(false)
	if rec := recordOf(getLease(t, env)); rec.holder != me {
		t.Fatalf("holder = %q, want the record the failed release left", rec.holder)
	}
	// No time passes: the record names only this instance's stopped term.
	again, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer releaseTerm(t, again)
	if again.Token().Seq != 2 {
		t.Errorf("token %d, want 2", again.Token().Seq)
	}

	// Another instance with the same identity knows nothing of that term and must wait.
	other := newTestLease(t, env, me)
	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(ctx, other)
	env.Await(t, "the other instance waiting", func() bool { return env.Clock.Waiters() >= 3 })
	cancel()
	if got := kubefake.Receive(t, res, "Acquire to return"); !errors.Is(got.err, ErrHeld) {
		t.Fatalf("other instance: %v, want it to wait as for any holder", got.err)
	}
}
