package lock

import (
	"context"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/clock"
)

// Acquire waits until this process holds the Lease, or ctx ends; see Lock.
//
// Waiting is driven by a watch on the one Lease and by a timer set to the record's expiry as
// observed here: a record that has not changed for leaseDurationSeconds since this process first
// saw it is expired. The holder's timestamps are never compared with the local clock, so clock
// skew between machines does not matter, only the rates of their clocks. A free Lease (empty
// holder) is taken as soon as it is observed. Every write is a compare-and-swap on the observed
// resourceVersion; losing a race means waiting for the next observation, not an error.
func (l *Lease) Acquire(ctx context.Context) (*Term, error) {
	if ctx == nil {
		return nil, errNil("ctx")
	}
	wctx, stopWatch := context.WithCancel(ctx)
	events := make(chan observation[*coordinationv1.Lease])
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.watcher().run(wctx, events)
	}()
	defer func() {
		stopWatch()
		<-done
	}()

	c := newLeaseCandidate(l)
	defer c.stopTimers()
	for {
		select {
		case <-ctx.Done():
			return nil, &HeldError{Lock: l.String(), Holder: c.record.holder, Err: ctx.Err()}
		case o := <-events:
			if o.err != nil {
				return nil, withLock(o.err, l.String())
			}
			c.observe(o)
		case <-c.expiryC():
			c.expiry = nil
		case <-c.retryC():
			c.retrying = nil
		case <-c.staggerC():
			c.stagger, c.staggered = nil, true
		case <-c.unbound:
			c.unbound = nil
		}
		if term, err := c.act(ctx); term != nil || err != nil {
			return term, err
		}
	}
}

// leaseCandidate is what a waiting candidate knows and plans.
type leaseCandidate struct {
	l *Lease

	known      bool                  // an observation has arrived
	lease      *coordinationv1.Lease // the observed Lease, nil when absent
	record     leaseRecord
	observedAt time.Time // when the record was first seen as it is now, on the lock's clock

	// pending is a write whose outcome is unknown (the request failed in transit). When the
	// record it wrote shows up, the write had succeeded.
	pending *pendingWrite

	expiry   clock.Timer // fires when the observed record expires
	retrying clock.Timer // fires when a failed request may be retried
	retry    *backoff

	// conflicted is set when a write based on the observed version lost its race. Another
	// observation of that same version (a watch opened without a resourceVersion repeats the
	// read as a synthetic ADDED event) must not start another write that can only conflict.
	conflicted bool

	// stagger fires when a contended write to the observed free or expired record may go out;
	// staggered is set once it has (see contention). checked is set once the Lease has been read
	// after the stagger (see movedOn). All reset when the record changes.
	stagger   clock.Timer
	staggered bool
	checked   bool

	waitedForGone bool // the wait for a deleted record has been logged
	// unbound closes when a binding this candidate waits for may have been lifted.
	unbound <-chan struct{}
}

func newLeaseCandidate(l *Lease) *leaseCandidate {
	return &leaseCandidate{l: l, retry: newBackoff(l.o.clock, 100*time.Millisecond, l.o.timings.RetryPeriod)}
}

// timers passes each of the candidate's running timers to add, with what clears it once it has
// fired: for a select over many candidates' timers (a semaphore's slots, a sharding's shards).
func (c *leaseCandidate) timers(add func(ch <-chan time.Time, fired func())) {
	add(c.expiryC(), func() { c.expiry = nil })
	add(c.retryC(), func() { c.retrying = nil })
	add(c.staggerC(), func() { c.stagger, c.staggered = nil, true })
}

// wakes passes the candidate's channel that closes when a binding it waits for may have been
// lifted (see Lease.unboundC), with what clears it: for a select over many candidates.
func (c *leaseCandidate) wakes(add func(ch <-chan struct{}, fired func())) {
	add(c.unbound, func() { c.unbound = nil })
}

type pendingWrite struct {
	record leaseRecord
	sent   time.Time
}

func (c *leaseCandidate) observe(o observation[*coordinationv1.Lease]) {
	var rec leaseRecord
	switch {
	case !c.known:
		// The first read: a Lease object other than the last this value saw (or none) was
		// deleted unseen.
		var cur *coordinationv1.Lease
		if o.exists {
			cur = o.obj
			rec = recordOf(o.obj)
		}
		c.l.noteUnseenDeletion(cur)
		c.l.o.log.Info("following the lease", zap.Bool("exists", o.exists), zap.String("holder", rec.holder))
	case c.lease != nil && (!o.exists || o.obj.UID != c.lease.UID) && !c.ownPending():
		// The Lease was deleted (and perhaps created again): its last record, which this
		// candidate followed, may still be in force, and after a gap in the watch so may a
		// record it never saw (see noteGone).
		c.l.noteGone(c.lease, c.observedAt, c.validFor(), o.listed)
	}
	if o.exists {
		rec = recordOf(o.obj)
		c.l.noteCleared(o.obj, o.listed)
		c.l.saw(o.obj)
	}
	sameVersion := c.known && (c.lease != nil) == o.exists && (!o.exists || o.obj.ResourceVersion == c.lease.ResourceVersion)
	if !sameVersion {
		c.conflicted = false
	}
	if !c.known || (c.lease != nil) != o.exists || !rec.equal(c.record) {
		c.observedAt = c.l.o.clock.Now()
		c.stopStagger()
		c.staggered, c.checked = false, false
	}
	c.known = true
	c.lease, c.record = nil, rec
	if o.exists {
		c.lease = o.obj
	}
}

// ownPending reports whether the observed record is the one a write of this candidate's, whose
// reply was lost, would have written.
func (c *leaseCandidate) ownPending() bool {
	return c.lease != nil && c.pending != nil && c.record.equal(c.pending.record)
}

// maxLateRounds bounds how often in a row a candidate retakes its own record after a write that
// was answered after RenewDeadline, before it backs off (see actOnce).
const maxLateRounds = 3

// act takes the Lease if what the candidate knows allows it, and otherwise sets the timer for the
// next decision. It returns a term, a permanent failure, or neither (keep waiting).
func (c *leaseCandidate) act(ctx context.Context) (*Term, error) {
	for range maxLateRounds {
		term, again, err := c.actOnce(ctx)
		if !again {
			return term, err
		}
	}
	// Every write was answered after the renew deadline: the API server is too slow for these
	// timings just now. Wait before writing again rather than load it further.
	c.l.o.log.Warn("writes keep being answered after the renew deadline; backing off", zap.Int("rounds", maxLateRounds))
	c.retrying = c.l.o.clock.NewTimer(c.retry.step())
	return nil, nil
}

// actOnce is one round of act. again is true when a write landed but was answered after
// RenewDeadline, so that the record, this candidate's own, should be taken again at once.
func (c *leaseCandidate) actOnce(ctx context.Context) (term *Term, again bool, err error) {
	if !c.known {
		return nil, false, nil
	}
	l, clk := c.l, c.l.o.clock
	ownWrite := c.ownPending()
	if ownWrite && clk.Since(c.pending.sent) < l.o.timings.RenewDeadline {
		// An earlier write whose reply was lost did land: within the renew deadline it is a valid
		// term. After the deadline the record is ours but stale, and taking it again below starts
		// a fresh term.
		c.stopTimers()
		return l.startTerm(c.lease, c.pending.sent), false, nil
	}
	if c.retrying != nil || c.stagger != nil || c.conflicted {
		return nil, false, nil
	}
	c.stopExpiry()
	handedToMe := !ownWrite && l.handedToMe(c.lease)
	if handedToMe {
		l.o.log.Info("the holder handed the lease over to this candidate, taking it", zap.String("holder", c.record.holder))
	}
	if !ownWrite && c.lease != nil && c.record.holder != "" && !l.reclaimable(c.lease) && !handedToMe {
		expires := c.observedAt.Add(c.validFor())
		if wait := expires.Sub(clk.Now()); wait > 0 {
			c.expiry = clk.NewTimer(wait)
			return nil, false, nil
		}
		l.o.log.Info("lease expired, taking over", zap.String("holder", c.record.holder),
			zap.Duration("unchangedFor", clk.Since(c.observedAt)))
	}
	if !ownWrite && (c.lease == nil || !l.reclaimable(c.lease)) {
		wake := l.unboundC() // taken before the read: a lifting after it closes this channel
		if g := l.goneInForce(); g != nil {
			c.unbound = wake
			if !c.waitedForGone {
				l.o.log.Info("a held record of the lease is gone without its holder letting go; waiting until it would have expired",
					zap.String("how", g.how), zap.String("holder", g.record.holder), zap.Duration("wait", g.expires.Sub(clk.Now())))
				c.waitedForGone = true
			}
			c.expiry = clk.NewTimer(g.expires.Sub(clk.Now()))
			return nil, false, nil
		}
	}
	if !c.staggered && !handedToMe {
		if d := l.contention.delay(l.o.timings.RetryPeriod); d > 0 {
			c.stagger = clk.NewTimer(d)
			return nil, false, nil
		}
	}
	if c.staggered && !c.checked && !handedToMe {
		c.checked = true
		if l.movedOn(ctx, c.lease) {
			// A race lost as surely as by a conflict, only cheaper: the watch brings what changed,
			// and the decision is made again then.
			l.contention.lost(l.o.timings.RetryPeriod)
			return nil, false, nil
		}
	}
	sent := clk.Now()
	rec := l.newRecord(c.lease, sent)
	written, err := l.write(ctx, c.lease, rec)
	if ce := l.o.log.Check(zap.DebugLevel, "acquiring write answered"); ce != nil {
		ce.Write(zap.String("op", writeOp(c.lease)), zap.String("base", resourceVersionOf(c.lease)),
			zap.Int32("transitions", rec.transitions), zap.String("written", resourceVersionOf(written)), zap.Error(err))
	}
	switch {
	case err == nil:
		c.retry.reset()
		l.contention.won()
		if c.lease != nil {
			l.forget(leaseToken(c.lease, c.record).ID)
		}
		if late := clk.Since(sent); late >= l.o.timings.RenewDeadline {
			// The write landed, but it was answered so late (an API server waiting for etcd) that
			// a term timed from its send time would be over before it began. The record is this
			// process's own, and no one may take it before a LeaseDuration after observing it,
			// so take it again at once for a fresh term rather than start one lost at birth. Each
			// round of this needs another answer a whole RenewDeadline late.
			l.o.log.Info("write answered after the renew deadline, taking the lease again", zap.Duration("answeredAfter", late))
			c.observe(observation[*coordinationv1.Lease]{obj: written, exists: true})
			c.pending = &pendingWrite{record: recordOf(written), sent: sent}
			c.staggered, c.checked = true, true // no waiting for rivals: the record is this process's
			return nil, true, nil
		}
		return l.startTerm(written, sent), false, nil
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		// Another write came first: the watch brings it, and the decision is made again then.
		c.retry.reset()
		c.conflicted = true
		l.contention.lost(l.o.timings.RetryPeriod)
		return nil, false, nil
	case permanent(err) || (c.lease == nil && apierrors.IsNotFound(err)):
		// NotFound on create: the namespace does not exist.
		return nil, false, &APIError{Lock: l.String(), Op: writeOp(c.lease), Err: err}
	case ctx.Err() != nil:
		return nil, false, nil // the loop reports ctx's end
	default:
		c.pending = &pendingWrite{record: rec, sent: sent}
		l.o.log.Info("write failed, retrying", zap.String("op", writeOp(c.lease)), zap.Error(err))
		c.retrying = clk.NewTimer(c.retry.step())
		return nil, false, nil
	}
}

// validFor is how long the observed record stays valid after it was observed. A record without a
// positive duration is given this lock's own, which errs on the side of waiting longer.
func (c *leaseCandidate) validFor() time.Duration {
	if c.record.durationSeconds > 0 {
		return time.Duration(c.record.durationSeconds) * time.Second
	}
	return c.l.o.timings.LeaseDuration
}

func (c *leaseCandidate) expiryC() <-chan time.Time {
	if c.expiry == nil {
		return nil
	}
	return c.expiry.C()
}

func (c *leaseCandidate) retryC() <-chan time.Time {
	if c.retrying == nil {
		return nil
	}
	return c.retrying.C()
}

func (c *leaseCandidate) staggerC() <-chan time.Time {
	if c.stagger == nil {
		return nil
	}
	return c.stagger.C()
}

func (c *leaseCandidate) stopStagger() {
	if c.stagger != nil {
		c.stagger.Stop()
		c.stagger = nil
	}
}

func (c *leaseCandidate) stopExpiry() {
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
}

func (c *leaseCandidate) stopTimers() {
	c.stopExpiry()
	c.stopStagger()
	if c.retrying != nil {
		c.retrying.Stop()
		c.retrying = nil
	}
}
