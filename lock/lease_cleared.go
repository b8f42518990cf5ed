package lock

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"
)

// seenRecord is the last record a Lease value saw, with the instant it first saw it as it is.
type seenRecord struct {
	record leaseRecord
	id     string // its token ID
	uid    types.UID
	at     time.Time
}

// isReleaseOf reports whether free is the release of held written by held's own holder: regent
// keeps the term's acquireTime and transition count when it clears its record. Any other free
// record that replaces a held one was written by someone else: client-go's release after its
// leader lost the Lease (it clears whatever record it reads then), or an operator's edit.
func isReleaseOf(free, held leaseRecord) bool {
	return free.holder == "" && held.holder != "" && free.transitions == held.transitions &&
		free.acquireTime.Truncate(time.Microsecond).Equal(held.acquireTime.Truncate(time.Microsecond))
}

// noteCleared is called with each read of the Lease by a candidate, before the read is noted by
// saw. A free record that replaced a held one without being its holder's release does not mean
// that the holder has stopped: it learns of the change at its next renewal, up to a RetryPeriod
// later, and works until then. So the cleared record binds like a deleted one (see goneRecord):
// until it would have expired, as observed here. When cur was listed, terms this value did not
// see may lie between the last record it saw and cur, and one of them may be the record
// cleared; their records were written before cur was read, so none binds longer than the
// longest duration of this lock's records from now.
func (l *Lease) noteCleared(cur *coordinationv1.Lease, listed bool) {
	rec := recordOf(cur)
	l.mu.Lock()
	defer l.mu.Unlock()
	last := l.last
	if rec.holder != "" || last == nil || last.uid != cur.UID || last.record.holder == "" || isReleaseOf(rec, last.record) {
		return
	}
	validFor := l.o.timings.LeaseDuration
	if d := time.Duration(last.record.durationSeconds) * time.Second; d > validFor {
		validFor = d
	}
	expires := last.at.Add(validFor)
	how := "cleared by someone other than its holder"
	if listed {
		expires = l.o.clock.Now().Add(validFor)
		how = "replaced by a free record that is not its release, maybe after terms not seen"
	}
	if !l.o.clock.Now().Before(expires) {
		return
	}
	l.seen = max(l.seen, last.record.transitions)
	l.bindLocked(goneRecord{record: last.record, id: last.id, expires: expires, how: how})
}
