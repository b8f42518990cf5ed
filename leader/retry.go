package leader

import (
	"context"
	"errors"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/regent-k8s/regent/lock"
)

type retryOptions struct {
	initial, max time.Duration
	clock        clock.Clock
	notify       func(err error, wait time.Duration)
}

// RetryOption configures RetryOnLost.
type RetryOption interface{ applyRetry(*retryOptions) }

type retryOptionFunc func(*retryOptions)

func (f retryOptionFunc) applyRetry(o *retryOptions) { f(o) }

// RetryBackoff sets the wait before the first retry and its upper bound; each consecutive loss
// doubles it (default 100 ms up to 10 s). A term that lasted longer than maxWait starts again from
// initial: the term is timed from the moment leadership began (Lead returned) to the loss, not
// including the wait to lead. Values that are not positive keep the defaults; maxWait is raised
// to initial if lower.
func RetryBackoff(initial, maxWait time.Duration) RetryOption {
	return retryOptionFunc(func(o *retryOptions) {
		if initial > 0 {
			o.initial = initial
		}
		if maxWait > 0 {
			o.max = maxWait
		}
		o.max = max(o.max, o.initial)
	})
}

// RetryClock sets the clock that times the waits, for tests.
func RetryClock(c clock.Clock) RetryOption {
	return retryOptionFunc(func(o *retryOptions) {
		if c != nil {
			o.clock = c
		}
	})
}

// RetryNotify calls fn before each wait, with the loss and the wait.
func RetryNotify(fn func(err error, wait time.Duration)) RetryOption {
	return retryOptionFunc(func(o *retryOptions) { o.notify = fn })
}

// termBeganKey carries, in the context RetryOnLost gives its work, the function that a Lead
// calls when its term begins.
type termBeganKey struct{}

// noteTermBegan tells an enclosing RetryOnLost that a term began, and returns ctx without the
// note, so that a Lead nested in the term's work does not report to the same RetryOnLost.
func noteTermBegan(ctx context.Context) context.Context {
	if began, ok := ctx.Value(termBeganKey{}).(func()); ok && began != nil {
		began()
		return context.WithValue(ctx, termBeganKey{}, nil)
	}
	return ctx
}

// RetryOnLost returns work that runs work again each time it returns an error matching ErrLost,
// after a backoff, until it returns anything else (nil included) or ctx ends. Once ctx has ended
// it returns ctx.Err(). Wrap a guarded workload with it:
//
//	leader.RetryOnLost(election.AsLeader(work))(ctx)
func RetryOnLost(work Work, opts ...RetryOption) Work {
	o := retryOptions{initial: 100 * time.Millisecond, max: 10 * time.Second, clock: clock.RealClock{}}
	for _, opt := range opts {
		if opt != nil {
			opt.applyRetry(&o)
		}
	}
	return func(ctx context.Context) error {
		switch {
		case work == nil:
			return &lock.ConfigError{Field: "work", Value: nil, Reason: "must not be nil"}
		case ctx == nil:
			return &lock.ConfigError{Field: "ctx", Value: nil, Reason: "must not be nil"}
		}
		var wait time.Duration
		for {
			// A Lead inside work notes when its term began, so that the term is timed rather
			// than the whole run, which includes waiting to lead.
			var mu sync.Mutex
			began := o.clock.Now()
			err := work(context.WithValue(ctx, termBeganKey{}, func() {
				mu.Lock()
				defer mu.Unlock()
				began = o.clock.Now()
			}))
			mu.Lock()
			term := o.clock.Since(began)
			mu.Unlock()
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !errors.Is(err, ErrLost) {
				return err
			}
			switch {
			case wait == 0 || term > o.max:
				wait = o.initial
			default:
				wait = min(2*wait, o.max)
			}
			if o.notify != nil {
				o.notify(err, wait)
			}
			t := o.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C():
			}
		}
	}
}
