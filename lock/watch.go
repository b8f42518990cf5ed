package lock

import (
	"context"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/clock"
)

// watchTimeout is how long one watch request lasts before it is renewed from the last seen
// resourceVersion. The API server honours a client's timeout; an hour keeps idle candidates'
// request rate near zero (client-go's reflectors renew every 5 to 10 minutes).
const watchTimeout = time.Hour

// object is a Kubernetes object type as a pointer, e.g. *coordinationv1.Lease.
type object interface {
	comparable
	metav1.Object
}

// observation is the state of one object: present with its content, or absent. A non-nil err is
// a failure that retrying does not mend; the watcher stops after sending it.
type observation[T object] struct {
	obj    T
	exists bool
	err    error
}

// objectWatcher follows one named object: a GET for the initial state, then a watch with a field
// selector on the name, renewed from the last seen resourceVersion. When the watch's history is
// gone (410) or the watch fails, it reads the object again, so the observations it sends always
// end at the object's current state. Transient failures are retried with backoff.
type objectWatcher[T object] struct {
	name  string
	get   func(ctx context.Context, name string, opts metav1.GetOptions) (T, error)
	watch func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	clock clock.Clock
	log   *zap.Logger
	// maxRetry is the longest wait between failed attempts to watch or read; 5 s when zero.
	maxRetry time.Duration
}

// run sends observations to out until ctx ends or a permanent failure is sent.
func (w *objectWatcher[T]) run(ctx context.Context, out chan<- observation[T]) {
	send := func(o observation[T]) bool {
		select {
		case out <- o:
			return true
		case <-ctx.Done():
			return false
		}
	}
	maxRetry := w.maxRetry
	if maxRetry <= 0 {
		maxRetry = 5 * time.Second
	}
	retry := newBackoff(w.clock, 100*time.Millisecond, maxRetry)
	// needGet: the current state must be read before events are trusted again. The watch is
	// opened first (from the most recent version) and the object read second: every change after
	// the watch opened arrives as an event, and the read reflects every change before it, so no
	// change between the two is missed. Reading first would miss, say, a deletion in between.
	// Sending the read only once the watch is accepted also tells a caller who may read but not
	// watch about it before the caller acts on any observation.
	needGet, rv := true, ""
	for ctx.Err() == nil {
		if needGet {
			rv = ""
		}
		timeout := int64(watchTimeout / time.Second)
		wi, err := w.watch(ctx, metav1.ListOptions{
			FieldSelector:       fields.OneTermEqualSelector("metadata.name", w.name).String(),
			ResourceVersion:     rv,
			AllowWatchBookmarks: true,
			TimeoutSeconds:      &timeout,
		})
		if err != nil {
			if permanent(err) {
				send(observation[T]{err: &APIError{Op: "watch", Err: err}})
				return
			}
			w.log.Info("watch failed, retrying", zap.String("object", w.name), zap.Error(err))
			needGet = true
			if !retry.wait(ctx) {
				return
			}
			continue
		}
		if needGet {
			initial, err := w.read(ctx)
			if err != nil {
				wi.Stop()
				if permanent(err) {
					send(observation[T]{err: &APIError{Op: "get", Err: err}})
					return
				}
				w.log.Info("get failed, retrying", zap.String("object", w.name), zap.Error(err))
				if !retry.wait(ctx) {
					return
				}
				continue
			}
			if !send(initial) {
				wi.Stop()
				return
			}
			needGet = false
		}
		var events int
		rv, needGet, events = w.consume(ctx, wi, send, rv)
		if events > 0 {
			retry.reset()
		} else if ctx.Err() == nil && !retry.wait(ctx) {
			// A watch that ends without a single event is backed off, so that a server that
			// closes watches at once is not hammered.
			return
		}
	}
}

// read gets the object's current state.
func (w *objectWatcher[T]) read(ctx context.Context) (observation[T], error) {
	obj, err := w.get(ctx, w.name, metav1.GetOptions{})
	switch {
	case err == nil:
		return observation[T]{obj: obj, exists: true}, nil
	case apierrors.IsNotFound(err):
		return observation[T]{}, nil
	default:
		return observation[T]{}, err
	}
}

// consume reads one watch until it ends. It returns the resourceVersion to resume from, whether
// the object must be read again first, and how many events (other than errors) arrived.
func (w *objectWatcher[T]) consume(ctx context.Context, wi watch.Interface, send func(observation[T]) bool, rv string) (string, bool, int) {
	defer wi.Stop()
	events := 0
	for {
		var ev watch.Event
		var ok bool
		select {
		case <-ctx.Done():
			return rv, false, events
		case ev, ok = <-wi.ResultChan():
		}
		if !ok {
			return rv, false, events
		}
		switch ev.Type {
		case watch.Added, watch.Modified, watch.Deleted:
			events++
			obj, isT := ev.Object.(T)
			if !isT || obj.GetName() != w.name {
				continue // the field selector already filters; this guards clients that do not
			}
			rv = obj.GetResourceVersion()
			if !send(observation[T]{obj: obj, exists: ev.Type != watch.Deleted}) {
				return rv, false, events
			}
		case watch.Bookmark:
			events++
			if m, err := meta.Accessor(ev.Object); err == nil {
				rv = m.GetResourceVersion()
			}
		case watch.Error:
			err := apierrors.FromObject(ev.Object)
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				w.log.Debug("watch history expired, reading again", zap.String("object", w.name))
			} else {
				w.log.Info("watch error, reading again", zap.String("object", w.name), zap.Error(err))
			}
			return "", true, events
		}
	}
}
