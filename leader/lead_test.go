package leader

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

func TestLeadershipErrSaysWhyItEnded(t *testing.T) {
	t.Run("lost", func(t *testing.T) {
		env := kubefake.NewEnv()
		e := newElection(t, env, "me")
		l, err := e.Lead(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if l.Err() != nil {
			t.Fatalf("Err while leading = %v", l.Err())
		}
		env.Await(t, "the term's timers", func() bool { return env.Clock.Waiters() >= 2 })
		env.Clock.Step(30 * time.Second) // past the renew deadline: lost
		kubefake.Receive(t, l.Done(), "the leadership to end")
		if err := l.Err(); !errors.Is(err, ErrLost) {
			t.Fatalf("Err after a loss = %v, want ErrLost", err)
		}
		_ = l.Release(context.Background())
		if err := l.Err(); !errors.Is(err, ErrLost) {
			t.Fatalf("Err after a loss and Release = %v, want ErrLost still", err)
		}
	})
	t.Run("released", func(t *testing.T) {
		e := newElection(t, kubefake.NewEnv(), "me")
		l, err := e.Lead(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := l.Err(); !errors.Is(err, lock.ErrReleased) {
			t.Fatalf("Err after Release = %v, want ErrReleased", err)
		}
	})
	t.Run("parent ended", func(t *testing.T) {
		e := newElection(t, kubefake.NewEnv(), "me")
		ctx, cancel := context.WithCancel(context.Background())
		l, err := e.Lead(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release(context.Background())
		cancel()
		if err := l.Err(); !errors.Is(err, context.Canceled) || errors.Is(err, ErrLost) {
			t.Fatalf("Err after Lead's context ended = %v, want context.Canceled", err)
		}
	})
}

func TestTheDocExampleOfLeadRetriesAfterALoss(t *testing.T) {
	// The pattern Lead's doc shows: with Err returned, RetryOnLost leads again after a loss.
	env := kubefake.NewEnv()
	e := newElection(t, env, "me")
	terms := 0
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- RetryOnLost(func(ctx context.Context) error {
			l, err := e.Lead(ctx)
			if err != nil {
				return err
			}
			defer l.Release(context.WithoutCancel(ctx))
			terms++
			if terms == 2 {
				cancel() // the second term: enough
			}
			<-l.Done() // the work: until the term ends
			return l.Err()
		}, RetryBackoff(time.Millisecond, time.Millisecond))(ctx)
	}()
	env.Await(t, "the first term's timers", func() bool { return env.Clock.Waiters() >= 2 })
	env.Clock.Step(30 * time.Second) // the first term is lost
	if err := kubefake.Receive(t, done, "RetryOnLost to end"); !errors.Is(err, context.Canceled) {
		t.Fatalf("RetryOnLost = %v after the second term's context was cancelled", err)
	}
	if terms != 2 {
		t.Fatalf("%d terms, want a second one after the loss", terms)
	}
}

func TestWaitAtMostBoundsOnlyTheWait(t *testing.T) {
	env := kubefake.NewEnv()
	e := newElection(t, env, "me")
	l, err := e.Lead(context.Background(), WaitAtMost(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(context.Background())
	if _, has := l.Context().Deadline(); has {
		t.Error("the term's context carries the wait's deadline")
	}
	other := newElection(t, env, "other")
	_, err = other.Lead(context.Background(), WaitAtMost(10*time.Millisecond))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, lock.ErrHeld) {
		t.Fatalf("Lead of a held lock with WaitAtMost = %v, want DeadlineExceeded and ErrHeld", err)
	}
}
