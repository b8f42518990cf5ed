package lock

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// NewConfigMapForLife returns a leader-for-life lock stored in the ConfigMap name in pod's
// namespace and owned by pod, which must be this process's own Pod as read from the API server
// (contextinfo.Load gives it). Outside a Pod there is none, and the lock refuses to be built.
//
// The lock needs get, watch, create and delete on configmaps and get and watch on pods in the
// namespace; WithUnsafeTakeoverFromNotReadyNodes adds get on nodes.
func NewConfigMapForLife(core corev1client.CoreV1Interface, pod *corev1.Pod, name string, opts ...Option) (*ForLife, error) {
	if core == nil {
		return nil, &ConfigError{Field: "client", Value: nil, Reason: "must not be nil"}
	}
	var ns string
	if pod != nil {
		ns = pod.Namespace
	}
	return newLifeLock[*corev1.ConfigMap](configMapStore{core.ConfigMaps(ns)}, core, pod, name, opts)
}

type configMapStore struct {
	cms corev1client.ConfigMapInterface
}

func (configMapStore) kind() string                { return "configmap" }
func (configMapStore) ready(context.Context) error { return nil }

func (s configMapStore) get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.ConfigMap, error) {
	return s.cms.Get(ctx, name, opts)
}

func (s configMapStore) list(ctx context.Context, opts metav1.ListOptions) ([]*corev1.ConfigMap, string, error) {
	return listConfigMaps(s.cms)(ctx, opts)
}

func (s configMapStore) watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	return s.cms.Watch(ctx, opts)
}

func (s configMapStore) create(ctx context.Context, obj *corev1.ConfigMap) (*corev1.ConfigMap, error) {
	return s.cms.Create(ctx, obj, metav1.CreateOptions{})
}

func (s configMapStore) delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return s.cms.Delete(ctx, name, opts)
}

func (configMapStore) newObject(namespace, name, holder string, owner metav1.OwnerReference) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name:            name,
		Namespace:       namespace,
		Annotations:     map[string]string{HolderAnnotation: holder},
		OwnerReferences: []metav1.OwnerReference{owner},
	}}
}

func (configMapStore) holder(obj *corev1.ConfigMap) string { return obj.Annotations[HolderAnnotation] }
