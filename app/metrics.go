package app

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// Metrics exports an election's events to Prometheus, labelled by lock:
//
//	regent_is_leader                  gauge, 1 while this process leads
//	regent_terms_started_total        counter
//	regent_terms_lost_total           counter
//	regent_overruns_total             counter: work still running when others could take over
//	regent_acquire_wait_seconds       histogram: time from starting to wait until leading
//	regent_renew_duration_seconds     histogram: latency of successful renewals
//	regent_renew_failures_total       counter
//	regent_last_renewal_timestamp_seconds  gauge: Unix time of the last successful renewal (or
//	                                  acquisition); alert on time() minus it while leading
//	regent_at_risk                    gauge, 1 while a held term is at risk (no renewal has
//	                                  succeeded for half the renew deadline; lock.TermAtRisk)
//
// and a sharding's changes, labelled by lock (the sharding) and shard:
//
//	regent_shard_held                 gauge, 1 while this process runs the shard's work
//	regent_shard_changes_total        counter, also by change: taken, moved, leaving, lost or failed
type Metrics struct {
	isLeader      *prometheus.GaugeVec
	termsStarted  *prometheus.CounterVec
	termsLost     *prometheus.CounterVec
	overruns      *prometheus.CounterVec
	acquireWait   *prometheus.HistogramVec
	renewDuration *prometheus.HistogramVec
	renewFailures *prometheus.CounterVec
	lastRenewal   *prometheus.GaugeVec
	atRisk        *prometheus.GaugeVec
	shardHeld     *prometheus.GaugeVec
	shardChanges  *prometheus.CounterVec
}

var _ leader.Recorder = (*Metrics)(nil)

// NewMetrics registers the metrics with reg. Metrics already registered there by another Metrics
// (two apps in one process, say, sharing controller-runtime's registry) are shared: each lock
// has its own label.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	if reg == nil {
		return nil, &lock.ConfigError{Field: "reg", Value: nil, Reason: "must not be nil"}
	}
	label := []string{"lock"}
	m := &Metrics{
		isLeader:     prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regent_is_leader", Help: "1 while this process leads the lock."}, label),
		termsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regent_terms_started_total", Help: "Terms this process started."}, label),
		termsLost:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regent_terms_lost_total", Help: "Terms that ended without a release."}, label),
		overruns:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regent_overruns_total", Help: "Lost terms whose work still ran when others could take over."}, label),
		acquireWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "regent_acquire_wait_seconds", Help: "Time from starting to wait until leading.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, label),
		renewDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "regent_renew_duration_seconds", Help: "Latency of successful renewals.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, label),
		renewFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regent_renew_failures_total", Help: "Renewals that failed."}, label),
		lastRenewal: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regent_last_renewal_timestamp_seconds",
			Help: "Unix time of the last successful renewal or acquisition of the lock by this process."}, label),
		atRisk: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regent_at_risk",
			Help: "1 while this process's term is at risk: no renewal has succeeded for a while, and the term is lost at the renew deadline unless one does."}, label),
		shardHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "regent_shard_held", Help: "1 while this process runs the shard's work."}, []string{"lock", "shard"}),
		shardChanges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "regent_shard_changes_total", Help: "Shards taken and given up by this process, by change."},
			[]string{"lock", "shard", "change"}),
	}
	if err := register(reg, &m.isLeader, &m.shardHeld, &m.lastRenewal, &m.atRisk); err != nil {
		return nil, err
	}
	if err := register(reg, &m.termsStarted, &m.termsLost, &m.overruns, &m.renewFailures, &m.shardChanges); err != nil {
		return nil, err
	}
	if err := register(reg, &m.acquireWait, &m.renewDuration); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers each collector with reg, and where one is already registered, uses that
// one instead.
func register[C prometheus.Collector](reg prometheus.Registerer, cs ...*C) error {
	for _, c := range cs {
		err := reg.Register(*c)
		var are prometheus.AlreadyRegisteredError
		switch {
		case err == nil:
		case errors.As(err, &are):
			existing, ok := are.ExistingCollector.(C)
			if !ok {
				return fmt.Errorf("a collector of another type is registered under a regent metric's name: %w", err)
			}
			*c = existing
		default:
			return err
		}
	}
	return nil
}

// Acquired implements leader.Recorder.
func (m *Metrics) Acquired(l string, _ lock.Token, waited time.Duration) {
	m.isLeader.WithLabelValues(l).Set(1)
	m.lastRenewal.WithLabelValues(l).SetToCurrentTime()
	m.termsStarted.WithLabelValues(l).Inc()
	m.acquireWait.WithLabelValues(l).Observe(waited.Seconds())
}

// Ended implements leader.Recorder.
func (m *Metrics) Ended(l string, _ lock.Token, lost bool, _ time.Duration) {
	m.isLeader.WithLabelValues(l).Set(0)
	m.atRisk.WithLabelValues(l).Set(0)
	if lost {
		m.termsLost.WithLabelValues(l).Inc()
	}
}

// Overran implements leader.Recorder.
func (m *Metrics) Overran(l string, _ lock.Token) { m.overruns.WithLabelValues(l).Inc() }

// Renewed records a renewal; pass it to lock.WithRenewObserver.
func (m *Metrics) Renewed(r lock.Renewal) {
	if r.Err != nil {
		m.renewFailures.WithLabelValues(r.Lock).Inc()
		return
	}
	m.renewDuration.WithLabelValues(r.Lock).Observe(r.Latency.Seconds())
	m.lastRenewal.WithLabelValues(r.Lock).SetToCurrentTime()
}

// StateChanged records a held term becoming at risk or healthy again; pass it to
// lock.WithStateObserver.
func (m *Metrics) StateChanged(c lock.StateChange) {
	v := 0.0
	if c.State == lock.TermAtRisk {
		v = 1
	}
	m.atRisk.WithLabelValues(c.Lock).Set(v)
}

// ShardChanged records a change of the shards this process holds (lock.Sharding.Changes).
func (m *Metrics) ShardChanged(sharding string, c lock.ShardChange) {
	shard := strconv.Itoa(c.Shard)
	if c.Held {
		m.shardHeld.WithLabelValues(sharding, shard).Set(1)
		m.shardChanges.WithLabelValues(sharding, shard, "taken").Inc()
		return
	}
	m.shardHeld.WithLabelValues(sharding, shard).Set(0)
	change := "failed"
	switch {
	case errors.Is(c.Cause, lock.ErrMoved):
		change = "moved"
	case errors.Is(c.Cause, lock.ErrLeaving):
		change = "leaving"
	case errors.Is(c.Cause, lock.ErrLost):
		change = "lost"
	}
	m.shardChanges.WithLabelValues(sharding, shard, change).Inc()
}
