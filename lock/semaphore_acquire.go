package lock

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
)

// Acquire waits until this process holds one of the semaphore's slots, or ctx ends; see Lock.
//
// It reads the size record (creating it if absent; transient failures are retried), then follows all the semaphore's objects
// with one watch. Each slot is waited for as a Lease lock's Acquire waits for its Lease, with the
// same rules for expiry, deletions and foreign writes; the first slot this process can take, it
// takes. When every slot is held it makes no request until a watch event or an expiry.
func (s *Semaphore) Acquire(ctx context.Context) (*Term, error) {
	if ctx == nil {
		return nil, errNil("ctx")
	}
	size, err := s.awaitSize(ctx)
	if err != nil {
		return nil, err
	}
	wctx, stopWatch := context.WithCancel(ctx)
	events := make(chan observation[*coordinationv1.Lease])
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.watcher().run(wctx, events)
	}()
	defer func() {
		stopWatch()
		<-done
	}()

	w := &semaphoreWaiter{s: s, size: size, slots: map[int]*leaseCandidate{}}
	defer w.stopTimers()
	for {
		cases, fired := w.selectCases(ctx, events)
		chosen, recv, _ := reflect.Select(cases)
		switch chosen {
		case 0:
			return nil, &HeldError{Lock: s.String(), Holder: w.holders(), Err: ctx.Err()}
		case 1:
			o := recv.Interface().(observation[*coordinationv1.Lease])
			if o.err != nil {
				return nil, withLock(o.err, s.String())
			}
			w.observe(o)
		default:
			fired[chosen-2]()
		}
		if term, err := w.act(ctx); term != nil || err != nil {
			return term, err
		}
	}
}

// semaphoreWaiter is what a waiting candidate knows of every slot: one Lease candidate per slot.
type semaphoreWaiter struct {
	s      *Semaphore
	size   int  // as last observed in the size record
	listed bool // the semaphore's objects have been listed: a slot without a candidate is absent
	slots  map[int]*leaseCandidate
}

// candidate is slot i's candidate, created on first use. One created after the list has been
// read stands for a slot that is absent, since every slot read so far has a candidate.
func (w *semaphoreWaiter) candidate(i int) *leaseCandidate {
	c, ok := w.slots[i]
	if !ok {
		c = newLeaseCandidate(w.s.slot(i))
		w.slots[i] = c
	}
	return c
}

// observe routes an observation of the semaphore's objects to the size or to a slot's candidate.
func (w *semaphoreWaiter) observe(o observation[*coordinationv1.Lease]) {
	if !o.listed {
		w.observeObject(o)
		return
	}
	w.listed = true
	byName := map[string]*coordinationv1.Lease{}
	for _, obj := range o.set {
		byName[obj.Name] = obj
		if i := w.s.slotIndex(obj.Name); i >= 0 {
			w.candidate(i) // a slot that exists has a candidate before the absent ones are told
		}
	}
	if rec, ok := byName[w.s.name]; ok {
		w.size = w.s.sizeFrom(rec)
	}
	for i, c := range w.slots {
		obj, ok := byName[w.s.SlotName(i)]
		c.observe(observation[*coordinationv1.Lease]{obj: obj, exists: ok, listed: true})
	}
}

func (w *semaphoreWaiter) observeObject(o observation[*coordinationv1.Lease]) {
	if o.obj.Name == w.s.name {
		if o.exists {
			w.size = w.s.sizeFrom(o.obj)
		}
		return // a deleted size record leaves the size as it was
	}
	if i := w.s.slotIndex(o.obj.Name); i >= 0 {
		w.candidate(i).observe(o)
	}
}

// act gives every slot below the size, starting at this candidate's offset, a chance to be
// taken, and returns the first term that begins.
func (w *semaphoreWaiter) act(ctx context.Context) (*Term, error) {
	if !w.listed {
		return nil, nil
	}
	for i, c := range w.slots {
		if i >= w.size {
			c.stopTimers() // a removed slot is never taken
		}
	}
	start := w.s.offset(w.size)
	for k := range w.size {
		i := (start + k) % w.size
		c := w.candidate(i)
		if !c.known {
			c.observe(observation[*coordinationv1.Lease]{listed: true})
		}
		term, err := c.act(ctx)
		if err != nil {
			return nil, err
		}
		if term == nil {
			continue
		}
		if term, err = w.s.confirm(ctx, term, i); term != nil || err != nil {
			return term, err
		}
	}
	return nil, nil
}

// selectCases are the cases Acquire waits on: ctx, the watch, and every slot candidate's timers;
// fired[k] clears the timer of case k+2 once it has fired.
func (w *semaphoreWaiter) selectCases(ctx context.Context, events <-chan observation[*coordinationv1.Lease]) ([]reflect.SelectCase, []func()) {
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ctx.Done())},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(events)},
	}
	var fired []func()
	add := func(ch <-chan time.Time, clear func()) {
		if ch != nil {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
			fired = append(fired, clear)
		}
	}
	addWake := func(ch <-chan struct{}, clear func()) {
		if ch != nil {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
			fired = append(fired, clear)
		}
	}
	for _, c := range w.slots {
		c.timers(add)
		c.wakes(addWake)
	}
	return cases, fired
}

func (w *semaphoreWaiter) stopTimers() {
	for _, c := range w.slots {
		c.stopTimers()
	}
}

// holders names the holders of the slots below the size, for a *HeldError.
func (w *semaphoreWaiter) holders() string {
	var names []string
	for i, c := range w.slots {
		if i < w.size && c.lease != nil && c.record.holder != "" {
			names = append(names, c.record.holder)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// TryAcquire lists the semaphore's objects once, the size record with the slots (and creates the
// size record if it is absent), then makes one attempt on each slot below the size, as a Lease's TryAcquire does, until one succeeds. It
// returns the term, or a *HeldError naming the holders.
func (s *Semaphore) TryAcquire(ctx context.Context) (*Term, error) {
	if ctx == nil {
		return nil, errNil("ctx")
	}
	list, err := bounded(ctx, s.o.timings.RenewDeadline, func(ctx context.Context) (*coordinationv1.LeaseList, error) {
		return s.leases.List(ctx, s.watcher().listOptions())
	})
	if err != nil {
		return nil, &APIError{Lock: s.String(), Op: "list", Err: err}
	}
	byName := map[string]*coordinationv1.Lease{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	var size int
	if rec, ok := byName[s.name]; ok {
		size = s.sizeFrom(rec)
	} else if size, err = s.ensureSize(ctx); err != nil {
		return nil, err
	}
	var holders []string
	start := s.offset(size)
	for k := range size {
		i := (start + k) % size
		term, err := s.slot(i).tryAcquireFrom(ctx, byName[s.SlotName(i)])
		var held *HeldError
		switch {
		case errors.As(err, &held):
			holders = append(holders, held.Holder)
			continue
		case err != nil:
			return nil, err
		}
		if term, err = s.confirm(ctx, term, i); term != nil || err != nil {
			return term, err
		}
	}
	slices.Sort(holders)
	return nil, &HeldError{Lock: s.String(), Holder: strings.Join(holders, ",")}
}
