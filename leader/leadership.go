package leader

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/regent-k8s/regent/lock"
)

// Leadership is one term of leading, from Lead until Release. Its Context is cancelled when the
// term is lost or the context given to Lead ends; the holder then stops its work and calls
// Release, which gives the lock up only after that.
type Leadership struct {
	e     *Election
	term  *lock.Term
	start time.Time // when the term started, on the election's clock

	ctx         context.Context
	cancel      context.CancelCauseFunc
	stopCancel  func() bool
	released    chan struct{}
	monitorDone chan struct{}
	markDone    chan struct{}
	requestDone chan struct{}

	once       sync.Once
	releaseErr error
}

// Lead waits until this process leads, or ctx ends. ctx scopes the whole leadership, the wait
// and the term: when it ends, the Leadership's Context ends too, as RunAsLeader's work does. A
// timeout on ctx therefore also ends the term; to bound only the wait, pass WaitAtMost. The
// caller must call Release when its work has stopped, typically with defer, and should return
// Err so that a lost term reads as lost (RetryOnLost retries on it):
//
//	l, err := election.Lead(ctx)
//	if err != nil {
//		return err
//	}
//	defer l.Release(context.WithoutCancel(ctx))
//	if err := work(l.Context()); err != nil {
//		return err
//	}
//	return l.Err()
func (e *Election) Lead(ctx context.Context, opts ...LeadOption) (*Leadership, error) {
	if e == nil || e.lock == nil {
		return nil, &lock.ConfigError{Field: "Election", Value: nil, Reason: "was not built by leader.New"}
	}
	if ctx == nil {
		return nil, &lock.ConfigError{Field: "ctx", Value: nil, Reason: "must not be nil"}
	}
	var lo leadOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&lo)
		}
	}
	clk := e.o.clock
	start := clk.Now()
	wctx := ctx
	if lo.maxWait > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, lo.maxWait)
		defer cancel()
	}
	term, err := e.lock.Acquire(wctx)
	if err != nil {
		return nil, err
	}
	waited := clk.Since(start)
	e.o.recorder.Acquired(e.lock.String(), term.Token(), waited)
	e.o.log.Info("leading", zap.Stringer("token", term.Token()), zap.Duration("waited", waited))
	lctx, cancel := context.WithCancelCause(noteTermBegan(ctx))
	l := &Leadership{
		e:           e,
		term:        term,
		start:       clk.Now(),
		ctx:         lctx,
		cancel:      cancel,
		released:    make(chan struct{}),
		monitorDone: make(chan struct{}),
		markDone:    make(chan struct{}),
		requestDone: make(chan struct{}),
	}
	l.ctx = context.WithValue(lctx, leadershipKey{}, l)
	l.stopCancel = context.AfterFunc(term.Context(), func() { cancel(context.Cause(term.Context())) })
	go l.watchForOverrun()
	go l.followRequests()
	l.startMarking()
	return l, nil
}

// Context is cancelled when leadership is lost, when a handover is requested on the lock's
// object, when Lead's context ends, or on Release. context.Cause tells which: a *lock.LostError
// (errors.Is ErrLost), a *HandoverRequestedError, the parent's cause, or lock.ErrReleased.
func (l *Leadership) Context() context.Context { return l.ctx }

// Done is Context().Done().
func (l *Leadership) Done() <-chan struct{} { return l.ctx.Done() }

// Err is nil while the leadership lasts. Once its Context is done it says why: the term's
// *lock.LostError (errors.Is ErrLost) when the term was lost, also after Release; else a
// *HandoverRequestedError (which matches ErrLost too), the cause of Lead's context ending, or
// lock.ErrReleased.
func (l *Leadership) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	if err := l.lostErr(); err != nil {
		return err
	}
	return context.Cause(l.ctx)
}

// LeadOption configures one call of Lead.
type LeadOption func(*leadOptions)

type leadOptions struct {
	maxWait time.Duration
}

// WaitAtMost bounds the wait for leadership to d, leaving the term, once begun, to Lead's
// context: Lead then fails with an error that wraps context.DeadlineExceeded (and lock.ErrHeld)
// if this process does not lead within d. Zero or less: no bound.
func WaitAtMost(d time.Duration) LeadOption {
	return func(o *leadOptions) { o.maxWait = d }
}

// Lost is closed when the term is lost.
func (l *Leadership) Lost() <-chan struct{} { return l.term.Lost() }

// Token identifies the term; pass it to the stores the work writes to so that they can refuse
// writes of an ended term (see lock.Token).
func (l *Leadership) Token() lock.Token { return l.term.Token() }

// Term is the underlying lock term.
func (l *Leadership) Term() *lock.Term { return l.term }

// Release ends the leadership and gives the lock up (conditionally, see lock.Term.Release). Call
// it once the work has stopped. With a Marker (WithMarker), the mark is removed first, while the
// lock is still held. When a handover was requested on the lock's object (Err matches
// ErrHandoverRequested), Release hands the lock over to the candidate named instead; so it does,
// with WithSuccessor, when the leadership ended because Lead's context did. It is safe to call
// more than once.
func (l *Leadership) Release(ctx context.Context) error {
	if ctx == nil {
		return &lock.ConfigError{Field: "ctx", Value: nil, Reason: "must not be nil"}
	}
	if req := l.handoverRequest(); req != nil {
		return l.HandOver(ctx, req.To)
	}
	if to := l.stoppingSuccessor(ctx); to != "" {
		return l.HandOver(ctx, to)
	}
	return l.finish(ctx, "released", l.term.Release)
}

// HandOver ends the leadership, like Release, but passes the lock to the candidate whose
// identity is to: it alone may take the lock at once, and others only if it has not within the
// lock's RetryPeriod (see lock.Term.HandOver). Call it once the work has stopped. A lock that
// cannot hand over (leader for life) is released instead, and the error matches
// lock.ErrHandoverUnsupported. Release and HandOver end the leadership once: a later call of
// either returns the first one's result.
func (l *Leadership) HandOver(ctx context.Context, to string) error {
	if ctx == nil {
		return &lock.ConfigError{Field: "ctx", Value: nil, Reason: "must not be nil"}
	}
	if to == "" || to == l.term.Holder() {
		return &lock.ConfigError{Field: "to", Value: to, Reason: "must name another candidate's identity"}
	}
	return l.finish(ctx, "handed over", func(ctx context.Context) error {
		err := l.term.HandOver(ctx, to)
		if errors.Is(err, lock.ErrHandoverUnsupported) {
			// The leadership ends all the same: give the lock up as Release would.
			return errors.Join(err, l.term.Release(ctx))
		}
		return err
	})
}

// finish ends the leadership with give, the term's Release or HandOver.
func (l *Leadership) finish(ctx context.Context, done string, give func(context.Context) error) error {
	l.once.Do(func() {
		close(l.released)
		<-l.monitorDone
		<-l.requestDone
		l.stopCancel()
		l.cancel(lock.ErrReleased)
		l.unmark(ctx)
		err := give(ctx)
		lost := l.lostErr() != nil
		l.e.o.recorder.Ended(l.e.lock.String(), l.term.Token(), lost, l.e.o.clock.Since(l.start))
		if err != nil {
			l.e.o.log.Warn(done+" failed; the lock frees itself when its record expires", zap.Error(err))
		} else {
			l.e.o.log.Info(done, zap.Stringer("token", l.term.Token()), zap.Bool("lost", lost))
		}
		l.releaseErr = err
	})
	return l.releaseErr
}

// lostErr is the term's *lock.LostError once it is lost, else nil.
func (l *Leadership) lostErr() error {
	if err := l.term.Err(); errors.Is(err, lock.ErrLost) {
		return err
	}
	return nil
}

// watchForOverrun waits for the term to be lost and then for the moment other candidates may
// take over. If the leadership has not been released by then, the work overran its term.
func (l *Leadership) watchForOverrun() {
	defer close(l.monitorDone)
	select {
	case <-l.released:
	case <-l.term.Lost():
	}
	// Work that ends its own term (Check after a pause) returns and is released at once; the
	// loss is reported all the same.
	if l.lostErr() == nil {
		return
	}
	l.e.o.log.Warn("leadership lost; cancelling the work", zap.Error(l.term.Err()))
	until := l.term.ExclusiveUntil()
	if until.IsZero() {
		return
	}
	clk := l.e.o.clock
	if wait := until.Sub(clk.Now()); wait > 0 {
		t := clk.NewTimer(wait)
		defer t.Stop()
		select {
		case <-l.released:
			return
		case <-t.C():
		}
	} else {
		// Others could already take over when the loss was noticed, e.g. after a pause.
		select {
		case <-l.released:
			return
		default:
		}
	}
	o := Overrun{Lock: l.e.lock.String(), Token: l.term.Token(), Since: until}
	l.e.o.log.Error("overrun: the work of a lost term is still running after other candidates may have taken over",
		zap.Stringer("token", o.Token), zap.Time("since", o.Since))
	l.e.o.recorder.Overran(o.Lock, o.Token)
	if l.e.o.onOverrun != nil {
		l.e.o.onOverrun(o)
	}
}

type leadershipKey struct{}

// FromContext returns the Leadership whose Context ctx is or derives from.
func FromContext(ctx context.Context) (*Leadership, bool) {
	if ctx == nil {
		return nil, false
	}
	l, ok := ctx.Value(leadershipKey{}).(*Leadership)
	return l, ok
}

// TokenFrom returns the fencing token of the leadership whose Context ctx is or derives from,
// e.g. inside work run by RunAsLeader.
func TokenFrom(ctx context.Context) (lock.Token, bool) {
	if l, ok := FromContext(ctx); ok {
		return l.Token(), true
	}
	return lock.Token{}, false
}

// Check is Term.Check for the work: nil while this leadership's term still lasts at this
// instant, else the reason it does not (the term found past its renew deadline is ended here,
// so ctx is done when Check returns). Call it before each action that must not happen outside
// the term; it makes no request. Outside a leadership's context it returns ErrNotLeading.
func Check(ctx context.Context) error {
	l, ok := FromContext(ctx)
	if !ok {
		return ErrNotLeading
	}
	if err := l.term.Check(); err != nil {
		return err
	}
	return l.Err()
}

// ErrNotLeading is Check's answer outside a leadership's context.
var ErrNotLeading = errors.New("not inside a leadership's context")
