package lock

import (
	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
)

// A handover request is HandoverToAnnotation set on a held Lease by someone other than its
// holder, typically an operator:
//
//	kubectl annotate lease NAME regent.dev/handover-to=SUCCESSOR
//
// The holder's renewals carry the annotation along (each is a compare-and-swap on the object as
// last read, which a conflict makes the holder read again), so the holder learns of it at its
// next renewal, within a RetryPeriod. The term then closes HandoverRequested; the holder stops
// its work and hands the lock over to the named candidate with HandOver. What tells a request
// from a handover record is HandoverOfAnnotation: a handover record names the handing term's
// token, and a request does not. A Lease's acquiring write drops both annotations, so a request
// seen during a term was made during that term.
//
// A request only asks: the holder's work stops as it would on Release, and nothing about the
// term's safety changes. Only terms that can hand over (Lease locks, not a semaphore's slots or
// leader-for-life locks) act on requests; a request naming the holder itself is ignored.

// HandoverRequested is closed when someone asked, on the lock's object, that this term hand the
// lock over; RequestedSuccessor then names the candidate. It is never closed for lock kinds that
// cannot hand over.
func (t *Term) HandoverRequested() <-chan struct{} { return t.requested }

// RequestedSuccessor is the candidate a handover request named, or "" while none was made.
func (t *Term) RequestedSuccessor() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.successor
}

// requestHandover notes a request to hand over to to; only the first one counts. It reports
// whether this call made the request.
func (t *Term) requestHandover(to string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.successor != "" || t.err != nil {
		return false
	}
	t.successor = to
	close(t.requested)
	return true
}

// noteRequest notes a handover request on the Lease as this term just wrote it, if it has one.
func (lt *leaseTerm) noteRequest(written *coordinationv1.Lease) {
	to := written.Annotations[HandoverToAnnotation]
	if to == "" || written.Annotations[HandoverOfAnnotation] == lt.term.token.ID {
		return
	}
	if _, ok := lt.term.backend.(handOverer); !ok {
		return // a semaphore's slot: its term cannot hand over
	}
	if to == lt.l.o.identity || lt.l.answersTo(to) {
		lt.ignoreOwnRequest.Do(func() {
			lt.l.o.log.Warn("ignoring a handover request that names this holder", zap.String("to", to))
		})
		return
	}
	if lt.term.requestHandover(to) {
		lt.l.o.log.Info("handover requested", zap.String("to", to), zap.Int64("token", lt.term.token.Seq))
	}
}
