package kubefake

import (
	"fmt"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	k8stesting "k8s.io/client-go/testing"
)

// Tracker is an object tracker with compare-and-swap writes.
type Tracker struct {
	k8stesting.ObjectTracker

	signal *Signal

	mu  sync.Mutex
	rv  int64
	uid int64
	// deletedAt is the resourceVersion of each deletion, by the deleted object's uid: the API
	// server gives a DELETED event the version of the deletion, not the object's last one.
	deletedAt map[types.UID]string
}

// NewClientset returns a fake clientset backed by a Tracker holding objs. Writes notify signal.
func NewClientset(signal *Signal, objs ...runtime.Object) (*fake.Clientset, *Tracker) {
	t := &Tracker{ObjectTracker: k8stesting.NewObjectTracker(scheme.Scheme, scheme.Codecs.UniversalDecoder()), signal: signal, deletedAt: map[types.UID]string{}}
	for _, obj := range objs {
		if err := t.Add(obj); err != nil {
			panic(fmt.Sprintf("kubefake: add %T: %v", obj, err))
		}
	}
	cs := &fake.Clientset{}
	// The first reactor of each chain wakes Await after the request has been recorded, whatever
	// later reactors do with it.
	cs.AddReactor("*", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		signal.Notify()
		return false, nil, nil
	})
	cs.AddWatchReactor("*", func(k8stesting.Action) (bool, watch.Interface, error) {
		signal.Notify()
		return false, nil, nil
	})
	cs.AddReactor("*", "*", k8stesting.ObjectReaction(t))
	cs.AddWatchReactor("*", func(action k8stesting.Action) (bool, watch.Interface, error) {
		var opts metav1.ListOptions
		if wa, ok := action.(k8stesting.WatchActionImpl); ok {
			opts = wa.ListOptions
		}
		w, err := t.Watch(action.GetResource(), action.GetNamespace(), opts)
		return err == nil, w, err
	})
	return cs, t
}

// Add stores obj as it is, stamping a resourceVersion and uid.
func (t *Tracker) Add(obj runtime.Object) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	obj = obj.DeepCopyObject()
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	t.stampNew(m)
	defer t.signal.Notify()
	return t.ObjectTracker.Add(obj)
}

// Create stores a new object.
func (t *Tracker) Create(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.CreateOptions) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	if m.GetResourceVersion() != "" {
		return apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	t.stampNew(m)
	defer t.signal.Notify()
	return t.ObjectTracker.Create(gvr, obj, ns, opts...)
}

// Update replaces an object if obj's resourceVersion is the stored one (or empty).
func (t *Tracker) Update(gvr schema.GroupVersionResource, obj runtime.Object, ns string, opts ...metav1.UpdateOptions) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	m, err := meta.Accessor(obj)
	if err != nil {
		return err
	}
	cur, err := t.ObjectTracker.Get(gvr, ns, m.GetName())
	if err != nil {
		return err
	}
	cm, err := meta.Accessor(cur)
	if err != nil {
		return err
	}
	if rv := m.GetResourceVersion(); rv != "" && rv != cm.GetResourceVersion() {
		return apierrors.NewConflict(gvr.GroupResource(), m.GetName(),
			fmt.Errorf("the object has been modified; please apply your changes to the latest version and try again"))
	}
	m.SetUID(cm.GetUID())
	m.SetCreationTimestamp(cm.GetCreationTimestamp())
	t.rv++
	m.SetResourceVersion(strconv.FormatInt(t.rv, 10))
	defer t.signal.Notify()
	return t.ObjectTracker.Update(gvr, obj, ns, opts...)
}

// Delete removes an object, honouring the uid and resourceVersion preconditions.
func (t *Tracker) Delete(gvr schema.GroupVersionResource, ns, name string, opts ...metav1.DeleteOptions) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	cur, err := t.ObjectTracker.Get(gvr, ns, name)
	if err != nil {
		return err
	}
	cm, err := meta.Accessor(cur)
	if err != nil {
		return err
	}
	for _, o := range opts {
		if p := o.Preconditions; p != nil {
			if (p.UID != nil && *p.UID != cm.GetUID()) || (p.ResourceVersion != nil && *p.ResourceVersion != cm.GetResourceVersion()) {
				return apierrors.NewConflict(gvr.GroupResource(), name, fmt.Errorf("precondition failed"))
			}
		}
	}
	t.rv++
	t.deletedAt[cm.GetUID()] = strconv.FormatInt(t.rv, 10)
	defer t.signal.Notify()
	return t.ObjectTracker.Delete(gvr, ns, name, opts...)
}

// List lists objects; the list carries the tracker's current resourceVersion, as the API
// server's lists do.
func (t *Tracker) List(gvr schema.GroupVersionResource, gvk schema.GroupVersionKind, ns string, opts ...metav1.ListOptions) (runtime.Object, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list, err := t.ObjectTracker.List(gvr, gvk, ns, opts...)
	if err != nil {
		return nil, err
	}
	if lm, err := meta.ListAccessor(list); err == nil {
		lm.SetResourceVersion(strconv.FormatInt(t.rv, 10))
	}
	return list, nil
}

// Watch watches objects. As from the API server, a watch opened without a resourceVersion
// starts with the objects as they are, and a DELETED event carries the deletion's version.
func (t *Tracker) Watch(gvr schema.GroupVersionResource, ns string, opts ...metav1.ListOptions) (watch.Interface, error) {
	w, err := t.ObjectTracker.Watch(gvr, ns, opts...)
	if err != nil {
		return nil, err
	}
	return newMappedWatch(w, t.stampDeletion), nil
}

// stampDeletion gives a DELETED event the deletion's resourceVersion.
func (t *Tracker) stampDeletion(ev watch.Event) watch.Event {
	if ev.Type != watch.Deleted {
		return ev
	}
	obj := ev.Object.DeepCopyObject()
	if m, err := meta.Accessor(obj); err == nil {
		t.mu.Lock()
		if rv, ok := t.deletedAt[m.GetUID()]; ok {
			m.SetResourceVersion(rv)
		}
		t.mu.Unlock()
	}
	return watch.Event{Type: ev.Type, Object: obj}
}

func (t *Tracker) stampNew(m metav1.Object) {
	t.rv++
	m.SetResourceVersion(strconv.FormatInt(t.rv, 10))
	if m.GetUID() == "" {
		t.uid++
		m.SetUID(types.UID(fmt.Sprintf("uid-%d", t.uid)))
	}
}
