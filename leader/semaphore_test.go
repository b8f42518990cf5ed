package leader

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

// At most N copies of the work run under a semaphore of size N; a copy that returns lets a waiting
// one start.
func TestRunAsLeaderUnderASemaphoreRunsAtMostNCopies(t *testing.T) {
	env := kubefake.NewEnv()
	ctx := context.Background()
	var running, most atomic.Int32
	stop := make(chan struct{})
	started := make(chan string, 3)
	work := func(name string) Work {
		return func(ctx context.Context) error {
			n := running.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			started <- name
			<-stop
			running.Add(-1)
			return nil
		}
	}
	results := make(chan error, 3)
	for _, id := range []string{"a_1", "b_1", "c_1"} {
		s, err := lock.NewSemaphore(env.Client.CoordinationV1(), "default", "pool", 2,
			lock.WithIdentity(id), lock.WithClock(env.Clock), lock.WithLogger(zaptest.NewLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		e, err := New(s, WithClock(env.Clock), WithLogger(zaptest.NewLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		go func() { results <- e.RunAsLeader(ctx, work(id)) }()
	}
	kubefake.Receive(t, started, "the first copy")
	kubefake.Receive(t, started, "the second copy")
	select {
	case name := <-started:
		t.Fatalf("a third copy (%s) started under a semaphore of 2", name)
	default:
	}
	stop <- struct{}{} // one copy returns: its slot is released, and the third starts
	if err := kubefake.Receive(t, results, "the first copy's result"); err != nil {
		t.Fatalf("RunAsLeader = %v", err)
	}
	kubefake.Receive(t, started, "the third copy")
	close(stop)
	for range 2 {
		if err := kubefake.Receive(t, results, "a copy's result"); err != nil && !errors.Is(err, ErrLost) {
			t.Fatalf("RunAsLeader = %v", err)
		}
	}
	if most.Load() != 2 {
		t.Errorf("at most %d copies ran at once, want 2", most.Load())
	}
}
