// Package leader runs guarded workloads: work that must run in one process at a time.
//
// A workload is a Work, a func(context.Context) error. Election.RunAsLeader waits until this
// process leads, runs the work with a context that is cancelled when leadership is lost or the
// caller's context ends, waits for the work to return, and only then releases the lock. Lost
// leadership is an error matching ErrLost, distinct from the work's own errors and from
// Kubernetes failures (*lock.APIError), so callers can retry on it:
//
//	guarded := leader.RetryOnLost(election.AsLeader(work))
//	err := guarded(ctx)
//
// For finer control, Election.Lead returns a Leadership handle; RunAsLeader is Lead, run, Release.
//
// # Guarantees and limits
//
// The election inherits the lock's guarantee (see package lock): with the Lease lock, the
// leader's context is cancelled RenewDeadline after the last successful renewal was sent, which
// is LeaseDuration-RenewDeadline before any other candidate may take over. The work must return
// within that margin. If it has not returned when others may take over, the election logs an
// error, counts it (Recorder.Overran) and calls the OnOverrun hook: that is an overrun, and from
// then on two copies of the work may run. Leader-for-life locks cannot bound that moment, so no
// overrun is judged for them.
//
// The work can pass its fencing token (TokenFrom) to the systems it writes to; they can then
// refuse writes of an ended term, which protects even against a paused process. Work can also
// call Check(ctx) before each action: it answers from the clock whether the term still lasts,
// and ends a term found past its renew deadline at once, so that work resumed after a pause
// does nothing more (see lock.Term.Check). Leadership.Term().State() tells when renewals have
// been failing for a while (at risk), before the term is lost.
//
// A Marker (WithMarker) makes the term visible outside the lock while it lasts: package podlabel
// labels the leader's Pod so that a Service reaches the leader only. The mark is removed after
// the work stopped and before the release.
//
// Leadership.HandOver ends a term by naming the next leader (lock.Term.HandOver). A handover
// requested on the lock's object (kubectl annotate lease NAME regent.dev/handover-to=X) cancels
// the work with a *HandoverRequestedError, which matches ErrLost, and Release then hands over to
// X. WithSuccessor names a successor when the leadership ends because the process is stopping
// (package readypeer: the newest Ready Pod). All of these write only after the work stopped.
//
// Nothing here panics or exits the process; a panic in the work is returned as a *PanicError
// after the lock was released.
package leader
