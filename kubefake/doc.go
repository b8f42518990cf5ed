// Package kubefake is a fake Kubernetes clientset and clock for unit tests of code that uses
// regent. It keeps the API server's rules that elections depend on, which client-go's own fake
// (k8s.io/client-go/kubernetes/fake) does not: every write stamps a new resourceVersion, an
// update with a stale resourceVersion is a Conflict, a create stamps a uid, a delete honours its
// preconditions, and lists and DELETED events carry resourceVersions. With client-go's fake,
// every compare-and-swap succeeds and two candidates would both lead; a regent Lease refuses
// such a client (lock.ErrNoResourceVersions).
//
// Env bundles the clientset with a fake clock (pass Env.Clock to lock.WithClock and
// leader.WithClock) and a Signal: tests wait for what they expect with Await, which is woken by
// every write and every timer created, never by the passing of time, and then move the clock
// with Clock.Step. See docs/testing.md in the repository for unit and end-to-end tests.
package kubefake
