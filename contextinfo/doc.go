// Package contextinfo tells a process who and where it is in Kubernetes: its Pod name, its
// namespace and, inside a cluster, its Pod object.
//
// In a cluster the Pod name comes from the POD_NAME environment variable (set it from the
// downward API, fieldRef metadata.name) and the namespace from POD_NAMESPACE or, failing that,
// from the service-account namespace file. Outside a cluster (a developer's laptop) the namespace
// comes from the kubeconfig context, there is no Pod, and identities are built from the host name.
//
// Errors are sentinels wrapped with detail, matched with errors.Is: ErrPodNameMissing,
// ErrNamespaceUnknown and ErrPodNotFound.
package contextinfo
