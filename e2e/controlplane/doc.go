// Package controlplane runs a real Kubernetes control plane for tests and demos: etcd,
// kube-apiserver and kube-controller-manager (garbage collector and namespace controllers) as
// processes on free loopback ports, in a temporary folder.
//
// The API server authorizes with RBAC and authenticates bearer tokens from a token file: an admin
// in system:masters and any number of ordinary users with no rights until a test grants them.
// The binaries come from tools/controlplane (make controlplane); their folder is found through
// REGENT_CONTROLPLANE_BIN. Start fails with a clear message when a binary is missing or a process
// dies during start-up; Stop ends every process it started.
//
// envtest (controller-runtime) drives etcd and kube-apiserver too, but it authenticates users
// with client certificates, does not run the controller-manager that garbage collection needs,
// and does not restart the API server or etcd in place on the same ports, which the fault tests
// need; this harness does those few things directly.
package controlplane
