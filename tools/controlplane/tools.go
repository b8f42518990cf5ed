//go:build tools

// Package controlplane pins the main packages that regent's end-to-end tests run as processes:
// etcd, kube-apiserver and kube-controller-manager, and for a node kube-scheduler and kubelet.
// Nothing here is imported by the library.
package controlplane

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
