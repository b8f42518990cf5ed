package leader

import (
	"context"
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

func TestRunAsLeaderReturnsTheWorksResultAndThenReleases(t *testing.T) {
	errWork := errors.New("work failed")
	for _, want := range []error{nil, errWork} {
		env := kubefake.NewEnv()
		e := newElection(t, env, "me")
		var heldDuringWork string
		err := e.RunAsLeader(context.Background(), func(ctx context.Context) error {
			heldDuringWork = holder(t, env)
			return want
		})
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("RunAsLeader = %v, want %v", err, want)
		}
		if heldDuringWork != "me" || holder(t, env) != "" {
			t.Errorf("holder during work %q, after %q; want me, then released", heldDuringWork, holder(t, env))
		}
	}
}

func TestLostLeadershipCancelsWorkAndReleasesOnlyAfterItReturns(t *testing.T) {
	env := kubefake.NewEnv()
	rec := &events{}
	e := newElection(t, env, "me", WithRecorder(rec))
	cancelled := make(chan struct{})
	finish := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- e.RunAsLeader(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			close(cancelled)
			<-finish // the work takes its time to stop
			return ctx.Err()
		})
	}()
	env.Await(t, "the term's timers", func() bool { return env.Clock.Waiters() >= 2 })
	before := updates(env)
	env.Clock.Step(30 * time.Second) // paused past the renew deadline: the term is lost
	kubefake.Receive(t, cancelled, "the work to be cancelled")
	if updates(env) != before || holder(t, env) != "me" {
		t.Fatal("the lock was written to while the work was still running")
	}
	close(finish)
	err := kubefake.Receive(t, result, "RunAsLeader to return")
	var lost *lock.LostError
	if !errors.Is(err, ErrLost) || !errors.As(err, &lost) {
		t.Fatalf("RunAsLeader = %v, want lost leadership", err)
	}
	if holder(t, env) != "" {
		t.Errorf("holder = %q after the work returned, want the record released", holder(t, env))
	}
	if a, ended, l, _ := rec.counts(); a != 1 || ended != 1 || l != 1 {
		t.Errorf("recorder: acquired %d ended %d lost %d, want 1 1 1", a, ended, l)
	}
}

func TestLostLeadershipKeepsTheWorksOwnError(t *testing.T) {
	env := kubefake.NewEnv()
	e := newElection(t, env, "me")
	errFlush := errors.New("flush failed")
	result := make(chan error, 1)
	go func() {
		result <- e.RunAsLeader(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			return errFlush
		})
	}()
	env.Await(t, "the term's timers", func() bool { return env.Clock.Waiters() >= 2 })
	env.Clock.Step(30 * time.Second)
	err := kubefake.Receive(t, result, "RunAsLeader to return")
	if !errors.Is(err, ErrLost) || !errors.Is(err, errFlush) {
		t.Fatalf("RunAsLeader = %v, want both lost leadership and the work's error", err)
	}
}

func TestOverrunIsReportedWhenWorkOutlivesItsTerm(t *testing.T) {
	env := kubefake.NewEnv()
	rec := &events{}
	overran := make(chan Overrun, 1)
	e := newElection(t, env, "me", WithRecorder(rec), OnOverrun(func(o Overrun) { overran <- o }))
	finish := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		result <- e.RunAsLeader(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			<-finish // the work ignores its cancellation
			return nil
		})
	}()
	loseByFailingRenewals(t, env) // lost 10 s after the acquisition
	env.Await(t, "the overrun timer", func() bool { return env.Clock.Waiters() == 1 })
	env.Clock.Step(5*time.Second - time.Millisecond)
	if _, _, _, n := rec.counts(); n != 0 {
		t.Fatal("overrun reported before other candidates could take over")
	}
	env.Clock.Step(time.Millisecond) // 15 s: the lease may now pass to someone else
	o := kubefake.Receive(t, overran, "the overrun")
	if o.Lock != "lease default/lock" || o.Token.Seq != 1 || !o.Since.Equal(kubefake.Epoch.Add(15*time.Second)) {
		t.Errorf("overrun = %+v", o)
	}
	close(finish)
	kubefake.Receive(t, result, "RunAsLeader to return")
	if _, _, _, n := rec.counts(); n != 1 {
		t.Errorf("recorded %d overruns, want 1", n)
	}
}

func TestWorkThatStopsInTimeIsNoOverrun(t *testing.T) {
	env := kubefake.NewEnv()
	rec := &events{}
	e := newElection(t, env, "me", WithRecorder(rec))
	result := make(chan error, 1)
	go func() {
		result <- e.RunAsLeader(context.Background(), func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		})
	}()
	loseByFailingRenewals(t, env)
	if err := kubefake.Receive(t, result, "RunAsLeader to return"); !errors.Is(err, ErrLost) {
		t.Fatalf("RunAsLeader = %v, want ErrLost", err)
	}
	env.Clock.Step(time.Minute)
	if _, _, _, n := rec.counts(); n != 0 {
		t.Errorf("recorded %d overruns, want none", n)
	}
}

// loseByFailingRenewals makes every lease update fail from now on and moves the clock through
// the renewals of a term acquired at kubefake.Epoch until its renew deadline (10 s) passes.
func loseByFailingRenewals(t *testing.T, env *kubefake.Env) {
	t.Helper()
	env.Await(t, "the term's timers", func() bool { return env.Clock.Waiters() >= 2 })
	env.React("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("down")
	})
	for range 5 {
		n := updates(env)
		env.Clock.Step(2 * time.Second)
		if env.Clock.Since(kubefake.Epoch) < 10*time.Second {
			env.Await(t, "a failed renewal", func() bool { return updates(env) > n })
		}
	}
}

func TestPanickingWorkIsAnErrorAndTheLockIsReleased(t *testing.T) {
	env := kubefake.NewEnv()
	e := newElection(t, env, "me")
	err := e.RunAsLeader(context.Background(), func(context.Context) error { panic("boom") })
	var p *PanicError
	if !errors.As(err, &p) || p.Value != "boom" || len(p.Stack) == 0 {
		t.Fatalf("RunAsLeader = %v, want a PanicError", err)
	}
	if holder(t, env) != "" {
		t.Errorf("holder = %q, want released", holder(t, env))
	}
}

func TestContextEndingWhileWaitingOrWorking(t *testing.T) {
	t.Run("while waiting", func(t *testing.T) {
		env := kubefake.NewEnv()
		other := newElection(t, env, "other")
		l, err := other.Lead(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(context.Background())
		e := newElection(t, env, "me")
		ctx, cancel := context.WithCancel(context.Background())
		result := make(chan error, 1)
		go func() {
			result <- e.RunAsLeader(ctx, func(context.Context) error { return errors.New("must not run") })
		}()
		env.Await(t, "the candidate waiting on expiry", func() bool { return env.Clock.Waiters() >= 3 })
		cancel()
		err = kubefake.Receive(t, result, "RunAsLeader to return")
		if !errors.Is(err, context.Canceled) || !errors.Is(err, lock.ErrHeld) {
			t.Fatalf("RunAsLeader = %v, want context.Canceled naming the holder", err)
		}
	})
	t.Run("while working", func(t *testing.T) {
		env := kubefake.NewEnv()
		e := newElection(t, env, "me")
		ctx, cancel := context.WithCancel(context.Background())
		err := e.RunAsLeader(ctx, func(ctx context.Context) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		})
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrLost) {
			t.Fatalf("RunAsLeader = %v, want context.Canceled and not lost", err)
		}
		if holder(t, env) != "" {
			t.Errorf("holder = %q, want released", holder(t, env))
		}
	})
}

func TestNilWorkAndNilLockAreRejected(t *testing.T) {
	if _, err := New(nil); !errors.Is(err, lock.ErrInvalidConfig) {
		t.Errorf("New(nil) = %v", err)
	}
	env := kubefake.NewEnv()
	if err := newElection(t, env, "me").RunAsLeader(context.Background(), nil); !errors.Is(err, lock.ErrInvalidConfig) {
		t.Errorf("RunAsLeader(nil) = %v", err)
	}
}
