package lock

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// HolderAnnotation records the holder identity on a leader-for-life lock object.
const HolderAnnotation = "regent.dev/holder"

// lifeStore is where a leader-for-life lock keeps its object: ConfigMaps or LeaderLocks.
type lifeStore[T object] interface {
	// kind names the store's objects for messages, e.g. "configmap".
	kind() string
	// ready checks that the store can be used at all, e.g. that its CRD is installed.
	ready(ctx context.Context) error
	get(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	list(ctx context.Context, opts metav1.ListOptions) ([]T, string, error)
	watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	create(ctx context.Context, obj T) (T, error)
	delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
	// newObject is the lock object of a term held by holder, owned by owner.
	newObject(namespace, name, holder string, owner metav1.OwnerReference) T
	// holder is the identity recorded in obj.
	holder(obj T) string
}
