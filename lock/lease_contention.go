package lock

import (
	"math/rand/v2"
	"sync"
	"time"
)

// contention spaces out the compare-and-swaps of waiters that race for the same free or expired
// Lease. Without it, every waiter sends its write on the same watch event; with many waiters the
// API server processes them all at once, and the one that wins is answered no sooner than the
// rest. A Lease value keeps a level: it rises by one for each race this value lost (a conflict),
// and falls by two for each race it won. Before writing to a free or expired Lease, a value at
// level k>=2 waits a random delay below 2^(k-2) ms, and drops the write if someone else's record
// arrives meanwhile; a single lost race does not delay the next attempt. Because a win lowers
// the level twice as much as a loss raises it, the levels of n waiters settle where about three
// of them write per handover, whatever n is; two or three candidates stay below level 2 and
// write at once.
//
// The delay only postpones an attempt to acquire; it changes nothing in how a term is held,
// renewed or lost, and so nothing in the safety argument.
type contention struct {
	mu    sync.Mutex
	level int
}

// maxContentionLevel caps the delay below 2^7 ms = 128 ms.
const maxContentionLevel = 9

// lost records a race lost to another waiter's write.
func (c *contention) lost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.level = min(c.level+1, maxContentionLevel)
}

// won records a race won.
func (c *contention) won() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.level = max(c.level-2, 0)
}

// delay draws the wait before the next write to a free or expired Lease.
func (c *contention) delay() time.Duration {
	c.mu.Lock()
	level := c.level
	c.mu.Unlock()
	if level < 2 {
		return 0
	}
	window := time.Millisecond << (level - 2)
	return time.Duration(rand.Int64N(int64(window)))
}
