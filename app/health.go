package app

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// healthSlack is how far past the renew deadline a leader without a successful renewal is still
// reported healthy: the term ends at the deadline, so only a stuck process gets there.
const healthSlack = 5 * time.Second

// Health answers /healthz and /readyz. /healthz fails after an overrun until the term is
// released, and, for a lock that renews (a Lease: see SetRenewDeadline), while this process
// believes it leads but has not renewed for longer than the renew deadline plus a little slack:
// in both cases restarting the process is the cure. Leader-for-life locks never renew, so their
// leaders are not judged by renewals. Checks of the application's own (AddCheck) are judged too:
// a worker that has stopped making progress, say. /readyz answers ok once the election is wired
// up.
type Health struct {
	clock clock.PassiveClock

	mu            sync.Mutex
	renewDeadline time.Duration
	leading       bool
	lastRenewed   time.Time
	overran       bool
	checks        []namedCheck
}

type namedCheck struct {
	name  string
	check func() error
}

var _ leader.Recorder = (*Health)(nil)

// NewHealth returns a Health on the real clock that judges no renewals until SetRenewDeadline.
func NewHealth() *Health {
	return &Health{clock: clock.RealClock{}}
}

// SetRenewDeadline makes /healthz judge renewals: a leader whose last successful renewal is
// older than d (plus a little slack) is unhealthy. Set it for a Lease lock, to its RenewDeadline,
// and pass Renewed to lock.WithRenewObserver; the LeaderElection module does both. Zero turns
// the check off, which is right for leader-for-life locks: their terms never renew.
func (h *Health) SetRenewDeadline(d time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.renewDeadline = max(d, 0)
}

// Acquired implements leader.Recorder.
func (h *Health) Acquired(string, lock.Token, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leading, h.lastRenewed, h.overran = true, h.clock.Now(), false
}

// Ended implements leader.Recorder.
func (h *Health) Ended(string, lock.Token, bool, time.Duration) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.leading, h.overran = false, false
}

// Overran implements leader.Recorder.
func (h *Health) Overran(string, lock.Token) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.overran = true
}

// Renewed records a successful renewal; pass it to lock.WithRenewObserver.
func (h *Health) Renewed(r lock.Renewal) {
	if r.Err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastRenewed = h.clock.Now()
}

// AddCheck adds a check of the application's own to /healthz: while check returns an error,
// /healthz fails with name and the error. check is called on every probe, outside Health's lock,
// and must return quickly. A work loop that should tick regularly, for instance, can note each
// tick and fail the check when none came for a while: a leader whose work hangs while its lease
// renews is then restarted by the liveness probe, and another replica leads.
func (h *Health) AddCheck(name string, check func() error) error {
	if name == "" {
		return &lock.ConfigError{Field: "name", Value: name, Reason: "must name the check"}
	}
	if check == nil {
		return &lock.ConfigError{Field: "check", Value: nil, Reason: "must not be nil"}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.checks = append(h.checks, namedCheck{name: name, check: check})
	return nil
}

// Check returns nil when healthy, else what is wrong.
func (h *Health) Check() error {
	h.mu.Lock()
	checks := h.checks
	var err error
	switch {
	case h.overran:
		err = fmt.Errorf("the work of a lost term is still running after others could take over")
	case h.leading && h.renewDeadline > 0 && h.clock.Since(h.lastRenewed) > h.renewDeadline+healthSlack:
		err = fmt.Errorf("leading, but not renewed for %v", h.clock.Since(h.lastRenewed).Round(time.Millisecond))
	}
	h.mu.Unlock()
	if err != nil {
		return err
	}
	for _, c := range checks {
		if err := c.check(); err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	return nil
}

// Handler serves /healthz and /readyz.
func (h *Health) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := h.Check(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	return mux
}
