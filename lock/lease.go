package lock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
)

// Lease is a lock stored in a coordination.k8s.io/v1 Lease. It is safe for concurrent use; each
// Acquire that succeeds starts a term of its own.
type Lease struct {
	leases    coordinationv1client.LeaseInterface
	namespace string
	name      string
	o         options

	// abandoned holds the token IDs of this instance's terms that were released (their holder
	// has stopped) but whose record could not be cleared. Such a record names nobody who still
	// acts on it, so this instance may take it again at once instead of waiting for it to expire.
	mu        sync.Mutex
	abandoned map[string]struct{}
	// seen is the highest transition count this value has seen in the Lease's records. A Lease
	// this value creates starts above it, so that tokens keep growing across a deletion.
	seen int32
	// gone are the held records this value saw deleted, or cleared by someone other than their
	// holder, and its own lost terms, while they may still be in force.
	gone []goneRecord
	// unbound is closed when a binding may have been lifted (see unboundC).
	unbound chan struct{}
	// last is the last record this value saw of the Lease, and since when it was seen unchanged.
	last *seenRecord
	// lastUID is the UID of the last Lease object this value saw; a Lease found absent, or with
	// another UID, by a candidate that did not see the change means a deletion it did not see.
	lastUID types.UID

	contention contention // how often this value lost races for the free Lease

	labels      map[string]string // set on the Lease when this value creates it (a semaphore's slots)
	annotations map[string]string // set on the Lease when this value creates it (a membership Lease)
}

var _ Lock = (*Lease)(nil)

// NewLease returns the Lease lock namespace/name. The Lease object need not exist: the first
// candidate creates it. Pass clientset.CoordinationV1() as client.
func NewLease(client coordinationv1client.LeasesGetter, namespace, name string, opts ...Option) (*Lease, error) {
	if client == nil {
		return nil, &ConfigError{Field: "client", Value: nil, Reason: "must not be nil"}
	}
	if err := validateName("namespace", namespace, validation.IsDNS1123Label); err != nil {
		return nil, err
	}
	if err := validateName("name", name, validation.IsDNS1123Subdomain); err != nil {
		return nil, err
	}
	o, err := leaseOptions(opts)
	if err != nil {
		return nil, err
	}
	o.log = o.log.Named("lease").With(zapLock(namespace, name))
	return &Lease{leases: client.Leases(namespace), namespace: namespace, name: name, o: o}, nil
}

// validateLabelledName checks the name of a family of Leases (a semaphore, a sharding): it is
// also the value of the family's label, so at most 63 characters, which leaves its objects'
// longer names well within a Lease name's 253.
func validateLabelledName(name string) error {
	return validateName("name", name, func(v string) []string {
		return append(validation.IsDNS1123Subdomain(v), validation.IsValidLabelValue(v)...)
	})
}

func validateName(field, value string, check func(string) []string) error {
	if value == "" {
		return &ConfigError{Field: field, Value: `""`, Reason: "must not be empty"}
	}
	if errs := check(value); len(errs) > 0 {
		return &ConfigError{Field: field, Value: value, Reason: strings.Join(errs, "; ")}
	}
	return nil
}

// String returns "lease namespace/name".
func (l *Lease) String() string { return fmt.Sprintf("lease %s/%s", l.namespace, l.name) }

// Identity is this process's holder identity.
func (l *Lease) Identity() string { return l.o.identity }

// Timings are the lock's validated timings.
func (l *Lease) Timings() Timings { return l.o.timings }

// get reads the Lease, within RenewDeadline.
func (l *Lease) get(ctx context.Context) (*coordinationv1.Lease, error) {
	return bounded(ctx, l.o.timings.RenewDeadline, func(ctx context.Context) (*coordinationv1.Lease, error) {
		return l.leases.Get(ctx, l.name, metav1.GetOptions{})
	})
}

// atRiskAfter is when a term without a successful renewal becomes at risk (WithAtRiskAfter).
func (l *Lease) atRiskAfter() time.Duration {
	if l.o.atRisk > 0 {
		return l.o.atRisk
	}
	return l.o.timings.RenewDeadline / 2
}

// TryAcquire takes the Lease if it is absent or free (empty holder) and returns a *HeldError
// naming the holder otherwise. By default it cannot take an expired Lease: expiry is judged by
// watching a record stay unchanged for its duration, which needs Acquire, and a try-lock whose
// holder crashed reports it held until someone Acquires. With WithMaxClockSkew(d), it also takes
// a record whose renewTime is older than its duration plus d by this process's clock, which is
// safe as long as the candidates' clocks differ by less than d. Nor does it create a Lease that
// this value saw deleted while its record was still in force (see Acquire).
func (l *Lease) TryAcquire(ctx context.Context) (*Term, error) {
	if ctx == nil {
		return nil, errNil("ctx")
	}
	cur, err := l.get(ctx)
	switch {
	case apierrors.IsNotFound(err):
		cur = nil
	case err != nil:
		return nil, &APIError{Lock: l.String(), Op: "get", Err: err}
	}
	return l.tryAcquireFrom(ctx, cur)
}

// tryAcquireFrom is TryAcquire once the Lease has been read: cur, or nil when it is absent.
func (l *Lease) tryAcquireFrom(ctx context.Context, cur *coordinationv1.Lease) (*Term, error) {
	switch {
	case cur != nil && recordOf(cur).holder != "" && !l.expiredByClocks(recordOf(cur)) && !l.handedToMe(cur):
		l.saw(cur)
		return nil, &HeldError{Lock: l.String(), Holder: recordOf(cur).holder}
	}
	l.noteUnseenDeletion(cur)
	if cur != nil {
		l.noteCleared(cur, true)
		l.saw(cur)
	}
	if g := l.goneInForce(); g != nil {
		return nil, &HeldError{Lock: l.String(), Holder: g.record.holder}
	}
	sent := l.o.clock.Now()
	written, err := l.write(ctx, cur, l.newRecord(cur, sent))
	switch {
	case err == nil:
		return l.startTerm(written, sent), nil
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		holder := ""
		if now, gerr := l.get(ctx); gerr == nil {
			holder = recordOf(now).holder
		}
		return nil, &HeldError{Lock: l.String(), Holder: holder}
	default:
		return nil, &APIError{Lock: l.String(), Op: writeOp(cur), Err: err}
	}
}

// write takes the Lease for this process with rec: it creates it when cur is nil, and otherwise replaces
// cur's record with a compare-and-swap on cur's resourceVersion. The request is bounded by
// RenewDeadline: a term timed from the send time would be over by then anyway.
func (l *Lease) write(ctx context.Context, cur *coordinationv1.Lease, rec leaseRecord) (*coordinationv1.Lease, error) {
	ctx, cancel := context.WithTimeout(ctx, l.o.timings.RenewDeadline)
	defer cancel()
	var written *coordinationv1.Lease
	var err error
	if cur == nil {
		lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: l.namespace, Labels: l.labels, Annotations: l.annotations}}
		rec.writeTo(lease)
		written, err = l.leases.Create(ctx, lease, metav1.CreateOptions{})
	} else {
		lease := cur.DeepCopy()
		rec.writeTo(lease)
		dropHandover(lease)
		written, err = l.leases.Update(ctx, lease, metav1.UpdateOptions{})
	}
	if err == nil && written.ResourceVersion == "" {
		return nil, ErrNoResourceVersions
	}
	return written, err
}

// expiredByClocks reports whether rec has expired by its renewTime, under WithMaxClockSkew.
func (l *Lease) expiredByClocks(rec leaseRecord) bool {
	if l.o.maxSkew <= 0 || rec.renewTime.IsZero() {
		return false
	}
	d := time.Duration(rec.durationSeconds) * time.Second
	if d <= 0 {
		d = l.o.timings.LeaseDuration
	}
	return l.o.clock.Since(rec.renewTime) > d+l.o.maxSkew
}

// ErrNoResourceVersions is returned by a Lease whose client answers writes without a
// resourceVersion. Every write of the Lease lock is a compare-and-swap on the resourceVersion; a
// client that does not stamp them (client-go's fake clientset, k8s.io/client-go/kubernetes/fake)
// lets every write succeed, and two candidates would both lead. In tests, use package
// github.com/regent-k8s/regent/kubefake, whose clientset behaves like the API server here.
var ErrNoResourceVersions = errors.New("the Kubernetes client wrote the Lease without a resourceVersion, so compare-and-swap cannot work " +
	"and two candidates could both lead (client-go's fake clientset does this; in tests use github.com/regent-k8s/regent/kubefake)")

func writeOp(cur *coordinationv1.Lease) string {
	if cur == nil {
		return "create"
	}
	return "update"
}

// newRecord is the record of a new term of this process following cur (nil: no Lease yet). Its
// transition count is one more than the highest this value has seen on the Lease, cur's
// included, also when the last holder was this process: so the count grows with every term,
// and across a deletion of the Lease whenever this value saw the deleted record.
func (l *Lease) newRecord(cur *coordinationv1.Lease, sent time.Time) leaseRecord {
	now := microNow(sent)
	l.mu.Lock()
	last := l.seen
	l.mu.Unlock()
	if cur != nil {
		last = max(last, recordOf(cur).transitions)
	}
	return leaseRecord{
		holder:          l.o.identity,
		durationSeconds: int32(l.o.timings.LeaseDuration.Seconds()),
		acquireTime:     now,
		renewTime:       now,
		transitions:     last + 1,
	}
}

// saw notes a record of the Lease: its transition count, its object's UID, and the record itself
// with the instant it was first seen as it is.
func (l *Lease) saw(cur *coordinationv1.Lease) {
	rec := recordOf(cur)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = max(l.seen, rec.transitions)
	l.lastUID = cur.UID
	l.supersedeLocked(rec)
	if l.last == nil || l.last.uid != cur.UID || !l.last.record.equal(rec) {
		l.last = &seenRecord{record: rec, id: leaseToken(cur, rec).ID, uid: cur.UID, at: l.o.clock.Now()}
	}
}

// Observe calls fn each time the Lease's holder or term changes; see Lock.
func (l *Lease) Observe(ctx context.Context, fn func(Observation)) error {
	if ctx == nil {
		return errNil("ctx")
	}
	if fn == nil {
		return errNil("fn")
	}
	var last *Observation
	return observe(ctx, l.watcher(), func(o observation[*coordinationv1.Lease]) {
		next := Observation{Time: l.o.clock.Now()}
		if o.exists {
			rec := recordOf(o.obj)
			next.Holder = rec.holder
			if rec.holder != "" {
				next.Token = leaseToken(o.obj, rec)
			}
		}
		if last != nil && last.Holder == next.Holder && last.Token == next.Token {
			return
		}
		last = &next
		fn(next)
	}, l.String())
}

func (l *Lease) watcher() *objectWatcher[*coordinationv1.Lease] {
	return &objectWatcher[*coordinationv1.Lease]{
		name:  l.name,
		list:  listLeases(l.leases),
		watch: l.leases.Watch,
		clock: l.o.clock,
		log:   l.o.log,
		// After an outage a waiter is back within a RetryPeriod of the API server, as soon as a
		// client-go candidate's next poll would be.
		maxRetry: l.o.timings.RetryPeriod,
		timeout:  l.o.timings.RenewDeadline,
	}
}

func leaseToken(l *coordinationv1.Lease, rec leaseRecord) Token {
	return Token{Seq: int64(rec.transitions), ID: fmt.Sprintf("%s/%d", l.UID, rec.transitions)}
}

func (l *Lease) abandon(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.abandoned == nil {
		l.abandoned = map[string]struct{}{}
	}
	l.abandoned[id] = struct{}{}
}

// forget drops an abandoned term once its record has been taken again.
func (l *Lease) forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.abandoned, id)
}

// reclaimable reports whether a record is one of this instance's abandoned terms.
func (l *Lease) reclaimable(cur *coordinationv1.Lease) bool {
	rec := recordOf(cur)
	return l.isAbandoned(rec.holder, leaseToken(cur, rec).ID)
}

func (l *Lease) isAbandoned(holder, id string) bool {
	if holder != l.o.identity {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.abandoned[id]
	return ok
}
