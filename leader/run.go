package leader

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/regent-k8s/regent/lock"
)

// RunAsLeader waits to lead, runs work with a context that is cancelled when leadership is lost
// or ctx ends, waits for work to return, and only then releases the lock.
//
// It returns nil or the work's error when the work returned on its own or after ctx ended; an
// error matching ErrLost (errors.Is) when leadership was lost while the work ran, joined with the
// work's own error if that was anything but a cancellation (a *HandoverRequestedError, which
// matches ErrLost too, when a handover was requested on the lock's object: the lock was then
// handed over, not released); the error that ended the wait
// (wrapping ctx.Err(), or a *lock.APIError) if leadership never began. A failed release is
// reported after the work's result. A panic in work is returned as a *PanicError. RunAsLeader
// never panics and never exits the process.
func (e *Election) RunAsLeader(ctx context.Context, work Work) error {
	if work == nil {
		return &lock.ConfigError{Field: "work", Value: nil, Reason: "must not be nil"}
	}
	if ctx == nil {
		return &lock.ConfigError{Field: "ctx", Value: nil, Reason: "must not be nil"}
	}
	l, err := e.Lead(ctx)
	if err != nil {
		return err
	}
	workErr := runGuarded(l.Context(), work)
	lostErr := l.lostErr() // judged when the work returned, not after the release
	if req := l.handoverRequest(); lostErr == nil && req != nil {
		lostErr = req // Release hands over to the candidate named
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.releaseTimeout)
	defer cancel()
	relErr := l.Release(rctx)
	switch {
	case lostErr != nil && (workErr == nil || errors.Is(workErr, context.Canceled) || errors.Is(workErr, ErrLost)):
		return lostErr
	case lostErr != nil:
		return fmt.Errorf("%w; the work returned: %w", lostErr, workErr)
	case relErr != nil && workErr != nil:
		return fmt.Errorf("%w; the release failed too: %w", workErr, relErr)
	case relErr != nil:
		return relErr
	}
	return workErr
}

// AsLeader returns work guarded by the election: running it runs RunAsLeader.
func (e *Election) AsLeader(work Work) Work {
	return func(ctx context.Context) error { return e.RunAsLeader(ctx, work) }
}

func runGuarded(ctx context.Context, work Work) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return work(ctx)
}
