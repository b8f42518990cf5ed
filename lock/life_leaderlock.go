package lock

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// LeaderLockResource is the LeaderLock custom resource (config/crd/leaderlocks.regent.dev.yaml).
var LeaderLockResource = schema.GroupVersionResource{Group: "regent.dev", Version: "v1", Resource: "leaderlocks"}

// ErrCRDNotInstalled means the cluster does not serve the LeaderLock resource.
var ErrCRDNotInstalled = errors.New("the LeaderLock custom resource definition (leaderlocks.regent.dev) is not installed; " +
	"install it with: kubectl apply -f config/crd/leaderlocks.regent.dev.yaml, or from code with package github.com/regent-k8s/regent/config/crd")

// NewLeaderLockForLife returns a leader-for-life lock stored in the LeaderLock name in pod's
// namespace, owned by pod, which must be this process's own Pod as read from the API server.
// The LeaderLock CRD must be installed; Acquire, TryAcquire and Observe return an error matching
// ErrCRDNotInstalled when it is not.
//
// The lock needs get, watch, create and delete on leaderlocks.regent.dev and get and watch on
// pods in the namespace; WithUnsafeTakeoverFromNotReadyNodes adds get on nodes.
func NewLeaderLockForLife(dyn dynamic.Interface, client kubernetes.Interface, pod *corev1.Pod, name string, opts ...Option) (*ForLife, error) {
	if dyn == nil || client == nil {
		return nil, &ConfigError{Field: "client", Value: nil, Reason: "must not be nil"}
	}
	var ns string
	if pod != nil {
		ns = pod.Namespace
	}
	store := &leaderLockStore{res: dyn.Resource(LeaderLockResource).Namespace(ns), disc: client.Discovery()}
	return newLifeLock[*unstructured.Unstructured](store, client.CoreV1(), pod, name, opts)
}

type leaderLockStore struct {
	res    dynamic.ResourceInterface
	disc   discovery.DiscoveryInterface
	served atomic.Bool
}

func (*leaderLockStore) kind() string { return "leaderlock" }

// ready asks discovery whether the resource is served; a positive answer is remembered.
func (s *leaderLockStore) ready(context.Context) error {
	if s.served.Load() {
		return nil
	}
	list, err := s.disc.ServerResourcesForGroupVersion(LeaderLockResource.GroupVersion().String())
	switch {
	case apierrors.IsNotFound(err):
		return ErrCRDNotInstalled
	case err != nil:
		return &APIError{Op: "discover", Err: fmt.Errorf("discover %s: %w", LeaderLockResource.GroupVersion(), err)}
	}
	for _, r := range list.APIResources {
		if r.Name == LeaderLockResource.Resource {
			s.served.Store(true)
			return nil
		}
	}
	return ErrCRDNotInstalled
}

func (s *leaderLockStore) get(ctx context.Context, name string, opts metav1.GetOptions) (*unstructured.Unstructured, error) {
	return s.res.Get(ctx, name, opts)
}

func (s *leaderLockStore) list(ctx context.Context, opts metav1.ListOptions) ([]*unstructured.Unstructured, string, error) {
	return listUnstructured(s.res)(ctx, opts)
}

func (s *leaderLockStore) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return s.res.Watch(ctx, opts)
}

func (s *leaderLockStore) create(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	return s.res.Create(ctx, obj, metav1.CreateOptions{})
}

func (s *leaderLockStore) delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return s.res.Delete(ctx, name, opts)
}

func (*leaderLockStore) newObject(namespace, name, holder string, owner metav1.OwnerReference) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": LeaderLockResource.GroupVersion().String(),
		"kind":       "LeaderLock",
		"spec":       map[string]any{"holder": holder},
	}}
	u.SetName(name)
	u.SetNamespace(namespace)
	u.SetAnnotations(map[string]string{HolderAnnotation: holder})
	u.SetOwnerReferences([]metav1.OwnerReference{owner})
	return u
}

func (*leaderLockStore) holder(obj *unstructured.Unstructured) string {
	h, _, _ := unstructured.NestedString(obj.Object, "spec", "holder")
	return h
}
