package lock

import (
	"context"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// requestTimeout bounds every request this package makes that is not a watch and has no bound
// of its own (a Lease lock bounds its requests by its RenewDeadline). Without a bound, a request
// sent on an HTTP/2 connection that died silently would stall its caller until the API server's
// own limit of 60 s, or until the connection's health check gives up.
const requestTimeout = 10 * time.Second

// bounded runs one request with ctx bounded by d.
func bounded[R any](ctx context.Context, d time.Duration, request func(context.Context) (R, error)) (R, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return request(ctx)
}

func listLeases(c coordinationv1client.LeaseInterface) lister[*coordinationv1.Lease] {
	return func(ctx context.Context, opts metav1.ListOptions) ([]*coordinationv1.Lease, string, error) {
		list, err := c.List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return pointers(list.Items), list.ResourceVersion, nil
	}
}

func listConfigMaps(c corev1client.ConfigMapInterface) lister[*corev1.ConfigMap] {
	return func(ctx context.Context, opts metav1.ListOptions) ([]*corev1.ConfigMap, string, error) {
		list, err := c.List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return pointers(list.Items), list.ResourceVersion, nil
	}
}

func listPods(c corev1client.PodInterface) lister[*corev1.Pod] {
	return func(ctx context.Context, opts metav1.ListOptions) ([]*corev1.Pod, string, error) {
		list, err := c.List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return pointers(list.Items), list.ResourceVersion, nil
	}
}

func listUnstructured(c dynamic.ResourceInterface) lister[*unstructured.Unstructured] {
	return func(ctx context.Context, opts metav1.ListOptions) ([]*unstructured.Unstructured, string, error) {
		list, err := c.List(ctx, opts)
		if err != nil {
			return nil, "", err
		}
		return pointers(list.Items), list.GetResourceVersion(), nil
	}
}

func pointers[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}
