package lock

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// contention spaces out the compare-and-swaps of waiters that race for the same free or expired
// Lease. Without it, every waiter sends its write on the same watch event; with many waiters the
// API server processes them all at once, and the one that wins is answered no sooner than the
// rest. A Lease value keeps a level: it rises by one for each race this value lost (a conflict),
// and falls by two for each race it won. Before writing to a free or expired Lease, a value at
// level k>=2 waits a random delay below 2^(k-2) ms, but never longer than one RetryPeriod, and
// drops the write if someone else's record arrives meanwhile; a single lost race does not delay
// the next attempt. Because a win lowers the level twice as much as a loss raises it, the levels
// of n waiters settle where about three of them write per handover: the window widens until n
// waiters' draws are spread thinly enough that only the first few write before the winner's
// record reaches the rest. Two or three candidates stay below level 2 and write at once.
//
// A waiter whose delay ran reads the Lease before it writes (movedOn): among many waiters, the
// watch brings the winner's record to the last of them tens of milliseconds after it landed (the
// API server sends it to each watcher in turn), and a read sees it at once. A waiter that finds
// the Lease moved on drops its write, which could only conflict, counts the race as lost, and
// waits for the watch to bring the change; it takes nothing else from the read, so the watch
// stays the only source of what the candidate observes, in order. Candidates below level 2 never
// read: two or three candidates hand over with no extra request.
//
// The window stops at RetryPeriod, the period at which client-go's electors poll: a crowd so
// large that even that window sees more writers has them, and a value whose level is high when
// the crowd has shrunk waits at most what a poller would. (An earlier cap of 128 ms was too
// narrow for 1,000 waiters: they all kept writing, about 900 per handover, and the API server's
// work on those writes delayed the handover itself.)
//
// The delay only postpones an attempt to acquire; it changes nothing in how a term is held,
// renewed or lost, and so nothing in the safety argument.
type contention struct {
	mu    sync.Mutex
	level int
}

// contentionCap is the first level whose window reaches widest (levels above would not widen
// it further).
func contentionCap(widest time.Duration) int {
	k := 2
	for time.Millisecond<<(k-2) < widest {
		k++
	}
	return k
}

// lost records a race lost to another waiter's write; widest is the widest window, the Lease's
// RetryPeriod.
func (c *contention) lost(widest time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.level = min(c.level+1, contentionCap(widest))
}

// won records a race won.
func (c *contention) won() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.level = max(c.level-2, 0)
}

// delay draws the wait before the next write to a free or expired Lease, below widest.
func (c *contention) delay(widest time.Duration) time.Duration {
	c.mu.Lock()
	level := c.level
	c.mu.Unlock()
	if level < 2 {
		return 0
	}
	window := min(time.Millisecond<<(level-2), widest)
	if window <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(window)))
}

// movedOn reads the Lease and reports whether it has changed since observed was observed (nil:
// absent). A failed read reports false: the write that follows is a compare-and-swap either way.
func (l *Lease) movedOn(ctx context.Context, observed *coordinationv1.Lease) bool {
	cur, err := l.get(ctx)
	switch {
	case apierrors.IsNotFound(err):
		return observed != nil
	case err != nil:
		return false
	default:
		return observed == nil || cur.UID != observed.UID || cur.ResourceVersion != observed.ResourceVersion
	}
}
