package leader

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"

	"github.com/regent-k8s/regent/lock"
)

// ErrLost matches lost leadership: the term ended while the work ran, without the work asking.
// It is lock.ErrLost, so either name matches.
var ErrLost = lock.ErrLost

// Work is a guarded workload: it runs while its context lasts and returns when it ends.
type Work func(ctx context.Context) error

// Election runs work as the leader of one lock. It is safe for concurrent use, though one process
// normally runs one leadership at a time per lock.
type Election struct {
	lock lock.Lock
	o    options
}

// New returns an election over l.
func New(l lock.Lock, opts ...Option) (*Election, error) {
	if l == nil {
		return nil, &lock.ConfigError{Field: "lock", Value: nil, Reason: "must not be nil"}
	}
	o := options{
		log:            zap.NewNop(),
		clock:          clock.RealClock{},
		recorder:       nopRecorder{},
		releaseTimeout: 5 * time.Second,
	}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	switch {
	case o.clock == nil:
		return nil, &lock.ConfigError{Field: "Clock", Value: nil, Reason: "must not be nil"}
	case o.releaseTimeout <= 0:
		return nil, &lock.ConfigError{Field: "ReleaseTimeout", Value: o.releaseTimeout, Reason: "must be greater than zero"}
	}
	if o.log == nil {
		o.log = zap.NewNop()
	}
	if o.recorder == nil {
		o.recorder = nopRecorder{}
	}
	o.log = o.log.Named("leader").With(zap.String("lock", l.String()), zap.String("identity", l.Identity()))
	return &Election{lock: l, o: o}, nil
}

// Lock is the election's lock.
func (e *Election) Lock() lock.Lock { return e.lock }

// Observe calls fn each time the leader changes, in order and from one goroutine, starting with
// the leader at the time of the call, until ctx ends. See Observer for the current leader.
func (e *Election) Observe(ctx context.Context, fn func(Change)) error {
	if e == nil {
		return &lock.ConfigError{Field: "Election", Value: nil, Reason: "was not built by leader.New"}
	}
	return NewObserver(e.lock).Run(ctx, fn)
}

// Change is a new leader as observed: Leader is empty while there is none.
type Change struct {
	Leader string
	Token  lock.Token
	Time   time.Time
}

// PanicError is returned when the work panicked; the leadership was released after it.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("work panicked: %v", e.Value) }
