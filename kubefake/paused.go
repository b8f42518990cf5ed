package kubefake

import (
	"sync/atomic"
	"time"
)

// PausedClock is a Clock as a process resumed after a pause sees it: Now has moved on by the
// pause, but no timer has fired yet (they fire at the Clock's next Step). Tests of what a
// resumed process does before its timers run (lock.Term.Check) use it.
type PausedClock struct {
	*Clock
	pause atomic.Int64
}

// NewPausedClock returns c with no pause yet.
func NewPausedClock(c *Clock) *PausedClock { return &PausedClock{Clock: c} }

// SetPause makes Now run d ahead of c's timers.
func (c *PausedClock) SetPause(d time.Duration) { c.pause.Store(int64(d)) }

// Now is the Clock's time plus the pause.
func (c *PausedClock) Now() time.Time { return c.Clock.Now().Add(time.Duration(c.pause.Load())) }

// Since is Now minus t.
func (c *PausedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }
