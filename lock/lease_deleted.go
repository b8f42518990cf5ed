package lock

import (
	"slices"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
)

// goneRecord is a held record of the Lease that this value saw disappear: the Lease was deleted
// (kubectl delete lease) while someone held it. Its holder does not learn of the deletion until
// its next renewal, up to a RetryPeriod later, and keeps working until then; what it may do is
// bounded only by the record it wrote. So the deletion of a held record is treated like that
// record: until the record would have expired, as observed here, this value neither creates the
// Lease again nor takes a free record of a Lease that someone created again meanwhile.
//
// A held record that someone other than its holder replaced with a free one is gone in the same
// way, and binds in the same way (see noteCleared).
type goneRecord struct {
	record  leaseRecord
	id      string    // the deleted term's token ID
	expires time.Time // on the lock's clock: when the record was observed plus its duration
	how     string    // what happened to it, for logs
}

// noteGone records that the Lease was observed absent (or replaced by another object) after
// cur, observed at observedAt and valid for validFor from then. A free record, or one that has
// already expired, binds no one. When the absence was listed, after a gap in the watch, terms
// this value did not see may lie between cur and the deletion, and the deleted record may be one
// of theirs: it was written before the list, so it binds no longer than the longest duration of
// this lock's records from now, whatever cur was.
func (l *Lease) noteGone(cur *coordinationv1.Lease, observedAt time.Time, validFor time.Duration, listed bool) {
	rec := recordOf(cur)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastUID = absentUID // seen going: no deletion unseen
	now := l.o.clock.Now()
	l.seen = max(l.seen, rec.transitions)
	if listed {
		l.bindLocked(goneRecord{record: leaseRecord{holder: "(unknown: the Lease was deleted while the watch was down)"},
			expires: now.Add(max(validFor, l.o.timings.LeaseDuration)), how: "deleted while not followed"})
		return
	}
	if rec.holder == "" || !now.Before(observedAt.Add(validFor)) {
		return
	}
	l.bindLocked(goneRecord{record: rec, id: leaseToken(cur, rec).ID, expires: observedAt.Add(validFor), how: "deleted while held"})
}

// bindLocked adds g to the records that bind this value's candidates, and drops those that
// have expired. l.mu is held.
func (l *Lease) bindLocked(g goneRecord) {
	now := l.o.clock.Now()
	l.gone = slices.DeleteFunc(l.gone, func(o goneRecord) bool { return !now.Before(o.expires) })
	l.gone = append(l.gone, g)
}

// supersedeLocked drops the binding records that rec shows to be over: a record held by the same
// holder with a greater transition count. Identities are unique among candidates, so that holder
// wrote rec after it learnt that its earlier record was gone: a regent holder's value binds its
// own candidates by a lost term until the term's work has stopped (see bindOwnLoss), and a
// client-go holder keeps working under rec, which binds others as any held record does. A
// handover record is written after the handing term's work has stopped. l.mu is held.
func (l *Lease) supersedeLocked(rec leaseRecord) {
	if rec.holder == "" {
		return
	}
	l.gone = slices.DeleteFunc(l.gone, func(g goneRecord) bool {
		return g.record.holder == rec.holder && rec.transitions > g.record.transitions
	})
}

// bindOwnLoss binds this value's candidates by a term of its own that was lost while its record
// may still be in force elsewhere or its work may still run: the renewal found the record
// cleared, taken or deleted, or the deadline passed. Its work stops when it sees the term end,
// which this value does not know; so until the term is released (its work has stopped, see
// unbindOwn) or its record would have expired (expires), no candidate of this value takes the
// lock, as no candidate of another process may.
func (l *Lease) bindOwnLoss(rec leaseRecord, id string, expires time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.o.clock.Now().Before(expires) {
		return
	}
	l.bindLocked(goneRecord{record: rec, id: id, expires: expires, how: "lost by this process, its work maybe still running"})
}

// unbindOwn lifts the binding of this value's own term id once the term was released: its
// holder has stopped.
func (l *Lease) unbindOwn(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gone = slices.DeleteFunc(l.gone, func(g goneRecord) bool { return g.id == id && g.record.holder == l.o.identity })
}

// unboundC is closed the next time a binding of this value may have been lifted without a
// change of the Lease that its candidates would observe (a lost term released, an abandoned
// record). A candidate takes it before it reads the bindings, so that no lifting is missed.
func (l *Lease) unboundC() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unbound == nil {
		l.unbound = make(chan struct{})
	}
	return l.unbound
}

// wakeBound closes unboundC's channel.
func (l *Lease) wakeBound() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unbound != nil {
		close(l.unbound)
		l.unbound = nil
	}
}

// absentUID stands for "the Lease was absent" as the last thing this value saw of it.
const absentUID types.UID = "(absent)"

// noteUnseenDeletion is called when a candidate reads the Lease without having followed it: cur
// is what it read (nil: absent). If this value saw another Lease object before, that object was
// deleted at a moment this value does not know, and its last record, unknown too, may still be
// in force: so nothing is written before a whole LeaseDuration from now, the longest any record
// of this lock's candidates binds (the deleted Lease's holder stops by its RenewDeadline).
func (l *Lease) noteUnseenDeletion(cur *coordinationv1.Lease) {
	l.mu.Lock()
	defer l.mu.Unlock()
	uid := absentUID
	if cur != nil {
		uid = cur.UID
	}
	last := l.lastUID
	l.lastUID = uid
	if last == "" || last == uid {
		return
	}
	l.bindLocked(goneRecord{record: leaseRecord{holder: "(unknown: the Lease was deleted unseen)"},
		expires: l.o.clock.Now().Add(l.o.timings.LeaseDuration), how: "deleted unseen"})
}

// goneInForce is the gone record that binds this value's candidates longest, nil if none. The
// record of a term of this value that was released, its work stopped, binds no one.
func (l *Lease) goneInForce() *goneRecord {
	l.mu.Lock()
	gone := slices.Clone(l.gone)
	l.mu.Unlock()
	now := l.o.clock.Now()
	var in *goneRecord
	for i := range gone {
		g := &gone[i]
		if !now.Before(g.expires) || l.isAbandoned(g.record.holder, g.id) {
			continue
		}
		if in == nil || g.expires.After(in.expires) {
			in = g
		}
	}
	return in
}
