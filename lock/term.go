package lock

import (
	"context"
	"sync"
	"time"
)

// Term is one tenure of a lock by this process, from a successful acquisition until it is
// released or lost. A term ends once: its Context is then done, with ErrReleased or a *LostError
// as its cause, and a lost term also closes Lost.
//
// The holder must stop acting on the term's behalf when Context is done and then call Release:
// Release is what lets the next holder in early; without it the lock frees itself only when its
// record expires (Lease) or its object is collected (leader for life).
type Term struct {
	lock    string
	holder  string
	token   Token
	backend termBackend

	ctx    context.Context
	cancel context.CancelCauseFunc
	lost   chan struct{}

	mu      sync.Mutex
	err     error
	atRisk  bool          // see TermAtRisk
	changed chan struct{} // closed at the next change of State; nil until State asks

	requested chan struct{} // closed on a handover request (see HandoverRequested)
	successor string        // the candidate the request named

	releaseOnce sync.Once
	releaseErr  error
}

// termBackend is what a lock kind adds to a term.
type termBackend interface {
	// stop ends the kind's background work (renewals, watches) and waits for it to return.
	stop()
	// release gives the lock up in storage if the record is still this term's.
	release(ctx context.Context) error
	// exclusiveUntil is the first moment, on the lock's clock, at which another process may hold
	// the lock; the zero time when the kind cannot say.
	exclusiveUntil() time.Time
	// deadline is the moment, on the lock's clock, at which the term ends unless renewed; ok is
	// false for kinds that do not renew.
	deadline() (deadline time.Time, ok bool)
	// checkDeadline ends the term as lost, as the kind's own loss does, if its deadline has
	// passed by the lock's clock (see Term.Check).
	checkDeadline()
}

func newTerm(lock, holder string, token Token) *Term {
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Term{lock: lock, holder: holder, token: token, ctx: ctx, cancel: cancel, lost: make(chan struct{}),
		requested: make(chan struct{})}
}

// Context is done when the term ends. context.Cause tells why: ErrReleased or a *LostError.
func (t *Term) Context() context.Context { return t.ctx }

// Done is closed when the term ends, released or lost. A Term that no lock returned has ended.
func (t *Term) Done() <-chan struct{} {
	if t.ctx == nil {
		return closedChan
	}
	return t.ctx.Done()
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// Lost is closed when the term ends for any reason other than Release.
func (t *Term) Lost() <-chan struct{} { return t.lost }

// Err is nil while the term lasts, then ErrReleased or a *LostError.
func (t *Term) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

// Token identifies this term; see Token for what it protects.
func (t *Term) Token() Token { return t.token }

// Holder is the identity under which the lock is held.
func (t *Term) Holder() string { return t.holder }

// Lock names the lock the term belongs to.
func (t *Term) Lock() string { return t.lock }

// ExclusiveUntil is the earliest moment, on the lock's clock, at which another process may hold
// the lock, given what this process has written so far. A Lease gives the send time of the last
// successful renewal plus the lease duration; kinds that cannot bound it give the zero time.
func (t *Term) ExclusiveUntil() time.Time {
	if t.backend == nil {
		return time.Time{}
	}
	return t.backend.exclusiveUntil()
}

// Release ends the term and gives the lock up, writing to the lock's object only if it still
// records this term: it never clears or deletes a newer holder's record. It is safe to call more
// than once and after the term was lost; later calls return the first call's result. When the
// write fails the term still ends here, and the lock frees itself as its kind allows.
func (t *Term) Release(ctx context.Context) error {
	if t.backend == nil {
		return &ConfigError{Field: "Term", Value: "zero", Reason: "was not returned by a lock's Acquire or TryAcquire"}
	}
	if ctx == nil {
		return errNil("ctx")
	}
	return t.endWith(ctx, t.backend.release)
}

// endWith ends the term, stops the kind's background work, and makes the term's last write with
// give (a release or a handover); only the first call has an effect, and later ones return its
// result.
func (t *Term) endWith(ctx context.Context, give func(context.Context) error) error {
	t.releaseOnce.Do(func() {
		t.end(ErrReleased)
		t.backend.stop()
		t.releaseErr = give(ctx)
	})
	return t.releaseErr
}

// end ends the term with err as its cause; only the first call has an effect. It reports whether
// this call ended the term.
func (t *Term) end(err error) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil {
		return false
	}
	t.err = err
	if err != ErrReleased {
		close(t.lost)
	}
	t.notifyLocked()
	t.cancel(err)
	return true
}

// loseTerm ends the term as lost.
func (t *Term) loseTerm(reason string, err error) bool {
	return t.end(&LostError{Lock: t.lock, Reason: reason, Err: err})
}
