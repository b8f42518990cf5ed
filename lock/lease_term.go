package lock

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// leaseTerm keeps a held Lease: it renews every RetryPeriod and ends the term as lost when no
// renewal sent within the last RenewDeadline has succeeded. That moment comes before any other
// candidate may take over, because they wait a whole LeaseDuration from when they observed the
// last successful renewal, which was written after it was sent.
type leaseTerm struct {
	l    *Lease
	term *Term
	wg   sync.WaitGroup // the renew loop and its requests

	ignoreOwnRequest sync.Once // logs a handover request naming this holder once

	mu       sync.Mutex
	written  *coordinationv1.Lease // the Lease as this term last wrote it
	lastSent time.Time             // send time of the last successful write, on the lock's clock
}

var _ termBackend = (*leaseTerm)(nil)

// startTerm starts a term from a successful write of the Lease sent at sent.
func (l *Lease) startTerm(written *coordinationv1.Lease, sent time.Time) *Term {
	rec := recordOf(written)
	l.saw(written)
	t := newTerm(l.String(), l.o.identity, leaseToken(written, rec))
	lt := &leaseTerm{l: l, term: t, written: written, lastSent: sent}
	t.backend = lt
	l.o.log.Info("acquired", zap.Int32("token", rec.transitions))
	if since := l.o.clock.Since(sent); since >= l.atRiskAfter() && t.setAtRisk(true) {
		// The acquiring write was answered after the at-risk threshold: the term begins at risk.
		l.o.log.Warn("at risk from the start: the acquiring write was answered late", zap.Duration("sinceSent", since),
			zap.Duration("lostIn", l.o.timings.RenewDeadline-since))
		lt.stateChanged(TermAtRisk)
	}
	lt.wg.Add(1)
	go lt.run()
	return t
}

type renewResult struct {
	attempt int
	sent    time.Time
	lease   *coordinationv1.Lease
	lost    string // non-empty when the renewal showed the term is over
	err     error
}

func (lt *leaseTerm) run() {
	defer lt.wg.Done()
	clk, tm := lt.l.o.clock, lt.l.o.timings
	lastSent := lt.sentAt()
	// deadline fires when the term becomes at risk, then at the renew deadline.
	deadline := clk.NewTimer(lt.untilNextCheck(lastSent))
	defer deadline.Stop()
	tick := clk.NewTimer(lt.renewIn(lastSent))
	defer tick.Stop()
	results := make(chan renewResult, 1)
	attempt := 0
	var cancelAttempt context.CancelFunc = func() {}
	defer func() { cancelAttempt() }()
	var lastErr error
	for {
		select {
		case <-lt.term.Done():
			return
		case <-deadline.C():
			since := clk.Since(lastSent)
			if since < tm.RenewDeadline {
				if since >= lt.l.atRiskAfter() && lt.term.setAtRisk(true) {
					lt.l.o.log.Warn("at risk: no renewal has succeeded lately", zap.Duration("sinceLastRenewal", since),
						zap.Duration("lostIn", tm.RenewDeadline-since), zap.Error(lastErr))
					lt.stateChanged(TermAtRisk)
				}
				deadline.Reset(lt.untilNextCheck(lastSent))
				continue
			}
			lt.lose("no renewal succeeded within the renew deadline", lastErr)
			return
		case <-tick.C():
			now := clk.Now()
			if now.Sub(lastSent) >= tm.RenewDeadline {
				// A process that was paused resumes here with its deadline behind it.
				lt.lose("the renew deadline passed before the next renewal (was the process paused?)", lastErr)
				return
			}
			// An attempt still in flight after a whole RetryPeriod is abandoned for a new one.
			tick.Reset(lt.renewIn(now))
			cancelAttempt()
			attempt++
			cancelAttempt = lt.startRenew(attempt, now, results)
		case r := <-results:
			superseded := r.attempt != attempt
			if superseded && r.err != nil && r.lost == "" {
				continue // an abandoned attempt's failure, most likely its own cancellation
			}
			if fn := lt.l.o.onRenew; fn != nil {
				fn(Renewal{Lock: lt.l.String(), Latency: clk.Since(r.sent), Err: r.err})
			}
			switch {
			case r.lost != "":
				lt.lose(r.lost, r.err)
				return
			case r.err != nil && permanent(r.err):
				lt.lose("renewal refused", r.err)
				return
			case r.err != nil:
				lastErr = r.err
				lt.l.o.log.Info("renewal failed", zap.Error(r.err), zap.Duration("sinceLastRenewal", clk.Since(lastSent)))
			case clk.Since(lastSent) >= tm.RenewDeadline:
				// The renewal succeeded, but only after the deadline of the previous one.
				lt.lose("the renewal succeeded only after the renew deadline", nil)
				return
			case r.sent.After(lastSent):
				// Any successful renewal counts, also one that a newer attempt superseded: it
				// was written after it was sent.
				lastErr = nil
				lastSent = r.sent
				lt.renewed(r.lease, r.sent)
				if lt.term.setAtRisk(false) {
					lt.l.o.log.Info("healthy again: a renewal succeeded")
					lt.stateChanged(TermHealthy)
				}
				deadline.Reset(lt.untilNextCheck(lastSent))
				if !superseded {
					tick.Reset(lt.renewIn(lastSent))
				}
			}
		}
	}
}

// renewSlots is how many renewal slots a RetryPeriod has (see renewIn).
const renewSlots = 20

// renewIn is how long to wait before renewing after a renewal sent at from: a RetryPeriod, brought
// forward to the start of the slot it ends in. Slots are RetryPeriod/renewSlots long (100 ms at
// the defaults) and begin at the same instants in every term of the process, so a process that
// holds many Leases renews those due in one slot together, in one wake-up, instead of waking for
// each. The next renewal only ever comes earlier than a RetryPeriod, and the term's deadline is
// timed from the last successful send on its own timer, so this changes nothing in the safety
// argument. The slot's start comes from the wall clock, but only as an offset below one slot
// that is subtracted from a wait measured on the monotonic clock, so a wall-clock jump can
// shift a renewal by less than a slot, and never past the RetryPeriod.
func (lt *leaseTerm) renewIn(from time.Time) time.Duration {
	clk, period := lt.l.o.clock, lt.l.o.timings.RetryPeriod
	slot := int64(period / renewSlots)
	early := time.Duration(0)
	if slot > 0 {
		early = time.Duration(from.Add(period).UnixNano() % slot)
		if early < 0 { // a time before 1970
			early += time.Duration(slot)
		}
	}
	return max(period-clk.Since(from)-early, 0)
}

// startRenew sends a renewal in the background; the returned function abandons it.
func (lt *leaseTerm) startRenew(attempt int, sent time.Time, out chan<- renewResult) context.CancelFunc {
	ctx, cancel := context.WithCancel(lt.term.Context())
	lt.wg.Add(1)
	go lt.renew(ctx, attempt, sent, out)
	return cancel
}

// renew writes a fresh renewTime with a compare-and-swap on the last written resourceVersion. On
// a conflict it reads the Lease: if the record still names this term (an unrelated write, or an
// earlier renewal whose reply was lost) it renews that version instead; otherwise the term is over.
func (lt *leaseTerm) renew(ctx context.Context, attempt int, sent time.Time, out chan<- renewResult) {
	defer lt.wg.Done()
	res := renewResult{attempt: attempt, sent: sent}
	res.lease, res.err = lt.update(ctx, lt.writtenLease(), sent)
	if apierrors.IsConflict(res.err) {
		var cur *coordinationv1.Lease
		cur, res.err = lt.l.leases.Get(ctx, lt.l.name, metav1.GetOptions{})
		switch {
		case res.err != nil:
		case cur.UID != lt.writtenLease().UID:
			// The Lease was deleted and created again, unseen: whoever created it may have
			// held it meanwhile (see noteUnseenDeletion), and it is not this term's.
			lt.l.noteUnseenDeletion(cur)
			res.lost = fmt.Sprintf("the lease was deleted and created again (now held by %q)", recordOf(cur).holder)
		case !lt.owns(cur):
			lt.l.saw(cur)
			res.lost = fmt.Sprintf("the lease is now held by %q", recordOf(cur).holder)
		default:
			lt.l.saw(cur)
			res.lease, res.err = lt.update(ctx, cur, sent)
		}
	}
	if apierrors.IsNotFound(res.err) {
		res.lost = "the lease was deleted"
	}
	if res.err == nil && res.lost == "" {
		lt.noteRequest(res.lease) // before the result is reported, so that observers see it noted
	}
	select {
	case out <- res:
	case <-lt.term.Done():
	}
}

// owns reports whether a Lease's record is this term's: the same holder, and the same token,
// which is the object's UID with the transition count. A Lease deleted and created again under
// the same identity and count is another object, with another UID, and not this term's.
func (lt *leaseTerm) owns(cur *coordinationv1.Lease) bool {
	rec := recordOf(cur)
	return rec.holder == lt.l.o.identity && leaseToken(cur, rec) == lt.term.token
}

func (lt *leaseTerm) update(ctx context.Context, base *coordinationv1.Lease, sent time.Time) (*coordinationv1.Lease, error) {
	lease := base.DeepCopy()
	rec := recordOf(lease)
	rec.holder = lt.l.o.identity
	rec.durationSeconds = int32(lt.l.o.timings.LeaseDuration.Seconds())
	rec.renewTime = microNow(sent)
	rec.writeTo(lease)
	return lt.l.leases.Update(ctx, lease, metav1.UpdateOptions{})
}

// lose ends the term as lost. Until it is released, its work may still run, so the value's own
// candidates are bound by it as others are by its record (see bindOwnLoss).
func (lt *leaseTerm) lose(reason string, err error) {
	lt.l.bindOwnLoss(recordOf(lt.writtenLease()), lt.term.token.ID, lt.exclusiveUntil())
	if lt.term.loseTerm(reason, err) {
		lt.l.o.log.Warn("lost", zap.String("reason", reason), zap.Error(err), zap.Int64("token", lt.term.token.Seq))
	}
}

func (lt *leaseTerm) renewed(l *coordinationv1.Lease, sent time.Time) {
	lt.l.saw(l)
	lt.mu.Lock()
	defer lt.mu.Unlock()
	lt.written, lt.lastSent = l, sent
}

func (lt *leaseTerm) writtenLease() *coordinationv1.Lease {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.written
}

func (lt *leaseTerm) sentAt() time.Time {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.lastSent
}

func (lt *leaseTerm) exclusiveUntil() time.Time {
	return lt.sentAt().Add(lt.l.o.timings.LeaseDuration)
}

func (lt *leaseTerm) deadline() (time.Time, bool) {
	return lt.sentAt().Add(lt.l.o.timings.RenewDeadline), true
}

func (lt *leaseTerm) checkDeadline() {
	if d, _ := lt.deadline(); !lt.l.o.clock.Now().Before(d) {
		lt.lose("the renew deadline had passed when the term was checked (was the process paused?)", nil)
	}
}

func (lt *leaseTerm) stateChanged(s TermState) {
	if fn := lt.l.o.onState; fn != nil {
		fn(StateChange{Lock: lt.l.String(), Token: lt.term.Token(), State: s})
	}
}

// untilNextCheck is how long the renew loop's deadline timer waits after a renewal sent at
// lastSent: until the term would become at risk, if it is not yet, else until the deadline.
func (lt *leaseTerm) untilNextCheck(lastSent time.Time) time.Duration {
	since := lt.l.o.clock.Since(lastSent)
	if !lt.term.isAtRisk() && since < lt.l.atRiskAfter() {
		return lt.l.atRiskAfter() - since
	}
	return lt.l.o.timings.RenewDeadline - since
}

func (lt *leaseTerm) stop() { lt.wg.Wait() }

// release clears the holder as client-go does (empty holder, duration 1 s, the transition count
// kept) but keeps the term's acquireTime, which marks the free record as this term's own release
// (see isReleaseOf); it does so with a compare-and-swap on the resourceVersion this term last wrote.
// If that version is gone it reads the Lease and clears it only if the record is still this
// term's; a Lease that a newer term holds, or that was deleted, is left alone. The release is
// bounded by twice RenewDeadline, one for each of its requests.
//
// When the record could not be cleared, or was deleted with the Lease, this Lease value
// remembers the term as abandoned: its holder has stopped, so the value may take the record
// again at once, and a deletion of it that the value's waiters saw binds them no longer. A
// candidate of the value that did not follow the deletion still waits (noteUnseenDeletion).
func (lt *leaseTerm) release(ctx context.Context) error {
	deleted, err := lt.clear(ctx)
	lt.ended(deleted, err)
	return err
}

// ended notes the term's end after its last write (deleted: the Lease was found deleted; err:
// the write failed). The term's work has stopped: a lost term binds the value's candidates no
// longer, and a record that could not be cleared may be taken again at once.
func (lt *leaseTerm) ended(deleted bool, err error) {
	lt.l.unbindOwn(lt.term.token.ID)
	if err != nil || deleted {
		lt.l.abandon(lt.term.token.ID)
	}
	lt.l.wakeBound()
}

// clear clears the record if it is still this term's; deleted reports a Lease found deleted.
func (lt *leaseTerm) clear(ctx context.Context) (deleted bool, err error) {
	return lt.lastWrite(ctx, "released", func(lease *coordinationv1.Lease, now time.Time) {
		rec := recordOf(lease)
		rec.holder, rec.durationSeconds, rec.renewTime = "", 1, now
		rec.writeTo(lease)
		dropHandover(lease)
	})
}

// lastWrite makes the term's last write, edit applied to the Lease as this term last wrote it,
// if the record is still this term's; deleted reports a Lease found deleted. It is bounded by
// twice RenewDeadline, one for each of its requests.
func (lt *leaseTerm) lastWrite(ctx context.Context, done string, edit func(lease *coordinationv1.Lease, now time.Time)) (deleted bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 2*lt.l.o.timings.RenewDeadline)
	defer cancel()
	base := lt.writtenLease()
	for range 2 {
		lease := base.DeepCopy()
		edit(lease, microNow(lt.l.o.clock.Now()))
		written, err := lt.l.leases.Update(ctx, lease, metav1.UpdateOptions{})
		switch {
		case err == nil:
			lt.l.saw(written)
			lt.l.o.log.Info(done, zap.Int64("token", lt.term.token.Seq))
			return false, nil
		case apierrors.IsNotFound(err):
			return true, nil
		case !apierrors.IsConflict(err):
			return false, &APIError{Lock: lt.l.String(), Op: "update", Err: err}
		}
		cur, err := lt.l.leases.Get(ctx, lt.l.name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return true, nil
		case err != nil:
			return false, &APIError{Lock: lt.l.String(), Op: "get", Err: err}
		case !lt.owns(cur):
			return false, nil
		}
		base = cur
	}
	return false, &APIError{Lock: lt.l.String(), Op: "update", Err: fmt.Errorf("the lease kept changing while being written a last time")}
}
