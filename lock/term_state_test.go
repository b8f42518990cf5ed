package lock

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/kubefake"
)

func TestTermIsAtRiskWhileRenewalsFailAndHealthyAgainAfterOne(t *testing.T) {
	env := kubefake.NewEnv()
	var failing atomic.Bool
	failLeases(env, "update", failing.Load, apierrors.NewServiceUnavailable("etcd is down"))
	var observed []TermState
	var mu sync.Mutex
	l, term := holdLease(t, env, WithStateObserver(func(c StateChange) {
		mu.Lock()
		defer mu.Unlock()
		if c.Lock == "lease default/lock" && c.Token.Seq == 1 {
			observed = append(observed, c.State)
		}
		env.Notify() // wake the Await below: a call is not a timer or a write
	}))
	defer releaseTerm(t, term)
	state, changed := term.State()
	if state != TermHealthy {
		t.Fatalf("state after acquiring = %v, want healthy", state)
	}
	failing.Store(true)
	for range 2 { // renewals at 2 and 4 s fail
		n := countActions(env, "update")
		env.Clock.Step(l.Timings().RetryPeriod)
		env.Await(t, "a failed renewal", func() bool { return countActions(env, "update") > n })
	}
	if state, _ := term.State(); state != TermHealthy {
		t.Fatalf("state 4 s after the last renewal = %v, want healthy until half the renew deadline (5 s)", state)
	}
	env.Clock.Step(time.Second) // 5 s after the last successful renewal was sent
	kubefake.Receive(t, changed, "the state to change")
	state, changed = term.State()
	if state != TermAtRisk {
		t.Fatalf("state 5 s after the last renewal = %v, want at-risk", state)
	}
	if err := term.Check(); err != nil {
		t.Fatalf("Check of an at-risk term inside its deadline = %v, want nil", err)
	}
	failing.Store(false)
	env.Clock.Step(time.Second) // the renewal due at 6 s succeeds
	kubefake.Receive(t, changed, "the state to change back")
	if state, _ := term.State(); state != TermHealthy {
		t.Fatalf("state after a successful renewal = %v, want healthy", state)
	}
	if term.Err() != nil {
		t.Fatalf("term ended: %v", term.Err())
	}
	env.Await(t, "the state observer to see both changes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(observed) >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(observed, []TermState{TermAtRisk, TermHealthy}) {
		t.Errorf("the state observer saw %v, want [at-risk healthy]", observed)
	}
}

func TestStateReportsTheEndOfATerm(t *testing.T) {
	env := kubefake.NewEnv()
	_, term := holdLease(t, env)
	_, changed := term.State()
	releaseTerm(t, term)
	kubefake.Receive(t, changed, "the state to change at the release")
	if state, ch := term.State(); state != TermEnded || ch != nil {
		t.Fatalf("State after Release = %v, %v; want ended and no channel", state, ch)
	}
	if err := term.Check(); !errors.Is(err, ErrReleased) {
		t.Fatalf("Check after Release = %v, want ErrReleased", err)
	}
}

func TestCheckEndsATermPastItsDeadlineBeforeItsTimersRun(t *testing.T) {
	env := kubefake.NewEnv()
	clk := kubefake.NewPausedClock(env.Clock)
	l, term := holdLease(t, env, WithClock(clk))
	if err := term.Check(); err != nil {
		t.Fatalf("Check of a fresh term = %v, want nil", err)
	}
	if d, ok := term.Deadline(); !ok || !d.Equal(kubefake.Epoch.Add(l.Timings().RenewDeadline)) {
		t.Fatalf("Deadline = %v, %v; want the acquisition's send time plus RenewDeadline", d, ok)
	}
	clk.SetPause(l.Timings().RenewDeadline - time.Millisecond)
	if err := term.Check(); err != nil {
		t.Fatalf("Check 1 ms before the deadline = %v, want nil", err)
	}
	clk.SetPause(l.Timings().RenewDeadline) // resumed at the deadline; no timer has fired
	err := term.Check()
	var lost *LostError
	if !errors.As(err, &lost) || !errors.Is(err, ErrLost) {
		t.Fatalf("Check at the deadline = %v, want a *LostError", err)
	}
	if !closed(term.Done()) || !closed(term.Lost()) || !errors.Is(context.Cause(term.Context()), ErrLost) {
		t.Fatalf("the term's Context is not done as lost when Check returns")
	}
	if state, _ := term.State(); state != TermEnded {
		t.Fatalf("state = %v, want ended", state)
	}
	updates := countActions(env, "update")
	releaseTerm(t, term)
	if n := countActions(env, "update") - updates; n != 1 {
		t.Errorf("%d updates after Check found the deadline passed, want only the release", n)
	}
}

func TestAtRiskAfterIsValidated(t *testing.T) {
	env := kubefake.NewEnv()
	for _, d := range []time.Duration{-time.Second, DefaultTimings.RenewDeadline, 20 * time.Second} {
		_, err := NewLease(env.Client.CoordinationV1(), testNS, testName, WithIdentity(me), WithAtRiskAfter(d))
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != "AtRiskAfter" {
			t.Errorf("WithAtRiskAfter(%v): %v, want a *ConfigError naming AtRiskAfter", d, err)
		}
	}
	if _, err := NewLease(env.Client.CoordinationV1(), testNS, testName, WithIdentity(me), WithAtRiskAfter(3*time.Second)); err != nil {
		t.Errorf("WithAtRiskAfter(3s): %v", err)
	}
}

func TestAtRiskAfterMovesTheThreshold(t *testing.T) {
	env := kubefake.NewEnv()
	var failing atomic.Bool
	failLeases(env, "update", failing.Load, apierrors.NewServiceUnavailable("etcd is down"))
	l, term := holdLease(t, env, WithAtRiskAfter(3*time.Second))
	defer releaseTerm(t, term)
	defer failing.Store(false) // before the release
	failing.Store(true)
	n := countActions(env, "update")
	env.Clock.Step(l.Timings().RetryPeriod) // the renewal at 2 s fails
	env.Await(t, "a failed renewal", func() bool { return countActions(env, "update") > n })
	_, changed := term.State()
	env.Clock.Step(time.Second)
	kubefake.Receive(t, changed, "the state to change at 3 s")
	if state, _ := term.State(); state != TermAtRisk {
		t.Fatalf("state 3 s after the last renewal = %v, want at-risk", state)
	}
}

func TestATermWhoseAcquiringWriteWasAnsweredLateBeginsAtRisk(t *testing.T) {
	// The create is answered 6 s after it was sent: past half the renew deadline (5 s), so the
	// term must begin at risk, not healthy (it could be lost without ever being reported). Its
	// first renewal, due at once, fails, so the state stays at risk.
	env := kubefake.NewEnv()
	var failing atomic.Bool
	failing.Store(true)
	failLeases(env, "update", failing.Load, apierrors.NewServiceUnavailable("etcd is slow"))
	env.React("create", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		env.Clock.Step(6 * time.Second)
		return false, nil, nil
	})
	var mu sync.Mutex
	var states []TermState
	l := newTestLease(t, env, me, WithStateObserver(func(c StateChange) {
		mu.Lock()
		defer mu.Unlock()
		states = append(states, c.State)
	}))
	term, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		failing.Store(false)
		releaseTerm(t, term)
	}()
	if state, _ := term.State(); state != TermAtRisk {
		t.Fatalf("state of a term acquired 6 s after its write was sent = %v, want at-risk", state)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(states, []TermState{TermAtRisk}) {
		t.Errorf("the state observer saw %v, want [at-risk]", states)
	}
}
