package leader

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/regent-k8s/regent/lock"
)

// A Marker makes a term visible outside the lock while it lasts, for example a label on the
// leader's Pod that a Service selects (package podlabel), so that traffic reaches the leader only.
//
// Mark is called in a goroutine of its own when a term begins, with a context that ends when the
// term's does (lost, or released); it should retry until it succeeds or that context ends.
// Unmark is called once Mark has returned and the work has stopped, before the lock is
// released, with the release's context bounded to half its time (and to half the election's
// release timeout): while the term's record still names this holder, no other candidate can
// have marked itself yet. A Marker's failures are logged; they never end a term or fail a
// release, since the lock, not the mark, is what keeps one copy of the work running.
type Marker interface {
	Mark(ctx context.Context, term *lock.Term) error
	Unmark(ctx context.Context, term *lock.Term) error
}

// WithMarker marks each term with m (see Marker).
func WithMarker(m Marker) Option { return optionFunc(func(o *options) { o.marker = m }) }

// startMarking runs the Marker's Mark for the leadership's term, if there is a Marker.
func (l *Leadership) startMarking() {
	m := l.e.o.marker
	if m == nil {
		close(l.markDone)
		return
	}
	go func() {
		defer close(l.markDone)
		if err := m.Mark(l.ctx, l.term); err != nil && l.ctx.Err() == nil {
			l.e.o.log.Warn("marking the term failed", zap.Stringer("token", l.term.Token()), zap.Error(err))
		}
	}()
}

// unmark waits for Mark to return, then runs the Marker's Unmark; the leadership's context must
// be done. Unmark gets at most half of what is left of the release's time (and of the
// election's release timeout), so that a failing API server cannot leave the release itself no
// time.
func (l *Leadership) unmark(ctx context.Context) {
	<-l.markDone
	if m := l.e.o.marker; m != nil {
		limit := l.e.o.releaseTimeout / 2
		if deadline, ok := ctx.Deadline(); ok {
			limit = min(limit, time.Until(deadline)/2)
		}
		uctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		if err := m.Unmark(uctx, l.term); err != nil {
			l.e.o.log.Warn("unmarking the term failed; the next leader clears the mark", zap.Stringer("token", l.term.Token()), zap.Error(err))
		}
	}
}
