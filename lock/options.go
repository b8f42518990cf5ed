package lock

import (
	"fmt"
	"time"

	"go.uber.org/zap"
	"k8s.io/utils/clock"

	"github.com/regent-k8s/regent/contextinfo"
)

// Timings of a Lease lock. The holder renews every RetryPeriod; a term whose last successful
// renewal was sent more than RenewDeadline ago ends as lost, which is before any other candidate
// may take over: those wait LeaseDuration from the moment they observed that renewal. The
// difference LeaseDuration - RenewDeadline is the margin for the holder's work to stop and for
// clocks that run at different rates.
type Timings struct {
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
}

// DefaultTimings are client-go's defaults: 15 s, 10 s and 2 s.
var DefaultTimings = Timings{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}

// Floors below which timings cannot work, whatever the cluster.
const (
	// MinRetryPeriod is the shortest RetryPeriod. Each renewal is a write that the API server
	// commits to etcd, a few milliseconds on a healthy cluster and far more under load; renewing
	// more often than ten times a second per Lease loads the server without making the term any
	// safer, and a RetryPeriod of nanoseconds (a time.Duration written as a bare number) would
	// flood it.
	MinRetryPeriod = 100 * time.Millisecond
	// MinMargin is the smallest LeaseDuration - RenewDeadline. The margin is all the time the
	// holder's work has to stop after its term ends before another candidate may start, and it
	// also absorbs differences in clock rate and scheduling delays; below a second, a garbage
	// collection pause or a busy node eats it.
	MinMargin = time.Second
)

// Validate checks LeaseDuration > RenewDeadline > RetryPeriod >= MinRetryPeriod, LeaseDuration -
// RenewDeadline >= MinMargin, and that LeaseDuration is a whole number of seconds (the Lease
// records it in seconds). The error names the field and the value, and says when the value
// looks like a number of seconds written as a bare time.Duration, which counts nanoseconds.
func (t Timings) Validate() error {
	switch {
	case t.RetryPeriod < MinRetryPeriod:
		return &ConfigError{Field: "RetryPeriod", Value: t.RetryPeriod, Reason: fmt.Sprintf("must be at least %v", MinRetryPeriod) + unitHint(t.RetryPeriod)}
	case t.RenewDeadline <= t.RetryPeriod:
		return &ConfigError{Field: "RenewDeadline", Value: t.RenewDeadline, Reason: fmt.Sprintf("must be greater than RetryPeriod (%v)", t.RetryPeriod) + unitHint(t.RenewDeadline)}
	case t.LeaseDuration <= t.RenewDeadline:
		return &ConfigError{Field: "LeaseDuration", Value: t.LeaseDuration, Reason: fmt.Sprintf("must be greater than RenewDeadline (%v)", t.RenewDeadline) + unitHint(t.LeaseDuration)}
	case t.LeaseDuration-t.RenewDeadline < MinMargin:
		return &ConfigError{Field: "RenewDeadline", Value: t.RenewDeadline, Reason: fmt.Sprintf(
			"must be at least %v below LeaseDuration (%v): that margin is the time the work has to stop after its term ends", MinMargin, t.LeaseDuration)}
	case t.LeaseDuration%time.Second != 0:
		return &ConfigError{Field: "LeaseDuration", Value: t.LeaseDuration, Reason: "must be a whole number of seconds"}
	case t.LeaseDuration/time.Second > 1<<31-1:
		return &ConfigError{Field: "LeaseDuration", Value: t.LeaseDuration, Reason: "is too long"}
	}
	return nil
}

// unitHint suggests the unit when a duration is so short that it was most likely meant in seconds.
func unitHint(d time.Duration) string {
	if d > 0 && d < time.Millisecond {
		return fmt.Sprintf(" (did you mean %ds? a bare number as a time.Duration counts nanoseconds: write %d * time.Second)", int64(d), int64(d))
	}
	return ""
}

type options struct {
	identity string
	timings  Timings
	clock    clock.Clock
	log      *zap.Logger

	onRenew func(Renewal)
	onState func(StateChange)
	// maxSkew, when positive, lets TryAcquire judge a Lease's expiry by its renewTime.
	maxSkew time.Duration
	// aliases are other names a handover may give this candidate (WithHandoverAliases).
	aliases []string
	// atRisk is when a term without a successful renewal becomes at risk; zero: RenewDeadline/2.
	atRisk time.Duration
	// leaseOnly and lifeOnly name the options given that apply to one family of locks only; a
	// lock of the other family refuses them rather than ignore them.
	leaseOnly, lifeOnly []string
	// requestTimeout bounds the leader-for-life locks' requests (see requestTimeout).
	requestTimeout time.Duration

	// Leader-for-life locks only.
	blockOwnerDeletion bool
	keepOnRelease      bool
	notReadyTakeover   bool
}

func defaultOptions() options {
	return options{
		identity: contextinfo.DefaultIdentity(),
		timings:  DefaultTimings,
		clock:    clock.RealClock{},
		log:      zap.NewNop(),

		requestTimeout: requestTimeout,
	}
}

// leaseOptions applies opts to the defaults for a lock stored in Leases (a Lease, a semaphore),
// validates them, and refuses the options of the leader-for-life kinds.
func leaseOptions(opts []Option) (options, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	if err := o.validate(); err != nil {
		return options{}, err
	}
	if err := o.refuseOptionsOf(o.lifeOnly, "leader-for-life"); err != nil {
		return options{}, err
	}
	return o, nil
}

func (o *options) validate() error {
	if o.identity == "" {
		return &ConfigError{Field: "Identity", Value: `""`, Reason: "must not be empty"}
	}
	if o.clock == nil {
		return &ConfigError{Field: "Clock", Value: nil, Reason: "must not be nil"}
	}
	if o.log == nil {
		o.log = zap.NewNop()
	}
	for _, a := range o.aliases {
		if a == "" {
			return &ConfigError{Field: "HandoverAliases", Value: `""`, Reason: "must not contain an empty name"}
		}
	}
	if o.maxSkew < 0 {
		return &ConfigError{Field: "MaxClockSkew", Value: o.maxSkew, Reason: "must not be negative"}
	}
	if err := o.timings.Validate(); err != nil {
		return err
	}
	if o.atRisk < 0 || o.atRisk >= o.timings.RenewDeadline {
		return &ConfigError{Field: "AtRiskAfter", Value: o.atRisk, Reason: fmt.Sprintf("must be between 0 (the default, half the renew deadline) and the renew deadline %v, exclusive%s",
			o.timings.RenewDeadline, unitHint(o.atRisk))}
	}
	return nil
}

// refuseOptionsOf returns a ConfigError for the first option given that applies to the other
// family of locks only.
func (o *options) refuseOptionsOf(names []string, family string) error {
	if len(names) == 0 {
		return nil
	}
	return &ConfigError{Field: names[0], Value: "set", Reason: "applies to " + family + " locks only"}
}

// Option configures a lock.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithIdentity sets this process's name in the lock's records. The default is the Pod name (or
// host name) plus a random suffix drawn once per process, so that a restarted process never
// mistakes its predecessor's term for its own. Identities must be unique among candidates.
func WithIdentity(identity string) Option {
	return optionFunc(func(o *options) { o.identity = identity })
}

// WithTimings sets a Lease lock's timings (default DefaultTimings). Leader-for-life locks have no
// timings and refuse it.
func WithTimings(t Timings) Option {
	return optionFunc(func(o *options) { o.timings = t; o.leaseOnly = append(o.leaseOnly, "Timings") })
}

// WithClock replaces the real clock, for tests. All expiry decisions use this clock's readings,
// which for the real clock are monotonic.
func WithClock(c clock.Clock) Option {
	return optionFunc(func(o *options) { o.clock = c })
}

// WithLogger sets the logger (default: none).
func WithLogger(l *zap.Logger) Option {
	return optionFunc(func(o *options) { o.log = l })
}

// WithBlockOwnerDeletion sets blockOwnerDeletion on a leader-for-life lock's owner reference, so
// that a foreground deletion of the Pod waits for the lock to be collected. Clusters that enforce
// owner-reference permissions then require update rights on pods/finalizers. Lease locks refuse it.
func WithBlockOwnerDeletion() Option {
	return optionFunc(func(o *options) { o.blockOwnerDeletion = true; o.lifeOnly = append(o.lifeOnly, "BlockOwnerDeletion") })
}

// WithKeepOnRelease makes Release of a leader-for-life lock leave the lock object in place, to be
// collected with the Pod: leadership then truly lasts the Pod's life. By default Release deletes
// it. Lease locks refuse it.
func WithKeepOnRelease() Option {
	return optionFunc(func(o *options) { o.keepOnRelease = true; o.lifeOnly = append(o.lifeOnly, "KeepOnRelease") })
}

// WithUnsafeTakeoverFromNotReadyNodes lets a waiter delete a leader-for-life lock whose holder
// Pod runs on a node that is not Ready. Such a Pod may still be running, cut off from the API
// server, so this trades the guarantee of a single leader for availability. It needs get rights
// on nodes. Lease locks refuse it.
func WithUnsafeTakeoverFromNotReadyNodes() Option {
	return optionFunc(func(o *options) {
		o.notReadyTakeover = true
		o.lifeOnly = append(o.lifeOnly, "UnsafeTakeoverFromNotReadyNodes")
	})
}

// WithHandoverAliases gives this candidate other names under which a handover may name it,
// besides its identity: typically its Pod's name, which an operator knows where the identity
// carries a random suffix (kubectl annotate lease NAME regent.dev/handover-to=POD). A candidate
// named by an alias skips the wait for a handed-over Lease as if named by its identity; every
// take is still a compare-and-swap, so two candidates that answer to one name cannot both hold
// the lock, and the one that loses the race waits as for a held record. Leader-for-life locks
// refuse it.
func WithHandoverAliases(names ...string) Option {
	return optionFunc(func(o *options) {
		o.aliases = append(o.aliases, names...)
		o.leaseOnly = append(o.leaseOnly, "HandoverAliases")
	})
}

// WithMaxClockSkew lets a Lease's TryAcquire take a held record that has expired by the clocks:
// one whose renewTime, written by the holder from its own clock, is older than its duration plus
// d by this process's clock. That is safe only if no two clocks of the lock's candidates differ
// by more than d: the holder's clock ahead by more would make its record look fresher than it is
// (harmless), behind by more would let this process take over while the holder still works. By
// default (and with zero) TryAcquire judges no expiry, as it cannot without watching (see
// Lease.TryAcquire); Acquire never uses the bound. Leader-for-life locks refuse it.
func WithMaxClockSkew(d time.Duration) Option {
	return optionFunc(func(o *options) { o.maxSkew = d; o.leaseOnly = append(o.leaseOnly, "MaxClockSkew") })
}

// WithAtRiskAfter sets when a held Lease's term becomes at risk (TermAtRisk, Term.State): once
// no renewal has succeeded for d, measured from the last successful renewal's send time. The
// default, and zero, is half the RenewDeadline; d must be below the RenewDeadline, at which the
// term is lost. Leader-for-life locks refuse it: their terms never renew.
func WithAtRiskAfter(d time.Duration) Option {
	return optionFunc(func(o *options) { o.atRisk = d; o.leaseOnly = append(o.leaseOnly, "AtRiskAfter") })
}

// StateChange is a held Lease's term becoming at risk, or healthy again (see Term.State).
type StateChange struct {
	// Lock names the lock (for a semaphore, the slot).
	Lock string
	// Token is the term's.
	Token Token
	// State is TermAtRisk or TermHealthy.
	State TermState
}

// WithStateObserver calls fn, from the renewing goroutine, whenever a held Lease's term becomes
// at risk or healthy again; it must return quickly. The end of a term is not reported here (see
// Term.Done). Leader-for-life locks refuse it: their terms are never at risk.
func WithStateObserver(fn func(StateChange)) Option {
	return optionFunc(func(o *options) { o.onState = fn; o.leaseOnly = append(o.leaseOnly, "StateObserver") })
}

// Renewal is the outcome of one renewal of a held Lease.
type Renewal struct {
	// Lock names the lock.
	Lock string
	// Latency is the time from sending the renewal to its answer.
	Latency time.Duration
	// Err is nil when the renewal succeeded.
	Err error
}

// WithRenewObserver calls fn after each renewal attempt of a held Lease, from the renewing
// goroutine: fn must not block. Metrics and health checks use it. Leader-for-life locks do not
// renew and refuse it.
func WithRenewObserver(fn func(Renewal)) Option {
	return optionFunc(func(o *options) { o.onRenew = fn; o.leaseOnly = append(o.leaseOnly, "RenewObserver") })
}
