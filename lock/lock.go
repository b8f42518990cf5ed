package lock

import (
	"context"
	"fmt"
	"time"
)

// Lock is a named lock stored in the Kubernetes API. Every kind in this package implements it,
// so the leader package runs elections over any of them.
type Lock interface {
	// Acquire blocks until this process holds the lock, or ctx ends. When ctx ends first it returns
	// a *HeldError that names the last observed holder and wraps ctx.Err(). A Kubernetes failure
	// that retrying does not mend (Forbidden, an invalid object, a missing namespace) ends it with
	// an *APIError; transient failures are retried.
	Acquire(ctx context.Context) (*Term, error)
	// TryAcquire makes one attempt and returns at once: the term, or a *HeldError naming the holder.
	TryAcquire(ctx context.Context) (*Term, error)
	// Observe calls fn, from one goroutine and in order, each time the holder changes, starting
	// with the holder at the time of the call. It returns when ctx ends (nil) or on a Kubernetes
	// failure that retrying does not mend.
	Observe(ctx context.Context, fn func(Observation)) error
	// Identity is this process's name in the lock's records.
	Identity() string
	// String names the lock's kind and object, as in "lease default/my-lock".
	String() string
}

// Token identifies a term of a lock.
//
// For a Lease, Seq is the lease's transition count after the acquisition and is strictly greater
// than the Seq of every earlier term of the same Lease object: a store that remembers the highest
// Seq it has accepted and rejects lower ones refuses writes from a holder whose term has ended
// (fencing). Deleting and re-creating the Lease starts the count again.
//
// Locks whose terms are not ordered (the leader-for-life kinds) set Seq to zero; their ID is
// still unique per term, which tells two terms apart but not which came first.
type Token struct {
	// Seq orders the terms of one lock object; zero when the lock kind does not order them.
	Seq int64
	// ID is unique per term.
	ID string
}

// Ordered reports whether Seq can be compared between terms.
func (t Token) Ordered() bool { return t.Seq > 0 }

// String returns the ID, or the Seq when there is no ID.
func (t Token) String() string {
	if t.ID != "" {
		return t.ID
	}
	return fmt.Sprint(t.Seq)
}

// Observation is the holder of a lock as seen at one moment.
type Observation struct {
	// Holder is the identity in the record, empty when the lock is free or its object is absent.
	// For a semaphore, the holders of its slots, in slot order and joined by commas.
	Holder string
	// Holders is, for a semaphore, the holder of each slot below its size, in slot order (empty
	// for a free slot); nil for the other kinds.
	Holders []string
	// Token of the holder's term as recorded (zero when free).
	Token Token
	// Time the change was observed, on the lock's clock.
	Time time.Time
}
