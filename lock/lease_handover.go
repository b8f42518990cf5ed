package lock

import (
	"context"
	"errors"
	"math"
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// The annotations of a handover record. HandoverToAnnotation names the candidate a holder handed
// the Lease to; HandoverOfAnnotation is the handing term's token ID (the Lease's UID and
// transition count), so that an annotation left behind on a later record (client-go candidates
// keep annotations when they write) never lets anyone in early. Only the holder writes them, in
// its term's last write; an operator asks for a handover otherwise (see docs/handover.md).
const (
	HandoverToAnnotation = "regent.dev/handover-to"
	HandoverOfAnnotation = "regent.dev/handover-of"
)

// ErrHandoverUnsupported is returned by Term.HandOver for lock kinds that cannot hand over: only
// a Lease lock can (a leader-for-life lock's successor waits for the holder's Pod to go).
var ErrHandoverUnsupported = errors.New("this lock kind cannot hand over; only a Lease lock can")

// handOverer is a termBackend that can hand its lock over.
type handOverer interface {
	handOver(ctx context.Context, to string) error
}

// CanHandOver reports whether the term's lock kind can hand over (see HandOver): a Lease lock
// can; a semaphore's slot, a shard and a leader-for-life lock cannot.
func (t *Term) CanHandOver() bool {
	_, ok := t.backend.(handOverer)
	return ok && t.backend != nil
}

// HandOver ends the term, like Release, but passes the lock to the candidate whose identity is
// to: instead of freeing the record, the term's last write keeps it held, renewed now, and
// annotated with to and this term's token. Candidate to takes it at once (its watch brings the
// record); every other candidate, regent's and client-go's alike, waits as for a held record,
// for the record's duration, which a handover sets to the lock's RetryPeriod rounded up to
// whole seconds: if to does not take the lock by then, anyone may.
//
// Call it once the work has stopped, as Release. It writes only if the record is still this
// term's, and never hands over a record that was deleted or taken. A term that was lost while
// its record still names it (its renewals failed, the deadline passed) writes the handover
// record all the same: its work has stopped, and the named candidate may take the lock at once. A later Release or HandOver returns the first
// call's result. A handover is a release, not a guarantee: if to has gone, the lock waits out the
// short duration above and is then free.
func (t *Term) HandOver(ctx context.Context, to string) error {
	if t.backend == nil {
		return &ConfigError{Field: "Term", Value: "zero", Reason: "was not returned by a lock's Acquire or TryAcquire"}
	}
	if ctx == nil {
		return errNil("ctx")
	}
	h, ok := t.backend.(handOverer)
	switch {
	case !ok:
		return ErrHandoverUnsupported
	case to == "":
		return &ConfigError{Field: "to", Value: to, Reason: "must name the candidate's identity"}
	case to == t.holder:
		return &ConfigError{Field: "to", Value: to, Reason: "is this term's own holder; name another candidate"}
	}
	return t.endWith(ctx, func(ctx context.Context) error { return h.handOver(ctx, to) })
}

var _ handOverer = (*leaseTerm)(nil)

// handOver writes the handover record if the record is still this term's. Like release, a record
// that could not be written, or a Lease found deleted, makes the term abandoned.
func (lt *leaseTerm) handOver(ctx context.Context, to string) error {
	bound := int32(math.Ceil(lt.l.o.timings.RetryPeriod.Seconds())) // at least 1: RetryPeriod > 0
	deleted, err := lt.lastWrite(ctx, "handed over", func(lease *coordinationv1.Lease, now time.Time) {
		rec := recordOf(lease)
		rec.durationSeconds, rec.renewTime = bound, now
		rec.writeTo(lease)
		if lease.Annotations == nil {
			lease.Annotations = map[string]string{}
		}
		lease.Annotations[HandoverToAnnotation] = to
		lease.Annotations[HandoverOfAnnotation] = lt.term.token.ID
	})
	lt.ended(deleted, err)
	return err
}

// handedToMe reports whether cur is a handover record, still as its holder wrote it, to this
// candidate's identity or one of its aliases.
func (l *Lease) handedToMe(cur *coordinationv1.Lease) bool {
	if cur == nil {
		return false
	}
	rec := recordOf(cur)
	to := cur.Annotations[HandoverToAnnotation]
	return rec.holder != "" && to != "" && (to == l.o.identity || l.answersTo(to)) &&
		cur.Annotations[HandoverOfAnnotation] == leaseToken(cur, rec).ID
}

// answersTo reports whether name is one of this candidate's handover aliases.
func (l *Lease) answersTo(name string) bool {
	return slices.Contains(l.o.aliases, name)
}

// dropHandover removes a handover's annotations from a Lease about to be written with a record
// of its own.
func dropHandover(lease *coordinationv1.Lease) {
	delete(lease.Annotations, HandoverToAnnotation)
	delete(lease.Annotations, HandoverOfAnnotation)
}
