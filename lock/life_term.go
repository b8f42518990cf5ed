package lock

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// lifeTerm keeps a held leader-for-life lock: it watches the lock object and ends the term as
// lost when the object is deleted or replaced by someone else. There is no timing: the term lasts
// until then, or until Release.
type lifeTerm[T object] struct {
	l    *lifeLock[T]
	term *Term
	obj  T
	wg   sync.WaitGroup

	// The process's turn on this lock (see lifeLock.turn), given back when the next term of the
	// Pod may begin: once Release has deleted the object, or once someone else deleted it. Not
	// when the term's context ends, which comes before Release deletes the object: a next term
	// would resume the object about to be deleted.
	turnMu    sync.Mutex
	turn      chan struct{}
	turnFreed bool
}

func (lt *lifeTerm[T]) holdTurn(turn chan struct{}) {
	lt.turnMu.Lock()
	defer lt.turnMu.Unlock()
	if lt.turnFreed {
		<-turn
		return
	}
	lt.turn = turn
}

func (lt *lifeTerm[T]) freeTurn() {
	lt.turnMu.Lock()
	defer lt.turnMu.Unlock()
	if lt.turnFreed {
		return
	}
	lt.turnFreed = true
	if lt.turn != nil {
		<-lt.turn
	}
}

func (l *lifeLock[T]) startTerm(obj T) *Term {
	t := newTerm(l.String(), l.o.identity, lifeToken(obj))
	lt := &lifeTerm[T]{l: l, term: t, obj: obj}
	t.backend = lt
	lt.wg.Add(1)
	go lt.run()
	return t
}

func (lt *lifeTerm[T]) run() {
	defer lt.wg.Done()
	err := observe(lt.term.Context(), lt.l.watcher(), func(o observation[T]) {
		if !o.exists || o.obj.GetUID() != lt.obj.GetUID() {
			if lt.term.loseTerm("the lock object was deleted by someone else", nil) {
				lt.l.o.log.Warn("lost: the lock object was deleted", zap.String("uid", string(lt.obj.GetUID())))
			}
			lt.freeTurn()
		}
	}, lt.l.String())
	if err != nil && lt.term.loseTerm("the lock object can no longer be watched", err) {
		lt.l.o.log.Warn("lost: cannot watch the lock object", zap.Error(err))
	}
}

func (lt *lifeTerm[T]) stop() { lt.wg.Wait() }

// exclusiveUntil is the zero time: once the object is gone, another process may create it at any
// moment, so no time can be given.
func (lt *lifeTerm[T]) exclusiveUntil() time.Time { return time.Time{} }

// deadline: a leader-for-life term is never renewed, so it has none.
func (lt *lifeTerm[T]) deadline() (time.Time, bool) { return time.Time{}, false }

func (lt *lifeTerm[T]) checkDeadline() {}

// release deletes the lock object on condition of its uid, so that it never deletes a newer
// holder's object; with WithKeepOnRelease it leaves the object for garbage collection.
func (lt *lifeTerm[T]) release(ctx context.Context) error {
	defer lt.freeTurn()
	if lt.l.o.keepOnRelease {
		return nil
	}
	uid := lt.obj.GetUID()
	ctx, cancel := context.WithTimeout(ctx, lt.l.o.requestTimeout)
	defer cancel()
	err := lt.l.store.delete(ctx, lt.l.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	switch {
	case err == nil:
		lt.l.o.log.Info("released", zap.String("uid", string(uid)))
		return nil
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil
	default:
		return &APIError{Lock: lt.l.String(), Op: "delete", Err: err}
	}
}
