// Package kubefake is a fake clientset for regent's unit tests that keeps the API server's rules
// that elections depend on, which client-go's own fake does not: every write stamps a new
// resourceVersion, an update with a stale resourceVersion is a Conflict, a create stamps a uid,
// and a delete honours its preconditions. Tests wait for what they expect with Await, which is
// woken by writes, never by the passing of time.
package kubefake
