package leader

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/regent-k8s/regent/lock"
)

// A Successor names the candidate a leader that is stopping hands its lock to: its identity, or
// an alias it answers to (lock.WithHandoverAliases), such as its Pod's name. "" (or an error)
// names no one, and the lock is released as usual. Package readypeer has one that names a Ready
// Pod of the same workload, for rolling updates.
type Successor func(ctx context.Context, term *lock.Term) (string, error)

// WithSuccessor makes a leadership that ends because Lead's context ended (the process is
// stopping: SIGTERM in a rolling update, a drain) hand the lock over to the candidate next names,
// instead of freeing it for whichever candidate writes first. A leadership that ended otherwise
// (its work returned, the term was lost, a handover was requested) is not affected. next is
// asked once the work has stopped, and gets at most a quarter of the election's release timeout
// (and of the release's context), so that the release keeps the rest. A lock that cannot hand
// over (leader for life) is released.
func WithSuccessor(next Successor) Option { return optionFunc(func(o *options) { o.successor = next }) }

// stoppingSuccessor asks the election's Successor for a successor if the leadership's Context
// ended because Lead's context did, and returns "" otherwise.
func (l *Leadership) stoppingSuccessor(ctx context.Context) string {
	next := l.e.o.successor
	if next == nil || !l.term.CanHandOver() || l.ctx.Err() == nil || l.lostErr() != nil || l.handoverRequest() != nil {
		return ""
	}
	select {
	case <-l.released:
		return "" // ended by Release or HandOver
	default:
	}
	limit := l.e.o.releaseTimeout / 4
	if deadline, ok := ctx.Deadline(); ok {
		limit = min(limit, time.Until(deadline)/4)
	}
	sctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	to, err := next(sctx, l.term)
	switch {
	case err != nil:
		l.e.o.log.Warn("no successor: releasing the lock instead", zap.Error(err))
		return ""
	case to == "" || to == l.term.Holder():
		l.e.o.log.Info("no successor named: releasing the lock")
		return ""
	}
	l.e.o.log.Info("stopping: handing the lock over to the successor", zap.String("to", to))
	return to
}
