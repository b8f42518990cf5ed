package leader

import (
	"context"
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

func TestReleaseWithANilContextIsRefusedAndLeavesTheLeadershipToRelease(t *testing.T) {
	for _, name := range []string{"plain", "with a successor"} {
		t.Run(name, func(t *testing.T) {
			env := kubefake.NewEnv()
			var opts []Option
			if name == "with a successor" {
				opts = append(opts, WithSuccessor(func(context.Context, *lock.Term) (string, error) { return "b_2", nil }))
			}
			l := kubefake.Receive(t, leadAsync(t, newElection(t, env, "a_1", opts...)), "a to lead")
			var cfg *lock.ConfigError
			//lint:ignore SA1012 a nil context is what is tested
			if err := l.Release(nil); !errors.As(err, &cfg) || cfg.Field != "ctx" {
				t.Fatalf("Release(nil) = %v, want a ConfigError on ctx", err)
			}
			//lint:ignore SA1012 a nil context is what is tested
			if err := l.HandOver(nil, "b_2"); !errors.As(err, &cfg) || cfg.Field != "ctx" {
				t.Fatalf("HandOver(nil) = %v, want a ConfigError on ctx", err)
			}
			if err := l.Release(context.Background()); err != nil {
				t.Fatalf("Release after a refused Release(nil): %v", err)
			}
			if !errors.Is(context.Cause(l.Context()), lock.ErrReleased) || holder(t, env) != "" {
				t.Fatalf("after Release the term is %v and the lease names %q, want released and free", context.Cause(l.Context()), holder(t, env))
			}
		})
	}
}

func TestAStoppingSemaphoreHolderWithASuccessorReleasesCleanly(t *testing.T) {
	// A semaphore's slot cannot hand over: WithSuccessor must not turn a clean stop into
	// ErrHandoverUnsupported and a "handed over failed" warning.
	env := kubefake.NewEnv()
	core, logs := observer.New(zap.InfoLevel)
	s, err := lock.NewSemaphore(env.Client.CoordinationV1(), "default", "pool", 1,
		lock.WithIdentity("a_1"), lock.WithClock(env.Clock), lock.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	asked := false
	e, err := New(s, WithClock(env.Clock), WithLogger(zap.New(core)), WithSuccessor(func(context.Context, *lock.Term) (string, error) {
		asked = true
		return "b_2", nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	working := make(chan struct{})
	res := make(chan error, 1)
	go func() {
		res <- e.RunAsLeader(ctx, func(ctx context.Context) error {
			close(working)
			<-ctx.Done()
			return nil
		})
	}()
	kubefake.Receive(t, working, "the work to start")
	cancel()
	if err := kubefake.Receive(t, res, "RunAsLeader to return"); err != nil {
		t.Fatalf("RunAsLeader = %v, want nil: the process was stopping", err)
	}
	if asked {
		t.Error("the successor was asked for a lock that cannot hand over")
	}
	if n := logs.FilterLevelExact(zap.WarnLevel).Len(); n != 0 {
		t.Errorf("%d warnings on a clean stop: %v", n, logs.FilterLevelExact(zap.WarnLevel).All()[0].Message)
	}
}
