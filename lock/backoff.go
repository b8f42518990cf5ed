package lock

import (
	"context"
	"math/rand/v2"
	"time"

	"k8s.io/utils/clock"
)

// backoff spaces out retries after transient API failures: it doubles from initial up to max,
// with ±10% jitter so that candidates do not retry in step. No delay exceeds max.
type backoff struct {
	clock   clock.Clock
	initial time.Duration
	max     time.Duration
	next    time.Duration
}

func newBackoff(c clock.Clock, initial, max time.Duration) *backoff {
	return &backoff{clock: c, initial: initial, max: max}
}

func (b *backoff) reset() { b.next = 0 }

// step returns the next delay.
func (b *backoff) step() time.Duration {
	switch {
	case b.next == 0:
		b.next = b.initial
	case b.next < b.max:
		b.next = min(2*b.next, b.max)
	}
	jitter := time.Duration((rand.Float64()*0.2 - 0.1) * float64(b.next))
	return min(b.next+jitter, b.max)
}

// wait sleeps for the next delay on the backoff's clock; it reports false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	t := b.clock.NewTimer(b.step())
	defer t.Stop()
	select {
	case <-t.C():
		return true
	case <-ctx.Done():
		return false
	}
}
