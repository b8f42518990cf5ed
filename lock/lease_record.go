package lock

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// leaseRecord is the part of a Lease that elections read and write. It uses the same fields with
// the same meaning as client-go's LeaseLock, so regent and client-go candidates share one Lease
// safely: an empty holder means free, a non-empty holder is valid for leaseDurationSeconds after a
// candidate observed the record change, and leaseTransitions counts changes of holder.
type leaseRecord struct {
	holder          string
	durationSeconds int32
	acquireTime     time.Time
	renewTime       time.Time
	transitions     int32
}

func recordOf(l *coordinationv1.Lease) leaseRecord {
	var r leaseRecord
	s := l.Spec
	if s.HolderIdentity != nil {
		r.holder = *s.HolderIdentity
	}
	if s.LeaseDurationSeconds != nil {
		r.durationSeconds = *s.LeaseDurationSeconds
	}
	if s.AcquireTime != nil {
		r.acquireTime = s.AcquireTime.Time
	}
	if s.RenewTime != nil {
		r.renewTime = s.RenewTime.Time
	}
	if s.LeaseTransitions != nil {
		r.transitions = *s.LeaseTransitions
	}
	return r
}

// writeTo sets the record's fields on a Lease, leaving its other fields as they are.
func (r leaseRecord) writeTo(l *coordinationv1.Lease) {
	holder, duration, transitions := r.holder, r.durationSeconds, r.transitions
	l.Spec.HolderIdentity = &holder
	l.Spec.LeaseDurationSeconds = &duration
	l.Spec.AcquireTime = &metav1.MicroTime{Time: r.acquireTime}
	l.Spec.RenewTime = &metav1.MicroTime{Time: r.renewTime}
	l.Spec.LeaseTransitions = &transitions
}

// equal compares records as stored: times at the microsecond precision of the API.
func (r leaseRecord) equal(o leaseRecord) bool {
	return r.holder == o.holder &&
		r.durationSeconds == o.durationSeconds &&
		r.transitions == o.transitions &&
		r.acquireTime.Truncate(time.Microsecond).Equal(o.acquireTime.Truncate(time.Microsecond)) &&
		r.renewTime.Truncate(time.Microsecond).Equal(o.renewTime.Truncate(time.Microsecond))
}

// microNow is a wall-clock time as the API stores it, to microseconds.
func microNow(now time.Time) time.Time { return now.Round(0).Truncate(time.Microsecond) }

// resourceVersionOf is l's resourceVersion, or "" for no Lease; for logs.
func resourceVersionOf(l *coordinationv1.Lease) string {
	if l == nil {
		return ""
	}
	return l.ResourceVersion
}
