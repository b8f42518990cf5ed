// Package podlabel labels the leader's own Pod while it leads, so that a Service selecting the
// label sends traffic to the current leader only.
//
// The label's key is leader.regent.dev/<lock name> (KeyFor; WithKey chooses another) and its
// value "true". One key per lock lets a Pod lead several locks at once and a Service select the
// leader of one of them with a plain equality selector:
//
//	selector: {app: my-operator, leader.regent.dev/my-lock: "true"}
//
// A Label is a leader.Marker: pass it with leader.WithMarker. When a term begins it labels its
// own Pod, then removes the label from every other Pod in the namespace that still carries it
// (a previous leader that crashed, or whose process was killed, before it could). When the term
// ends, after the work has stopped and before the lock is released, it removes its own label.
//
// # Guarantees and limits
//
// The label is a routing aid, not a lock. While the lock's record names this holder no other
// candidate can have begun a term, so removing the label before the release means a Service never
// selects two leaders' Pods because of two live terms; a crashed leader's label, though, stays
// until the next leader clears it. Endpoints follow the label with the endpoint controllers'
// delay; docs/routing.md has the figures. A label removed by hand (kubectl label) while a term
// lasts is not put back until the next term. Patches name the Pod's UID, so a Pod replaced under
// the same name is never changed by the old Pod's process; removals from other Pods also name the
// resourceVersion read, and are made only while the term still lasts by its clock
// (lock.Term.Check), so a leader that lost its term does not clear its successor's label.
//
// Use it with locks that have one holder at a time (the Lease and leader-for-life locks), not
// with a semaphore, whose holders would clear each other's labels.
//
// RBAC: get, list and patch on pods in the Pod's namespace.
package podlabel
