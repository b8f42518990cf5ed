package leader

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

func TestRetryOnLostRunsAgainWithBackoff(t *testing.T) {
	env := kubefake.NewEnv()
	errOther := errors.New("other failure")
	tests := []struct {
		name     string
		results  []error
		want     error
		wantRuns int
	}{
		{name: "returns at once without loss", results: []error{nil}, want: nil, wantRuns: 1},
		{name: "stops at another error", results: []error{&lock.LostError{Reason: "x"}, errOther}, want: errOther, wantRuns: 2},
		{name: "retries each loss", results: []error{&lock.LostError{Reason: "x"}, &lock.LostError{Reason: "y"}, nil}, want: nil, wantRuns: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs := 0
			var waits []time.Duration
			work := RetryOnLost(func(context.Context) error {
				runs++
				return tt.results[runs-1]
			}, RetryClock(env.Clock), RetryBackoff(time.Second, 4*time.Second), RetryNotify(func(_ error, d time.Duration) { waits = append(waits, d) }))
			result := make(chan error, 1)
			go func() { result <- work(context.Background()) }()
			for i := 1; i < tt.wantRuns; i++ {
				env.Await(t, "a backoff timer", func() bool { return env.Clock.Waiters() == 1 })
				env.Clock.Step(time.Duration(1<<(i-1)) * time.Second)
			}
			err := kubefake.Receive(t, result, "the retried work")
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) || runs != tt.wantRuns {
				t.Fatalf("got %v after %d runs, want %v after %d", err, runs, tt.want, tt.wantRuns)
			}
			for i, d := range waits {
				if want := time.Duration(1<<i) * time.Second; d != want {
					t.Errorf("wait %d = %v, want %v", i, d, want)
				}
			}
		})
	}
}

func TestRetryOnLostStopsWhenTheContextEnds(t *testing.T) {
	env := kubefake.NewEnv()
	ctx, cancel := context.WithCancel(context.Background())
	work := RetryOnLost(func(context.Context) error { return &lock.LostError{Reason: "x"} }, RetryClock(env.Clock))
	result := make(chan error, 1)
	go func() { result <- work(ctx) }()
	env.Await(t, "a backoff timer", func() bool { return env.Clock.Waiters() == 1 })
	cancel()
	if err := kubefake.Receive(t, result, "the retried work"); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestRetryOnLostLeadsAgainAfterALoss(t *testing.T) {
	env := kubefake.NewEnv()
	e := newElection(t, env, "me")
	var mu sync.Mutex
	var tokens []int64
	runs := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(tokens)
	}
	work := RetryOnLost(e.AsLeader(func(ctx context.Context) error {
		token, ok := TokenFrom(ctx)
		if !ok {
			t.Error("no token in the work's context")
		}
		mu.Lock()
		tokens = append(tokens, token.Seq)
		mu.Unlock()
		if runs() == 1 {
			<-ctx.Done() // lost below
			return ctx.Err()
		}
		return nil
	}), RetryClock(env.Clock), RetryBackoff(time.Second, time.Second), RetryNotify(func(error, time.Duration) {}))
	result := make(chan error, 1)
	go func() { result <- work(context.Background()) }()
	env.Await(t, "the term's timers", func() bool { return env.Clock.Waiters() >= 2 })
	env.Clock.Step(30 * time.Second) // a pause loses the first term
	// Once the first run has returned, the backoff timer is the only timer left.
	env.Await(t, "the backoff timer", func() bool { return runs() == 1 && env.Clock.Waiters() == 1 })
	env.Clock.Step(time.Second)
	if err := kubefake.Receive(t, result, "the retried work"); err != nil {
		t.Fatalf("got %v", err)
	}
	if len(tokens) != 2 || tokens[1] <= tokens[0] {
		t.Fatalf("tokens %v, want two terms with growing tokens", tokens)
	}
}

func TestRetryOnLostTimesTheTermNotTheWait(t *testing.T) {
	// Each run waits a minute to lead, then loses its term after a second. The term is short, so
	// the backoff must keep doubling; timing the whole run would reset it after every wait.
	env := kubefake.NewEnv()
	runs := 0
	var waits []time.Duration
	work := RetryOnLost(func(ctx context.Context) error {
		runs++
		if runs == 4 {
			return nil
		}
		env.Clock.Step(time.Minute) // waiting to lead
		noteTermBegan(ctx)
		env.Clock.Step(time.Second) // the short term
		return &lock.LostError{Reason: "x"}
	}, RetryClock(env.Clock), RetryBackoff(time.Second, 10*time.Second), RetryNotify(func(_ error, d time.Duration) { waits = append(waits, d) }))
	result := make(chan error, 1)
	go func() { result <- work(context.Background()) }()
	for i := 1; i < 4; i++ {
		env.Await(t, "a backoff timer", func() bool { return env.Clock.Waiters() == 1 })
		env.Clock.Step(10 * time.Second)
	}
	if err := kubefake.Receive(t, result, "the retried work"); err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
	if len(waits) != len(want) {
		t.Fatalf("waits %v, want %v", waits, want)
	}
	for i := range want {
		if waits[i] != want[i] {
			t.Errorf("waits %v, want %v", waits, want)
			break
		}
	}
}
