// Package lock implements locks stored in the Kubernetes API server. A lock is held in terms:
// each successful acquisition starts a Term, which has a context that ends with it, a Lost
// signal, a fencing Token and a conditional Release.
//
// Give the locks a clientset of their own, built from the same *rest.Config as the workload's
// (kubernetes.NewForConfig(rest.CopyConfig(cfg))): a clientset has one client-side rate limiter,
// and a renewal queued behind a busy workload's requests past the renew deadline ends the term.
// Package app does this for its graph (app.LockClient).
//
// # The Lease lock
//
// Lease stores the lock in a coordination.k8s.io/v1 Lease, in the same record format as
// client-go's LeaseLock, so regent and client-go candidates can share one Lease.
//
// Waiting is event-driven. A waiter watches the one Lease (a field selector on its name) and reads
// it once as a list by the same selector after the watch opens; events not newer than that read
// are dropped, so every consumer sees the object as one ordered stream and never goes back in
// time. A free record that its holder's release wrote is taken as soon as its event arrives; a
// free record that someone else wrote over a held one binds like that held record (see
// Deletion, re-creation and clearing).
// A held Lease is taken once its record has stayed unchanged for its leaseDurationSeconds,
// measured on the waiter's own clock from the moment the waiter observed the record change; a
// timer set to that moment replaces polling. The holder's timestamps are never compared with the
// local clock. Every write is a compare-and-swap on the observed resourceVersion, so of two
// waiters that act at once exactly one wins; the other sees the winner's record in its watch,
// and never writes against a version it already lost on. A term is timed from its write's send
// time; a write answered only after RenewDeadline (an API server waiting for etcd) would start
// a term already over, so the waiter writes its own record again at once and starts a fresh one.
//
// Many waiters would all write on the same event. A Lease value that has lost such races waits
// a short random delay before writing to a free or expired Lease, and drops the write when
// another holder's record arrives first: the delay is below 2^(k-2) ms at level k >= 2, where k
// rises by one for each race lost and falls by two for each race won, and at most RetryPeriod
// (the period at which client-go's electors poll). After the delay it reads the Lease, and a
// Lease that has moved on since it was observed counts as a race lost and is not written: among
// many waiters the watch brings the winner's record to the last of them late, a read sees it at
// once. The levels settle where a few waiters write per handover (about 10 of 1,000 waiters in
// one process, see docs/benchmarks.md); a few candidates stay below level 2 and write at once,
// without the read. The delay and the read only postpone or drop an attempt to acquire, and play
// no part in the safety argument below.
//
// The holder renews every RetryPeriod, each renewal brought forward to the start of a slot of
// RetryPeriod/20 that all terms of the process share, so that a process holding many Leases
// wakes once for the renewals due together rather than once for each; renewing early is always
// safe. Each renewal's send time is noted on the holder's
// monotonic clock; when RenewDeadline has passed since the send time of the last renewal that
// succeeded, the term ends as lost, at that instant, whatever requests are still in flight and
// before any release is attempted. A holder that finds the Lease held by someone else, deleted,
// or its own deadline already behind it (a process resumed after a pause) ends the term at once.
//
// # Why two holders never overlap
//
// A renewal that succeeded was written after it was sent, and a waiter observes it after it was
// written, so a waiter may take over no earlier than sent+LeaseDuration on its clock. The holder
// gives up at sent+RenewDeadline on its clock. As long as the clocks run at nearly the same rate,
// the holder stops first, with LeaseDuration-RenewDeadline (5 s by default) to spare for its work
// to return and for rate differences. What the argument needs, and what this package cannot
// provide:
//
//   - Clock rate, not clock skew, matters. Two clocks that differ in rate by r over the lease
//     duration eat r*LeaseDuration of the margin.
//   - The holder's code must stop acting when the term's context is done. Work that ignores its
//     context overruns its term; package leader detects and reports that.
//   - A process paused for longer than the margin (SIGSTOP, a frozen VM) resumes with a term that
//     may already belong to someone else. It ends the term as soon as it runs again, but what it
//     does in the instant before cannot be prevented by a lock. Fencing tokens can: see Token.
//   - Anyone with update rights on the Lease can overwrite it with another holder's record; the
//     holder notices at its next renewal. (A free record written over it is handled below.)
//   - TryAcquire with WithMaxClockSkew(d) (opt-in) takes a held record whose renewTime is older
//     than its duration plus d by the local clock. That one rule compares the holder's clock
//     with the local one: it is safe only while the candidates' clocks differ by less than d.
//     Acquire never uses it.
//   - A Timings value that cannot work is refused: RetryPeriod below MinRetryPeriod (100 ms), a
//     margin below MinMargin (1 s). The error names the field and hints at the unit when a
//     value looks like seconds written as a bare time.Duration.
//
// # Deletion, re-creation and clearing
//
// Anyone with delete rights can delete the Lease while it is held (kubectl delete lease). The
// holder learns of it only at its next renewal, up to RetryPeriod later, and works on until then.
// So a waiter that saw a held record deleted treats the deletion like that record: it creates the
// Lease only once the record would have expired (observed time plus its duration, on the
// waiter's clock), exactly as long as it would have waited for the record itself, and the
// argument above holds unchanged; a free record of a Lease created again meanwhile is not taken
// before then either. A Lease value that knew the Lease and finds it absent, or replaced by
// another object, without having followed the change (its watch was down) writes nothing for a
// whole LeaseDuration from then. A deletion no Lease value knew of (a process that first reads
// the Lease after it) cannot be known: that candidate creates the Lease at once, and the old
// holder may overlap it by up to RetryPeriod plus its work's stopping time. Do not delete a
// held Lease.
//
// A held record can also be cleared by someone other than its holder: client-go's release, run
// after its own leader lost the Lease, reads the Lease and clears whatever record it finds
// (client-go checks leadership against the record it observed before, not the one it read), and
// an operator can edit the holder away. The holder works on until its next renewal, as after a
// deletion, so a cleared record binds like a deleted one. regent's release keeps the term's
// acquireTime and transition count; a free record that does not match the last held record a
// Lease value saw is not that holder's release, and the value takes it only once that record
// would have expired. When the free record was read by a list (the first read of an Acquire
// after the value saw a held record, or a read after the watch broke), terms the value did not
// see may lie in between, and it waits a whole LeaseDuration (or the last record's longer
// duration) from the read. A waiter therefore waits up to LeaseDuration when a client-go leader
// releases, and when a regent version before this rule released.
//
// Bindings end early only on evidence: a later record of the same holder with a greater count
// (identities are unique among candidates, so that holder learnt its earlier record was gone;
// a handover record is one) ends the binding of the earlier record. A term of a Lease value
// that ends as lost binds the value's own candidates (a second Acquire, a semaphore's other
// workers) until it is released, its work stopped, or its record would have expired.
//
// A term owns a record only if holder and token match: the token is the object's UID with the
// transition count, so a Lease deleted and created again under the same identity and count is
// another object, and the old term neither renews nor releases it; its next renewal ends it.
//
// # Tokens
//
// For a Lease, Token.Seq is leaseTransitions after the acquisition, incremented on every
// acquisition, also when the same identity acquires again. Release keeps the count and never
// deletes the Lease, so each term's Seq is greater than all earlier ones. A storage system that
// records the highest Seq it has accepted and refuses lower ones rejects the writes of a holder
// whose term has ended, including one that was paused. Deleting the Lease resets its count; a
// Lease value creates it again with a count one above the highest it has seen, so tokens keep
// growing across a deletion whenever the creator saw the deleted record. After a deletion the
// creator never knew of, the count may start lower, and a fencing store refuses the new leader
// until it passes the old count: fencing errs on the side of refusing.
//
// # Jeopardy and Check
//
// Term.State says how a term stands: healthy; at risk (jeopardy) once no renewal has succeeded
// for half the RenewDeadline (WithAtRiskAfter), so that work can pause actions that are hard to
// undo; ended. It returns a channel closed at the next change. Term.Check answers, from the
// clock and without a request, whether the term still lasts at this instant: a Lease term lasts
// until its renew deadline, the last successful renewal's send time plus RenewDeadline, on the
// monotonic clock. A process resumed after a pause runs its goroutines before its timers have
// told the renew loop that the deadline passed; a term that Check finds past it is ended as lost
// there and then. Work that checks before each action therefore does nothing after such a pause
// (the chaos suite's paused leaders, 4 pauses a run: 1 to 4 stale writes without Check, none with).
// Ending a term early only shortens it, so Check weakens nothing in the argument above; and it
// narrows the window of a paused process rather than closing it: an action that passed Check
// just before the pause is still sent when the process resumes. Only a token closes that.
//
// # Release
//
// Release clears the holder, keeping the term's acquireTime and transition count, with a
// compare-and-swap on the resourceVersion the term last wrote.
// If that version is gone, the Lease is read again and cleared only if it still records this
// term (same holder and token). A newer holder's record is never touched. Release
// after a lost term still clears a record that is this term's, which lets the next holder in
// without waiting for expiry; call it only once the work has stopped. When the release write
// fails (the API server is unreachable), the same Lease value remembers the term: its record
// names a holder that has stopped, so the next Acquire on that value retakes it at once rather
// than waiting for it to expire. A release that finds the Lease deleted marks the term the same
// way, so a deletion of its record that the value's waiters saw binds them no longer; the value's
// next Acquire, which did not follow the deletion, still waits a LeaseDuration (see Deletion and
// re-creation). Other instances, even with the same identity, wait as usual.
//
// # Handover
//
// Term.HandOver is a release that names the next holder. The term's last write, a
// compare-and-swap like Release's and only of a record that is still this term's, keeps the
// record held (same holder and token), renews it now, sets its duration to RetryPeriod rounded
// up to whole seconds, and annotates it with the successor's identity (HandoverToAnnotation)
// and this term's token ID (HandoverOfAnnotation). The named candidate, seeing on its watch a
// record handed to it whose annotated token is the record's own, takes it at once with an
// ordinary acquiring write (a new transition, a greater token, the annotations dropped). Every
// other candidate, and client-go's, sees a held record and waits its duration from observing it.
//
// Safety: the handover record is written only after the term ended and its work stopped (the
// caller's duty, as for Release), so the named candidate's term begins after the old work
// ended, exactly as after a release; to everyone else the record is a held one, and the
// argument of "Why two holders never overlap" applies unchanged. Annotations left on a later
// record bind nothing, because they name an earlier token; a kubectl user who forges both
// annotations takes the risk an overwritten record carries.
//
// A candidate answers to its identity and to the names given with WithHandoverAliases (its
// Pod's name, say). Two candidates may answer to one alias; both may then skip the wait, but
// each take is a compare-and-swap on the handover record's version, so one of them wins and
// the other sees a held record: who may skip the wait never decides how many hold the lock.
//
// An operator (or kubectl-regent) asks for a handover by annotating the held Lease with
// HandoverToAnnotation alone. The holder's renewals carry the annotation along, so the holder
// sees it at its next renewal; the term then closes HandoverRequested, and the holder stops its
// work and calls HandOver as above. A request changes who the holder names, nothing else: the
// term is not ended by it, and the handover record is written, as always, after the work
// stopped. It is told from a handover record by the missing HandoverOfAnnotation, and an
// acquiring write drops it, so a request seen during a term was made during that term.
//
// # Semaphore
//
// Semaphore lets up to its size of processes hold it at once. Each slot is a Lease lock of its
// own (name-0, name-1, …), waited for, taken, renewed and released by exactly the rules above, so
// each slot has one holder at a time by the same argument, and its tokens are ordered per slot.
// At most size slots can be held, so at most size terms last at once. A waiter follows the size
// record (the Lease named name) and every slot with one watch by the label
// regent.dev/semaphore=name; it takes the first slot below the size that the rules above let it
// take. The size is what the record says: the first candidate creates it; Resize, or an
// annotation, changes it. A lowered size removes the slots from the new size up: waiters never
// take them, and the holder of one ends its term as lost when its own watch of the record sees
// the change, then stops its work and releases, as on any loss. A candidate that has just taken
// a slot reads the record afresh before its term begins, and gives the slot back if the slot has
// been removed, so no term of a removed slot begins after the resize was written; the holders of
// removed slots that were already working stop within the Lease's margin of noticing. Slots and
// the size record must not be created by hand (the watch needs the label). See
// docs/semaphore-and-sharding.md.
//
// # Sharding
//
// Sharding spreads k shards of work over its live members. Each shard is a Lease lock of its own
// (name-0 … name-(k-1)), taken, renewed and released by exactly the rules above, so each shard
// has one holder at a time by the same argument, its tokens are ordered per shard, and a shard's
// work stops before its Lease is released. Nothing else carries the safety of a shard: who
// should hold which shard is decided by each member from what it observes, and a member that
// decides wrongly (a stale view, a clock that runs fast) can only try to take a shard that is
// free or expired by these rules, or give one up early.
//
// Membership is a Lease per member (name-member-HASH), renewed like any term; a member counts as
// live for the others while its record keeps changing within its duration as they observe it,
// the same local-observation rule as a waiter's expiry. One watch by the label
// regent.dev/sharding=name follows members and shards. Each member's share is floor(k/n) or
// ceil(k/n), ceil for the first k mod n members ranked by the shards they hold (counted up to
// ceil(k/n)) and then by identity; the cap keeps a member's share still while shards move, so a
// change of membership moves only the shards it needs. A member above its share cancels the work
// of its highest-numbered excess shards with the cause ErrMoved and releases each once its work
// has returned; a member below its share takes free or expired shards. A member that leaves
// releases its membership first, then stops and releases each shard. See
// docs/semaphore-and-sharding.md.
//
// # Leader for life
//
// ForLife locks (NewConfigMapForLife, NewLeaderLockForLife) are objects owned by the holder's Pod
// and collected with it. Waiters watch the lock object and its owner Pod, the owner known by name
// and UID, so that a Pod replaced under the same name is another owner with a watch of its own.
// A lock whose owner Pod is gone, replaced, or in phase Failed or Succeeded is deleted (with uid
// and resourceVersion preconditions) and taken, once a fresh read of the Pod confirms the verdict;
// a lock owned by this process's own Pod is resumed once a read confirms the object. Within a
// process, terms of one Pod on one lock take turns. A held term is lost only when someone deletes
// the object. Their tokens are unique per term but not ordered. A Pod force-deleted on a node cut
// off from the API server may still run; its lock is taken over all the same (nothing in the API
// tells that it runs). See docs/leader-for-life.md.
//
// # Requests
//
// A waiter makes one WATCH, renewed once an hour, and one LIST by name when the watch opens; a
// holder makes one UPDATE per RetryPeriod. Every request but a watch is bounded: a Lease's by its
// RenewDeadline, the leader-for-life locks' by 10 s. After a failed request a waiter retries with
// a backoff from 100 ms that never waits longer than RetryPeriod, so after an API server outage it
// is back within a RetryPeriod. The rights needed on leases are get, list, watch, create (first
// use only) and update; docs/rbac.md has the Role. A semaphore's waiter makes one GET of the size
// record when Acquire begins, then the same: one WATCH by label and one LIST; its holder adds a
// WATCH of the size record.
package lock
