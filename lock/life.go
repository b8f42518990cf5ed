package lock

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/regent-k8s/regent/contextinfo"
)

// ForLife is a leader-for-life lock: an object named after the lock and owned by the holder's
// Pod. It is held until it is released or the Pod goes, when Kubernetes' garbage collector
// deletes it. Build one with NewConfigMapForLife or NewLeaderLockForLife.
type ForLife struct{ Lock }

// lifeLock is the algorithm shared by the leader-for-life stores.
type lifeLock[T object] struct {
	store     lifeStore[T]
	pods      corev1client.PodInterface
	nodes     corev1client.NodeInterface
	namespace string
	name      string
	pod       *corev1.Pod
	o         options
}

func newLifeLock[T object](store lifeStore[T], core corev1client.CoreV1Interface, pod *corev1.Pod, name string, opts []Option) (*ForLife, error) {
	if pod == nil {
		return nil, &ConfigError{Field: "pod", Value: nil, Reason: "a leader-for-life lock is owned by its holder's Pod, and there is none: " +
			contextinfo.ErrPodNameMissing.Error(), Err: contextinfo.ErrPodNameMissing}
	}
	if pod.Name == "" || pod.Namespace == "" || pod.UID == "" {
		return nil, &ConfigError{Field: "pod", Value: pod.Namespace + "/" + pod.Name, Reason: "needs a name, namespace and uid, as read from the API server"}
	}
	if err := validateName("name", name, validation.IsDNS1123Subdomain); err != nil {
		return nil, err
	}
	o := defaultOptions()
	o.identity = contextinfo.Info{PodName: pod.Name}.Identity()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	if o.identity == "" {
		return nil, &ConfigError{Field: "Identity", Value: `""`, Reason: "must not be empty"}
	}
	if err := o.refuseOptionsOf(o.leaseOnly, "Lease"); err != nil {
		return nil, err
	}
	if o.clock == nil {
		return nil, &ConfigError{Field: "Clock", Value: nil, Reason: "must not be nil"}
	}
	if o.log == nil {
		o.log = zap.NewNop()
	}
	o.log = o.log.Named(store.kind()).With(zapLock(pod.Namespace, name))
	l := &lifeLock[T]{store: store, pods: core.Pods(pod.Namespace), nodes: core.Nodes(), namespace: pod.Namespace, name: name, pod: pod, o: o}
	return &ForLife{Lock: l}, nil
}

func (l *lifeLock[T]) String() string {
	return fmt.Sprintf("%s %s/%s", l.store.kind(), l.namespace, l.name)
}
func (l *lifeLock[T]) Identity() string { return l.o.identity }

func (l *lifeLock[T]) ownerRef() metav1.OwnerReference {
	yes := true
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: l.pod.Name, UID: l.pod.UID, Controller: &yes}
	if l.o.blockOwnerDeletion {
		ref.BlockOwnerDeletion = &yes
	}
	return ref
}

// podOwner is the Pod that owns a lock object, nil if none does.
func podOwner(obj metav1.Object) *metav1.OwnerReference {
	for _, ref := range obj.GetOwnerReferences() {
		if ref.Kind == "Pod" && ref.APIVersion == "v1" {
			return &ref
		}
	}
	return nil
}

func lifeToken(obj metav1.Object) Token { return Token{ID: string(obj.GetUID())} }

func (l *lifeLock[T]) watcher() *objectWatcher[T] {
	return &objectWatcher[T]{name: l.name, list: l.store.list, watch: l.store.watch, clock: l.o.clock, log: l.o.log, timeout: l.o.requestTimeout}
}

func (l *lifeLock[T]) podWatcher(name string) *objectWatcher[*corev1.Pod] {
	return &objectWatcher[*corev1.Pod]{name: name, list: listPods(l.pods), watch: l.pods.Watch, clock: l.o.clock, log: l.o.log, timeout: l.o.requestTimeout}
}

// lifeTurns holds one turn for each leader-for-life lock object and Pod in this process: the
// terms of one Pod on one lock take turns, because a second Acquire would otherwise resume the
// first one's object and both would hold it.
var lifeTurns sync.Map // string -> chan struct{} with room for one

func (l *lifeLock[T]) turn() chan struct{} {
	v, _ := lifeTurns.LoadOrStore(l.String()+" pod "+string(l.pod.UID), make(chan struct{}, 1))
	return v.(chan struct{})
}

// endTurnWith gives the turn back at once when no term began, and otherwise hands it to the
// term, which gives it back once its lock object is gone or released (see lifeTerm.freeTurn).
func (l *lifeLock[T]) endTurnWith(turn chan struct{}, term *Term) {
	if term == nil {
		<-turn
		return
	}
	term.backend.(*lifeTerm[T]).holdTurn(turn)
}

// create makes the lock object for this process's Pod.
func (l *lifeLock[T]) create(ctx context.Context) (*Term, error) {
	obj, err := bounded(ctx, l.o.requestTimeout, func(ctx context.Context) (T, error) {
		return l.store.create(ctx, l.store.newObject(l.namespace, l.name, l.o.identity, l.ownerRef()))
	})
	if err != nil {
		return nil, err
	}
	l.o.log.Info("acquired", zap.String("uid", string(obj.GetUID())))
	return l.startTerm(obj), nil
}

// staleReason says why the owner Pod no longer runs code, or "" while it may.
func (l *lifeLock[T]) staleReason(ctx context.Context, owner *metav1.OwnerReference, pod *corev1.Pod, exists bool) (string, error) {
	switch {
	case !exists:
		return fmt.Sprintf("its owner pod %s no longer exists", owner.Name), nil
	case pod.UID != owner.UID:
		return fmt.Sprintf("its owner pod %s was replaced by another with the same name", owner.Name), nil
	case pod.Status.Phase == corev1.PodFailed || pod.Status.Phase == corev1.PodSucceeded:
		reason := pod.Status.Reason
		if reason == "" {
			reason = "no reason given"
		}
		return fmt.Sprintf("its owner pod %s is in phase %s (%s): its containers have stopped", owner.Name, pod.Status.Phase, reason), nil
	case l.o.notReadyTakeover && pod.Spec.NodeName != "":
		node, err := bounded(ctx, l.o.requestTimeout, func(ctx context.Context) (*corev1.Node, error) {
			return l.nodes.Get(ctx, pod.Spec.NodeName, metav1.GetOptions{})
		})
		if err != nil {
			if apierrors.IsNotFound(err) {
				return fmt.Sprintf("the node %s of its owner pod %s no longer exists (unsafe takeover enabled)", pod.Spec.NodeName, owner.Name), nil
			}
			return "", err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status != corev1.ConditionTrue {
				return fmt.Sprintf("the node %s of its owner pod %s is not Ready (unsafe takeover enabled)", node.Name, owner.Name), nil
			}
		}
	}
	return "", nil
}

// deleteStale deletes a lock object whose holder has stopped, on condition that it is still the
// object that was judged (uid and resourceVersion).
func (l *lifeLock[T]) deleteStale(ctx context.Context, obj T, reason string) error {
	uid, rv := obj.GetUID(), obj.GetResourceVersion()
	ctx, cancel := context.WithTimeout(ctx, l.o.requestTimeout)
	defer cancel()
	err := l.store.delete(ctx, l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv}})
	switch {
	case err == nil:
		l.o.log.Info("deleted a stale lock", zap.String("holder", l.store.holder(obj)), zap.String("reason", reason))
		return nil
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil // gone already, or changed: the watch tells what happened
	default:
		return err
	}
}

// TryAcquire takes the lock if its object is absent, owned by this Pod, or owned by a Pod that
// no longer runs; otherwise it returns a *HeldError. A term of this Pod that this process still
// holds counts as held.
func (l *lifeLock[T]) TryAcquire(ctx context.Context) (term *Term, err error) {
	if ctx == nil {
		return nil, errNil("ctx")
	}
	if err := l.store.ready(ctx); err != nil {
		return nil, err
	}
	turn := l.turn()
	select {
	case turn <- struct{}{}:
	default:
		return nil, &HeldError{Lock: l.String(), Holder: l.o.identity}
	}
	defer func() { l.endTurnWith(turn, term) }()
	for attempt := 0; ; attempt++ {
		cur, err := bounded(ctx, l.o.requestTimeout, func(ctx context.Context) (T, error) {
			return l.store.get(ctx, l.name, metav1.GetOptions{})
		})
		switch {
		case apierrors.IsNotFound(err):
			term, err := l.create(ctx)
			if apierrors.IsAlreadyExists(err) && attempt == 0 {
				continue
			}
			if err != nil {
				return nil, l.apiError("create", err)
			}
			return term, nil
		case err != nil:
			return nil, l.apiError("get", err)
		}
		owner := podOwner(cur)
		if owner != nil && owner.UID == l.pod.UID {
			return l.resume(cur), nil
		}
		if owner == nil || attempt > 0 {
			return nil, &HeldError{Lock: l.String(), Holder: l.store.holder(cur)}
		}
		pod, err := bounded(ctx, l.o.requestTimeout, func(ctx context.Context) (*corev1.Pod, error) {
			return l.pods.Get(ctx, owner.Name, metav1.GetOptions{})
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return nil, l.apiError("get pod", err)
		}
		reason, err := l.staleReason(ctx, owner, pod, err == nil)
		if err != nil {
			return nil, l.apiError("get node", err)
		}
		if reason == "" {
			return nil, &HeldError{Lock: l.String(), Holder: l.store.holder(cur)}
		}
		if err := l.deleteStale(ctx, cur, reason); err != nil {
			return nil, l.apiError("delete", err)
		}
	}
}

func (l *lifeLock[T]) resume(cur T) *Term {
	l.o.log.Info("resumed the term of this pod", zap.String("uid", string(cur.GetUID())), zap.String("recordedHolder", l.store.holder(cur)))
	return l.startTerm(cur)
}

func (l *lifeLock[T]) apiError(op string, err error) error {
	if _, ok := err.(*APIError); ok {
		return withLock(err, l.String())
	}
	return &APIError{Lock: l.String(), Op: op, Err: err}
}

// Observe reports the holder recorded on the lock object each time it changes.
func (l *lifeLock[T]) Observe(ctx context.Context, fn func(Observation)) error {
	if ctx == nil {
		return errNil("ctx")
	}
	if fn == nil {
		return errNil("fn")
	}
	if err := l.store.ready(ctx); err != nil {
		return err
	}
	var last *Observation
	return observe(ctx, l.watcher(), func(o observation[T]) {
		next := Observation{Time: l.o.clock.Now()}
		if o.exists {
			next.Holder, next.Token = l.store.holder(o.obj), lifeToken(o.obj)
		}
		if last != nil && last.Holder == next.Holder && last.Token == next.Token {
			return
		}
		last = &next
		fn(next)
	}, l.String())
}
