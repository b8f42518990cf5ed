package kubefake

import (
	"sync"
	"testing"
	"time"
)

// awaitLimit bounds how long Await waits before it fails the test; it is a failure guard, not a
// way of letting time pass.
const awaitLimit = 20 * time.Second

// Signal wakes waiters whenever the fake world changes: a write to the tracker, a timer created,
// reset, stopped or fired on the fake clock, or an explicit Notify.
type Signal struct {
	mu   sync.Mutex
	gen  uint64
	wake chan struct{}
}

// NewSignal returns a Signal.
func NewSignal() *Signal { return &Signal{wake: make(chan struct{})} }

// Notify wakes every Await.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	close(s.wake)
	s.wake = make(chan struct{})
}

func (s *Signal) current() (uint64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen, s.wake
}

// Await waits until cond, evaluated now and after every change, returns true. It fails the test
// if that does not happen within a generous bound.
func (s *Signal) Await(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	limit := time.NewTimer(awaitLimit)
	defer limit.Stop()
	for {
		gen, wake := s.current()
		if cond() {
			return
		}
		if g, _ := s.current(); g != gen {
			continue // changed while cond ran
		}
		select {
		case <-wake:
		case <-limit.C:
			tb.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Receive returns the next value from ch, failing the test if none arrives within the bound.
func Receive[T any](tb testing.TB, ch <-chan T, what string) T {
	tb.Helper()
	limit := time.NewTimer(awaitLimit)
	defer limit.Stop()
	select {
	case v := <-ch:
		return v
	case <-limit.C:
		tb.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
