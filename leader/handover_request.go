package leader

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// ErrHandoverRequested matches a *HandoverRequestedError.
var ErrHandoverRequested = errors.New("a handover of the leadership was requested")

// HandoverRequestedError ends a leadership whose lock's object asked for a handover (kubectl
// annotate lease NAME regent.dev/handover-to=SUCCESSOR; see lock.Term.HandoverRequested). It is
// the cause of the Leadership's Context, its Err, and RunAsLeader's result. It matches ErrLost
// as well as ErrHandoverRequested: the term ended while the work ran without the work asking,
// so RetryOnLost campaigns again, as a candidate among the others.
type HandoverRequestedError struct {
	// Lock names the lock.
	Lock string
	// To is the candidate the request named.
	To string
}

func (e *HandoverRequestedError) Error() string {
	return fmt.Sprintf("%s: a handover to %q was requested", e.Lock, e.To)
}

// Is makes errors.Is match ErrHandoverRequested and ErrLost.
func (e *HandoverRequestedError) Is(target error) bool {
	return target == ErrHandoverRequested || target == ErrLost
}

// followRequests cancels the leadership's Context when a handover is requested on the lock's
// object. Release then hands the lock over to the named candidate once the work has stopped.
func (l *Leadership) followRequests() {
	defer close(l.requestDone)
	select {
	case <-l.term.HandoverRequested():
	case <-l.released:
		return
	case <-l.term.Done():
		return
	}
	req := &HandoverRequestedError{Lock: l.e.lock.String(), To: l.term.RequestedSuccessor()}
	l.e.o.log.Info("a handover was requested; stopping the work", zap.String("to", req.To), zap.Stringer("token", l.term.Token()))
	l.cancel(req)
}

// handoverRequest is the request that ended the leadership's Context, or nil.
func (l *Leadership) handoverRequest() *HandoverRequestedError {
	var req *HandoverRequestedError
	if errors.As(context.Cause(l.ctx), &req) {
		return req
	}
	return nil
}
