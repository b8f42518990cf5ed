package lock

import (
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

// noteGone records that the Lease was observed absent after cur, observed at observedAt and
// valid for validFor from then. A free record, or one that has already expired, binds no one.
func (l *Lease) noteGone(cur *coordinationv1.Lease, observedAt time.Time, validFor time.Duration) {
	rec := recordOf(cur)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lastUID = absentUID // seen going: no deletion unseen
	if rec.holder == "" || !l.o.clock.Now().Before(observedAt.Add(validFor)) {
		return
	}
	l.seen = max(l.seen, rec.transitions)
	l.bindLocked(goneRecord{record: rec, id: leaseToken(cur, rec).ID, expires: observedAt.Add(validFor), how: "deleted while held"})
}

// bindLocked makes g the record that binds this value's candidates, unless the one already
// binding them expires later. l.mu is held.
func (l *Lease) bindLocked(g goneRecord) {
	if l.gone == nil || g.expires.After(l.gone.expires) {
		l.gone = &g
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

// goneInForce is the deleted record that still binds this value's candidates, nil if none. The
// record of a term of this value that was released, its work stopped, binds no one.
func (l *Lease) goneInForce() *goneRecord {
	l.mu.Lock()
	g := l.gone
	l.mu.Unlock()
	if g == nil || !l.o.clock.Now().Before(g.expires) || l.isAbandoned(g.record.holder, g.id) {
		return nil
	}
	return g
}
