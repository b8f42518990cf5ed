package leader

import (
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"

	"github.com/regent-k8s/regent/lock"
)

type options struct {
	log            *zap.Logger
	clock          clock.Clock
	recorder       Recorder
	releaseTimeout time.Duration
	onOverrun      func(Overrun)
	marker         Marker
	successor      Successor
}

// Option configures an Election.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option { return optionFunc(func(o *options) { o.log = l }) }

// WithClock sets the clock that times overruns. It must be the lock's clock.
func WithClock(c clock.Clock) Option { return optionFunc(func(o *options) { o.clock = c }) }

// WithRecorder receives the election's events, e.g. for metrics.
func WithRecorder(r Recorder) Option { return optionFunc(func(o *options) { o.recorder = r }) }

// WithReleaseTimeout bounds the release request made after the work returned (default 5 s). The
// release is attempted even when the caller's context has ended.
func WithReleaseTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.releaseTimeout = d })
}

// OnOverrun calls fn when the work of a lost term has still not returned at the moment other
// candidates may take over: two copies of the work may now run. It is called once per term, after
// the overrun has been logged and recorded; an application may shut itself down from it.
func OnOverrun(fn func(Overrun)) Option { return optionFunc(func(o *options) { o.onOverrun = fn }) }

// Overrun describes work that outlived its lost term.
type Overrun struct {
	Lock  string
	Token lock.Token
	// Since is when other candidates became free to take over, on the election's clock.
	Since time.Time
}

// Recorder receives an election's events. Its methods are called synchronously and must not block.
type Recorder interface {
	// Acquired: a term started after waiting for it.
	Acquired(lock string, token lock.Token, waited time.Duration)
	// Ended: a term ended after lasting held; lost says whether it was lost.
	Ended(lock string, token lock.Token, lost bool, held time.Duration)
	// Overran: the work of a lost term was still running when others could take over.
	Overran(lock string, token lock.Token)
}

type nopRecorder struct{}

func (nopRecorder) Acquired(string, lock.Token, time.Duration)    {}
func (nopRecorder) Ended(string, lock.Token, bool, time.Duration) {}
func (nopRecorder) Overran(string, lock.Token)                    {}
