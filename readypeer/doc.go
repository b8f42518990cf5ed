// Package readypeer names a successor for a leader that is stopping: a Ready Pod of the same
// workload, so that in a rolling update the lock goes at once to a replica that is up, rather
// than to whichever candidate writes first (perhaps another old replica about to be stopped too).
//
// Pass it to leader.WithSuccessor. When the leadership ends because the process is stopping, the
// leader lists the Pods of its workload (its own labels, without the ones that differ between
// revisions or Pods: pod-template-hash, controller-revision-hash, the StatefulSet Pod's name and
// index, a DaemonSet's pod-template-generation, and podlabel's leader labels) and names the
// newest one that is Ready and not being deleted, by its Pod name. The candidates must answer to
// their Pod's name (lock.WithHandoverAliases; regent's app does this), and the lock must be a
// Lease lock.
//
// # Guarantees and limits
//
// The choice is a preference, not a lock: a handover is safe whoever is named (see
// lock.Term.HandOver). A Pod that is Ready but does not campaign for this lock, or that stops
// before it takes the lock, costs the lock its RetryPeriod (rounded up to seconds), after which
// any candidate may take it. Readiness is the Pod's condition as the API server has it.
//
// RBAC: list on pods in the Pod's namespace.
package readypeer
