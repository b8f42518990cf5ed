package leader

import (
	"context"
	"sync"

	"github.com/regent-k8s/regent/lock"
)

// Observer keeps track of a lock's current leader while Run runs.
type Observer struct {
	lock  lock.Lock
	mu    sync.Mutex
	cur   Change
	known bool
}

// NewObserver returns an observer of l.
func NewObserver(l lock.Lock) *Observer { return &Observer{lock: l} }

// Run follows the lock until ctx ends, updating Leader and then calling fn (if not nil) for each
// change, in order and from one goroutine. It returns nil when ctx ends, or the lock's error.
func (o *Observer) Run(ctx context.Context, fn func(Change)) error {
	switch {
	case o == nil || o.lock == nil:
		return &lock.ConfigError{Field: "lock", Value: nil, Reason: "must not be nil (use NewObserver with a lock)"}
	case ctx == nil:
		return &lock.ConfigError{Field: "ctx", Value: nil, Reason: "must not be nil"}
	}
	return o.lock.Observe(ctx, func(ob lock.Observation) {
		c := Change{Leader: ob.Holder, Token: ob.Token, Time: ob.Time}
		o.mu.Lock()
		o.cur, o.known = c, true
		o.mu.Unlock()
		if fn != nil {
			fn(c)
		}
	})
}

// Leader is the last observed change; ok is false until Run has observed the lock once.
func (o *Observer) Leader() (c Change, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cur, o.known
}
