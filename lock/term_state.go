package lock

import "time"

// TermState is how a term stands, as this process judges it.
type TermState int

// The states of a term.
const (
	// TermHealthy: the term lasts and, for a lock that renews (a Lease), its last renewal
	// succeeded recently. Leader-for-life terms are healthy until they end.
	TermHealthy TermState = iota
	// TermAtRisk (jeopardy): no renewal has succeeded for longer than the at-risk threshold (see
	// WithAtRiskAfter); the term is lost at the renew deadline unless one succeeds first. Work
	// may pause actions that are hard to undo until the term is healthy again.
	TermAtRisk
	// TermEnded: released or lost; see Term.Err.
	TermEnded
)

func (s TermState) String() string {
	switch s {
	case TermHealthy:
		return "healthy"
	case TermAtRisk:
		return "at-risk"
	case TermEnded:
		return "ended"
	}
	return "unknown"
}

// State returns the term's state now and a channel that is closed at its next change: a
// healthy term becoming at risk or back, or the term ending. A term ends once, so the channel
// returned with TermEnded is never closed.
func (t *Term) State() (TermState, <-chan struct{}) {
	if t.backend == nil {
		return TermEnded, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.err != nil:
		return TermEnded, nil
	case t.atRisk:
		return TermAtRisk, t.changedLocked()
	}
	return TermHealthy, t.changedLocked()
}

func (t *Term) changedLocked() chan struct{} {
	if t.changed == nil {
		t.changed = make(chan struct{})
	}
	return t.changed
}

func (t *Term) isAtRisk() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.atRisk
}

// setAtRisk records whether the term is at risk, and reports whether that changed its state.
func (t *Term) setAtRisk(atRisk bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil || t.atRisk == atRisk {
		return false
	}
	t.atRisk = atRisk
	t.notifyLocked()
	return true
}

// notifyLocked closes the channel State returned, if any.
func (t *Term) notifyLocked() {
	if t.changed != nil {
		close(t.changed)
		t.changed = nil
	}
}

// Check reports, at this instant and without waiting for the renewals' own timers, whether the
// term still lasts: nil if so, else the term's end (ErrReleased or a *LostError). For a Lease
// the term lasts until its renew deadline, the send time of its last successful renewal plus
// RenewDeadline, judged on the monotonic clock; a term found past it is ended as lost here, so
// that its Context is done when Check returns. Leader-for-life terms have no deadline.
//
// Call it before each action that must not happen outside the term: a process that was paused
// (SIGSTOP, a stalled VM) past its deadline resumes with its renewal timer not yet run and its
// Context not yet done, and Check is what tells it, before the first action, that the term is
// over. It makes no request and takes a mutex, so it is cheap enough to call before every write.
// It narrows the window, it cannot close it: an action that starts just before the deadline may
// land after it, and only a fencing token (Token) lets the receiver refuse it.
func (t *Term) Check() error {
	if t.backend == nil {
		return &ConfigError{Field: "Term", Value: "zero", Reason: "was not returned by a lock's Acquire or TryAcquire"}
	}
	if err := t.Err(); err != nil {
		return err
	}
	t.backend.checkDeadline()
	return t.Err()
}

// Deadline is the moment, on the lock's clock, at which the term ends unless a renewal succeeds
// first (the last successful renewal's send time plus RenewDeadline); ok is false for kinds that
// do not renew.
func (t *Term) Deadline() (deadline time.Time, ok bool) {
	if t.backend == nil {
		return time.Time{}, false
	}
	return t.backend.deadline()
}
