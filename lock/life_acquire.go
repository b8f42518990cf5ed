package lock

import (
	"context"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
)

// Acquire waits until this process holds the lock, or ctx ends; see Lock.
//
// Waiting is driven by two watches: one on the lock object, one on the Pod that owns it. When the
// lock object is deleted (released, or collected with its Pod), the waiter creates it at once.
// When the owner Pod is gone, replaced, or in a terminal phase (Failed, e.g. evicted, or
// Succeeded), none of its code runs any more, and the waiter deletes the lock object on condition
// of its uid and resourceVersion, then creates its own. A lock object owned by this process's own
// Pod is resumed: the process was restarted inside the same Pod.
//
// Within one process, terms of the same Pod on the same lock take turns: a second Acquire waits
// until the first term has ended (the lock object would otherwise be resumed by both).
func (l *lifeLock[T]) Acquire(ctx context.Context) (term *Term, err error) {
	if ctx == nil {
		return nil, errNil("ctx")
	}
	if err := l.store.ready(ctx); err != nil {
		return nil, err
	}
	turn := l.turn()
	select {
	case turn <- struct{}{}:
	case <-ctx.Done():
		return nil, &HeldError{Lock: l.String(), Holder: l.o.identity, Err: ctx.Err()}
	}
	defer func() { l.endTurnWith(turn, term) }()
	wctx, stopWatches := context.WithCancel(ctx)
	lockEvents := make(chan observation[T])
	lockDone := make(chan struct{})
	go func() {
		defer close(lockDone)
		l.watcher().run(wctx, lockEvents)
	}()
	defer func() {
		stopWatches()
		<-lockDone
	}()

	w := &lifeWaiter[T]{l: l, retry: newBackoff(l.o.clock, 100*time.Millisecond, 5*time.Second)}
	defer w.stopOwnerWatch()
	defer w.stopRetry()
	for {
		select {
		case <-ctx.Done():
			return nil, &HeldError{Lock: l.String(), Holder: w.holder(), Err: ctx.Err()}
		case o := <-lockEvents:
			if o.err != nil {
				return nil, withLock(o.err, l.String())
			}
			w.cur, w.exists, w.known = o.obj, o.exists, true
		case p := <-w.ownerEvents:
			if p.err != nil {
				return nil, withLock(p.err, l.String())
			}
			w.ownerPod, w.ownerExists, w.ownerKnown = p.obj, p.exists, true
		case <-w.retryC():
			w.retrying = nil
		}
		if term, err := w.act(ctx, wctx); term != nil || err != nil {
			return term, err
		}
	}
}

// lifeWaiter is what a waiting leader-for-life candidate knows.
type lifeWaiter[T object] struct {
	l *lifeLock[T]

	known  bool
	exists bool
	cur    T

	// The watch on the current owner Pod, restarted when the owner (name and UID) changes.
	ownerName   string
	ownerUID    types.UID
	ownerEvents chan observation[*corev1.Pod]
	stopOwner   context.CancelFunc
	ownerDone   chan struct{}
	ownerKnown  bool
	ownerExists bool
	ownerPod    *corev1.Pod

	retrying clock.Timer
	retry    *backoff
}

func (w *lifeWaiter[T]) holder() string {
	if !w.exists {
		return ""
	}
	return w.l.store.holder(w.cur)
}

func (w *lifeWaiter[T]) act(ctx, wctx context.Context) (*Term, error) {
	l := w.l
	if !w.known || w.retrying != nil {
		return nil, nil
	}
	if !w.exists {
		w.stopOwnerWatch()
		term, err := l.create(ctx)
		return w.outcome(ctx, term, "create", err)
	}
	owner := podOwner(w.cur)
	switch {
	case owner == nil:
		w.stopOwnerWatch()
		l.o.log.Info("the lock object has no owner pod; waiting for its deletion", zap.String("holder", l.store.holder(w.cur)))
		return nil, nil
	case owner.UID == l.pod.UID:
		w.stopOwnerWatch()
		// Resume only what a fresh read confirms: the same object, still there.
		cur, err := bounded(ctx, w.l.o.requestTimeout, func(ctx context.Context) (T, error) {
			return l.store.get(ctx, l.name, metav1.GetOptions{})
		})
		switch {
		case apierrors.IsNotFound(err):
			return nil, nil // deleted meanwhile: the watch brings the deletion
		case err != nil:
			return w.outcome(ctx, nil, "get", err)
		case cur.GetUID() != w.cur.GetUID():
			return nil, nil // replaced meanwhile: the watch brings the new object
		}
		return l.resume(cur), nil
	case owner.Name != w.ownerName || owner.UID != w.ownerUID:
		// Keyed by name and UID: a Pod replaced under the same name (a StatefulSet's app-0)
		// is another owner, judged from a watch of its own, never by the old Pod's history.
		w.watchOwner(wctx, *owner)
		return nil, nil
	case !w.ownerKnown:
		return nil, nil
	}
	reason, err := l.staleReason(ctx, owner, w.ownerPod, w.ownerExists)
	if err != nil || reason == "" {
		return w.outcome(ctx, nil, "get node", err)
	}
	// Deleting another holder's lock is the one step that cannot be undone: confirm the verdict
	// on a fresh read of the owner Pod rather than act on what the watch has delivered so far.
	pod, err := bounded(ctx, w.l.o.requestTimeout, func(ctx context.Context) (*corev1.Pod, error) {
		return l.pods.Get(ctx, owner.Name, metav1.GetOptions{})
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return w.outcome(ctx, nil, "get pod", err)
	}
	if reason, err = l.staleReason(ctx, owner, pod, err == nil); err != nil || reason == "" {
		return w.outcome(ctx, nil, "get node", err)
	}
	err = l.deleteStale(ctx, w.cur, reason)
	return w.outcome(ctx, nil, "delete", err)
}

// outcome sorts a request's result: a term, a failure to report, a transient failure to retry,
// or nothing (keep waiting for the watch).
func (w *lifeWaiter[T]) outcome(ctx context.Context, term *Term, op string, err error) (*Term, error) {
	switch {
	case err == nil:
		w.retry.reset()
		return term, nil
	case apierrors.IsAlreadyExists(err) || apierrors.IsConflict(err):
		return nil, nil
	case permanent(err) || (op == "create" && apierrors.IsNotFound(err)):
		return nil, w.l.apiError(op, err)
	case ctx.Err() != nil:
		return nil, nil
	default:
		w.l.o.log.Info("request failed, retrying", zap.String("op", op), zap.Error(err))
		w.retrying = w.l.o.clock.NewTimer(w.retry.step())
		return nil, nil
	}
}

func (w *lifeWaiter[T]) watchOwner(ctx context.Context, owner metav1.OwnerReference) {
	w.stopOwnerWatch()
	octx, cancel := context.WithCancel(ctx)
	events := make(chan observation[*corev1.Pod])
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.l.podWatcher(owner.Name).run(octx, events)
	}()
	w.ownerName, w.ownerUID, w.ownerEvents, w.stopOwner, w.ownerDone = owner.Name, owner.UID, events, cancel, done
	w.ownerKnown, w.ownerExists, w.ownerPod = false, false, nil
}

func (w *lifeWaiter[T]) stopOwnerWatch() {
	if w.stopOwner == nil {
		return
	}
	w.stopOwner()
	<-w.ownerDone
	w.ownerName, w.ownerUID, w.ownerEvents, w.stopOwner, w.ownerDone = "", "", nil, nil, nil
	w.ownerKnown = false
}

func (w *lifeWaiter[T]) retryC() <-chan time.Time {
	if w.retrying == nil {
		return nil
	}
	return w.retrying.C()
}

func (w *lifeWaiter[T]) stopRetry() {
	if w.retrying != nil {
		w.retrying.Stop()
	}
}
