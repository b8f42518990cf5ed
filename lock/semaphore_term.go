package lock

import (
	"context"
	"fmt"
	"sync"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
)

// slotTerm is a semaphore slot's term: the slot Lease's term, plus a watch of the size record
// that ends the term as lost when the slot is removed.
type slotTerm struct {
	termBackend // the slot Lease's
	wg          sync.WaitGroup
}

func (st *slotTerm) stop() {
	st.termBackend.stop()
	st.wg.Wait()
}

// confirm begins the term of slot i that this process has just taken, if the slot is still
// below the size: it starts the term's watch of the size record and waits for its first read,
// which is a fresh read made after the slot was taken. When the slot has been removed
// meanwhile, it releases the slot and returns neither term nor error (keep waiting); when ctx
// ends first, it releases the slot and the caller reports ctx's end.
func (s *Semaphore) confirm(ctx context.Context, term *Term, i int) (*Term, error) {
	st := &slotTerm{termBackend: term.backend}
	term.backend = st
	first := make(chan struct{})
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		s.guardSlot(term, i, first)
	}()
	select {
	case <-first:
	case <-term.Done():
	case <-ctx.Done():
	}
	if term.Err() == nil && ctx.Err() == nil {
		return term, nil
	}
	if err := term.Release(context.WithoutCancel(ctx)); err != nil {
		s.o.log.Info("could not release a slot taken while the size changed", zap.Int("slot", i), zap.Error(err))
	}
	if ctx.Err() != nil {
		return nil, &HeldError{Lock: s.String(), Err: ctx.Err()}
	}
	return nil, nil
}

// guardSlot follows the size record for the term of slot i until the term ends, and ends it as
// lost when the size drops to i or below. It closes first after the first read.
func (s *Semaphore) guardSlot(term *Term, i int, first chan struct{}) {
	read := false
	err := observe(term.Context(), s.sizeWatcher(), func(o observation[*coordinationv1.Lease]) {
		if o.exists {
			if size, ok := recordedSize(o.obj); ok && i >= size {
				reason := fmt.Sprintf("the semaphore was resized to %d, which removes slot %d", size, i)
				if term.loseTerm(reason, nil) {
					s.o.log.Warn("lost", zap.String("reason", reason), zap.Int("slot", i))
				}
			}
		}
		if !read {
			read = true
			close(first)
		}
	}, s.String())
	if err != nil && term.loseTerm("the semaphore's size cannot be followed", err) {
		s.o.log.Warn("lost", zap.String("reason", "the semaphore's size cannot be followed"), zap.Int("slot", i), zap.Error(err))
	}
}
