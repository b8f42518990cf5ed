package lock

import (
	"context"
	"slices"
	"sync"
	"time"
)

// ShardChange is a change to the shards this process holds.
type ShardChange struct {
	// Shard is the shard that was taken or given up.
	Shard int
	// Held is true when the shard was taken and its work started, false when its work has
	// returned and the shard has been released.
	Held bool
	// Token is the shard's term's token.
	Token Token
	// Cause, when Held is false, says why the work stopped: ErrMoved, ErrLeaving, the term's
	// *LostError, or the error the work failed with.
	Cause error
	// Time is when the change happened, on the lock's clock.
	Time time.Time
}

// Changes returns a channel that receives every change to the shards this process holds, in
// order: first one change with Held set for each shard held at the time of the call, then each
// change as it happens. No change is dropped for a slow reader; they queue. The channel is
// closed when ctx ends. The Held snapshot is the sum of the changes so far.
func (s *Sharding) Changes(ctx context.Context) <-chan ShardChange {
	out := make(chan ShardChange)
	if ctx == nil {
		close(out)
		return out
	}
	sub := &shardSubscription{wake: make(chan struct{}, 1)}
	s.mu.Lock()
	now := s.o.clock.Now()
	held := make([]int, 0, len(s.held))
	for i := range s.held {
		held = append(held, i)
	}
	slices.Sort(held)
	for _, i := range held {
		sub.queue = append(sub.queue, ShardChange{Shard: i, Held: true, Token: s.held[i], Time: now})
	}
	sub.wake <- struct{}{} // the channel is new: this does not block
	s.subs = append(s.subs, sub)
	s.mu.Unlock()
	go func() {
		defer close(out)
		defer s.unsubscribe(sub)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sub.wake:
			}
			for _, c := range sub.take() {
				select {
				case out <- c:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

type shardSubscription struct {
	mu    sync.Mutex
	queue []ShardChange
	wake  chan struct{} // holds a token while the queue may be non-empty
}

func (sub *shardSubscription) push(c ShardChange) {
	sub.mu.Lock()
	sub.queue = append(sub.queue, c)
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *shardSubscription) take() []ShardChange {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	q := sub.queue
	sub.queue = nil
	return q
}

func (s *Sharding) unsubscribe(sub *shardSubscription) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = slices.DeleteFunc(s.subs, func(x *shardSubscription) bool { return x == sub })
}

// noteHeld records that shard i's work has started, under the term with token t.
func (s *Sharding) noteHeld(i int, t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[i] = t
	s.publish(ShardChange{Shard: i, Held: true, Token: t, Time: s.o.clock.Now()})
}

// noteGone records that shard i's work has returned and the shard has been released.
func (s *Sharding) noteGone(i int, cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.held[i]
	delete(s.held, i)
	s.publish(ShardChange{Shard: i, Token: t, Cause: cause, Time: s.o.clock.Now()})
}

// publish queues c for every subscriber; s.mu is held.
func (s *Sharding) publish(c ShardChange) {
	for _, sub := range s.subs {
		sub.push(c)
	}
}
