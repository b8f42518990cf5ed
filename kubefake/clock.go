package kubefake

import (
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
)

// Clock is a fake clock whose timer changes notify a Signal, so that tests can wait for code to
// arm a timer before they step the clock past it.
type Clock struct {
	*clocktesting.FakeClock
	signal *Signal
	timers atomic.Int64
}

// TimersCreated counts the timers made with NewTimer so far.
func (c *Clock) TimersCreated() int64 { return c.timers.Load() }

var _ clock.WithTicker = (*Clock)(nil)

// NewClock returns a fake clock set to t.
func NewClock(signal *Signal, t time.Time) *Clock {
	return &Clock{FakeClock: clocktesting.NewFakeClock(t), signal: signal}
}

// NewTimer returns a fake timer that notifies on Reset and Stop, and that fires at once when set
// to a duration of zero or less.
func (c *Clock) NewTimer(d time.Duration) clock.Timer {
	t := c.FakeClock.NewTimer(d)
	c.timers.Add(1)
	c.fireIfDue(d)
	c.signal.Notify()
	return &notifyingTimer{Timer: t, clock: c}
}

// fireIfDue fires a timer just set to d <= 0 at once, as time.Timer does; the fake clock's own
// would wait for the next Step.
func (c *Clock) fireIfDue(d time.Duration) {
	if d <= 0 {
		c.FakeClock.Step(0)
	}
}

// After is the fake time.After.
func (c *Clock) After(d time.Duration) <-chan time.Time {
	ch := c.FakeClock.After(d)
	c.signal.Notify()
	return ch
}

// NewTicker returns a fake ticker.
func (c *Clock) NewTicker(d time.Duration) clock.Ticker {
	t := c.FakeClock.NewTicker(d)
	c.signal.Notify()
	return t
}

// Step moves the clock on, firing due timers.
func (c *Clock) Step(d time.Duration) {
	c.FakeClock.Step(d)
	c.signal.Notify()
}

// SetTime sets the clock, firing due timers.
func (c *Clock) SetTime(t time.Time) {
	c.FakeClock.SetTime(t)
	c.signal.Notify()
}

type notifyingTimer struct {
	clock.Timer
	clock *Clock
}

// Stop and Reset discard a value the timer fired and nobody received, as a time.Timer's do since
// Go 1.23. The fake clock sends each firing while it holds its lock: a value left over in the
// channel would make a later firing of the reset timer block Step, and with it every goroutine
// that reads the clock.
func (t *notifyingTimer) Stop() bool {
	r := t.Timer.Stop()
	t.drain()
	t.clock.signal.Notify()
	return r
}

func (t *notifyingTimer) Reset(d time.Duration) bool {
	t.drain()
	r := t.Timer.Reset(d)
	t.clock.fireIfDue(d)
	t.clock.signal.Notify()
	return r
}

func (t *notifyingTimer) drain() {
	select {
	case <-t.C():
	default:
	}
}
