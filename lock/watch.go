package lock

import (
	"cmp"
	"context"
	"strconv"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
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
	// listed is set on what a list read: changes since the previous observation may have been
	// missed. Unset on a watch event, which follows the previous observation directly.
	listed bool
	// set is what a list of a watcher that follows a set of objects (by labels) read: every
	// object of the set; obj and exists are then unset.
	set []T
	err error
}

// lister lists the objects of one kind in a namespace that match opts, and returns them with the
// list's resourceVersion.
type lister[T object] func(ctx context.Context, opts metav1.ListOptions) ([]T, string, error)

// objectWatcher follows one named object as a single ordered stream of observations. It opens a
// watch with a field selector on the name, then LISTs the object by the same selector, sends
// what the list found (the object, or its absence) and from then on only the watch's events that
// are newer than the list. A watch opened without a resourceVersion starts with the object as it
// was when the watch began, and its first events may predate the list; sending them after the
// list would take the object back in time (a deleted object would reappear, an older holder
// would follow a newer one), so they are dropped. The list is used rather than a GET because
// only a list has a resourceVersion when the object is absent. The watch is renewed from the
// last resourceVersion seen; when its history is gone (410) or the watch fails, the object is
// listed again. Transient failures are retried with backoff.
//
// Ordering uses resourceVersions as the API server issues them from etcd: increasing integers.
// An event whose version cannot be read as an integer is never dropped. The versions of one
// resource are ordered across objects, so the same holds for a watcher that follows a set.
type objectWatcher[T object] struct {
	name string
	// labels, when set, makes the watcher follow every object with these labels instead of the
	// one named name (which then only names the set in logs). A list sends one observation with
	// the whole set; events are sent for each object, in the order the API server issued them.
	labels labels.Selector
	list   lister[T]
	watch  func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error)
	clock  clock.Clock
	log    *zap.Logger
	// maxRetry is the longest wait between failed attempts to watch or read; 5 s when zero.
	maxRetry time.Duration
	// timeout bounds each list request; requestTimeout when zero.
	timeout time.Duration
}

// run sends observations to out until ctx ends or a permanent failure is sent.
func (w *objectWatcher[T]) run(ctx context.Context, out chan<- observation[T]) {
	send := func(o observation[T]) bool {
		if ce := w.log.Check(zap.DebugLevel, "observed"); ce != nil {
			fields := []zap.Field{zap.String("object", w.name), zap.Bool("exists", o.exists)}
			if o.exists {
				fields = append(fields, zap.String("resourceVersion", o.obj.GetResourceVersion()), zap.String("uid", string(o.obj.GetUID())))
			}
			ce.Write(fields...)
		}
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
	// needRead: the current state must be listed before events are trusted again. The watch is
	// opened first and the object listed second: every change after the watch opened arrives as
	// an event, and the list reflects every change before it, so no change between the two is
	// missed; events the list already reflects are dropped by version. Sending the list only once
	// the watch is accepted also tells a caller who may list but not watch about it before the
	// caller acts on any observation.
	needRead, rv := true, ""
	for ctx.Err() == nil {
		watchFrom := rv
		if needRead {
			watchFrom = ""
		}
		timeout := int64(watchTimeout / time.Second)
		opts := w.listOptions()
		opts.ResourceVersion, opts.AllowWatchBookmarks, opts.TimeoutSeconds = watchFrom, true, &timeout
		wi, err := w.watch(ctx, opts)
		if err != nil {
			if permanent(err) {
				send(observation[T]{err: &APIError{Op: "watch", Err: err}})
				return
			}
			w.log.Info("watch failed, retrying", zap.String("object", w.name), zap.Error(err))
			needRead = true
			if !retry.wait(ctx) {
				return
			}
			continue
		}
		if needRead {
			initial, listed, err := w.read(ctx)
			if err != nil {
				wi.Stop()
				if permanent(err) {
					send(observation[T]{err: &APIError{Op: "list", Err: err}})
					return
				}
				w.log.Info("list failed, retrying", zap.String("object", w.name), zap.Error(err))
				if !retry.wait(ctx) {
					return
				}
				continue
			}
			if !send(initial) {
				wi.Stop()
				return
			}
			rv, needRead = listed, false
		}
		var events int
		rv, needRead, events = w.consume(ctx, wi, send, rv)
		if events > 0 {
			retry.reset()
		} else if ctx.Err() == nil && !retry.wait(ctx) {
			// A watch that ends without a single event is backed off, so that a server that
			// closes watches at once is not hammered.
			return
		}
	}
}

func (w *objectWatcher[T]) listOptions() metav1.ListOptions {
	if w.labels != nil {
		return metav1.ListOptions{LabelSelector: w.labels.String()}
	}
	return metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", w.name).String()}
}

// follows reports whether obj is one this watcher follows. The API server already filters by
// the selector; this guards clients that do not.
func (w *objectWatcher[T]) follows(obj T) bool {
	if w.labels != nil {
		return w.labels.Matches(labels.Set(obj.GetLabels()))
	}
	return obj.GetName() == w.name
}

// read lists the object's current state, and returns it with the list's resourceVersion.
func (w *objectWatcher[T]) read(ctx context.Context) (observation[T], string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(w.timeout, requestTimeout))
	defer cancel()
	items, rv, err := w.list(ctx, w.listOptions())
	if err != nil {
		return observation[T]{}, "", err
	}
	if w.labels != nil {
		set := make([]T, 0, len(items))
		for _, obj := range items {
			if w.follows(obj) {
				set = append(set, obj)
			}
		}
		return observation[T]{set: set, listed: true}, rv, nil
	}
	for _, obj := range items {
		if w.follows(obj) {
			return observation[T]{obj: obj, exists: true, listed: true}, rv, nil
		}
	}
	return observation[T]{listed: true}, rv, nil
}

// consume reads one watch until it ends. It returns the resourceVersion to resume from, whether
// the object must be read again first, and how many events (other than errors) arrived. Events
// not newer than rv are already reflected in what was sent, and are dropped.
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
			if !isT || !w.follows(obj) {
				continue
			}
			if !newerVersion(obj.GetResourceVersion(), rv) {
				continue // a replay of what the list already showed
			}
			rv = obj.GetResourceVersion()
			if !send(observation[T]{obj: obj, exists: ev.Type != watch.Deleted}) {
				return rv, false, events
			}
		case watch.Bookmark:
			events++
			if m, err := meta.Accessor(ev.Object); err == nil && newerVersion(m.GetResourceVersion(), rv) {
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

// newerVersion reports whether resourceVersion v comes after base. Versions that are not both
// integers cannot be ordered, and v then counts as newer: dropping a real change would be worse
// than passing on a repeated one.
func newerVersion(v, base string) bool {
	a, errA := strconv.ParseUint(v, 10, 64)
	b, errB := strconv.ParseUint(base, 10, 64)
	if errA != nil || errB != nil {
		return true
	}
	return a > b
}
