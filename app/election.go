package app

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
	"github.com/regent-k8s/regent/podlabel"
	"github.com/regent-k8s/regent/readypeer"
)

// LeaderElection provides the lock (lock.Lock) chosen by Config.LockKind and LockName, and the
// *leader.Election over it. Metrics and Health, when in the graph, receive its events.
var LeaderElection = fx.Module("regent.leaderelection", fx.Provide(NewLeaderElection))

// LeaderElectionParams are NewLeaderElection's inputs.
type LeaderElectionParams struct {
	fx.In
	Config Config
	Info   contextinfo.Info
	Client kubernetes.Interface
	// LockClient, when in the graph (app.Kubernetes provides it), is what the lock uses instead
	// of Client, so that the workload's requests never delay a renewal.
	LockClient LockClient        `optional:"true"`
	Dynamic    dynamic.Interface `optional:"true"`
	Log        *zap.Logger       `optional:"true"`
	Metrics    *Metrics          `optional:"true"`
	Health     *Health           `optional:"true"`
	// Options and LockOpts collect extra options from the graph: provide them with
	// fx.Annotate(fn, fx.ResultTags(`group:"regent.leader.options"`)) (or "regent.lock.options").
	// They are applied after the ones built from Config, so they win.
	Options  []leader.Option `group:"regent.leader.options"`
	LockOpts []lock.Option   `group:"regent.lock.options"`
}

// LeaderElectionResult is what NewLeaderElection provides.
type LeaderElectionResult struct {
	fx.Out
	Lock     lock.Lock
	Election *leader.Election
}

// NewLeaderElection builds the lock and the election. The Lease lives in Config.Namespace, or
// this process's own (Info.Namespace) when that is empty; the leader-for-life locks are owned by
// the Pod, live in its namespace, and need a Pod (POD_NAME).
func NewLeaderElection(p LeaderElectionParams) (LeaderElectionResult, error) {
	if err := p.Config.Validate(); err != nil {
		return LeaderElectionResult{}, err
	}
	if p.Client == nil {
		return LeaderElectionResult{}, &lock.ConfigError{Field: "Client", Value: nil, Reason: "must not be nil (app.Kubernetes provides one)"}
	}
	log := p.Log
	if log == nil {
		log = zap.NewNop()
	}
	var recorders multiRecorder
	var renewObservers []func(lock.Renewal)
	if p.Metrics != nil {
		recorders = append(recorders, p.Metrics)
		renewObservers = append(renewObservers, p.Metrics.Renewed)
	}
	if p.Health != nil {
		recorders = append(recorders, p.Health)
		renewObservers = append(renewObservers, p.Health.Renewed)
		if orKind(p.Config.LockKind).leases() {
			p.Health.SetRenewDeadline(p.Config.Timings.RenewDeadline)
		} else {
			p.Health.SetRenewDeadline(0) // leader-for-life terms never renew
		}
	}
	identity := p.Config.Identity
	if identity == "" {
		identity = p.Info.Identity()
	}
	kind := orKind(p.Config.LockKind)
	opts := []lock.Option{lock.WithIdentity(identity), lock.WithLogger(log)}
	if kind.leases() {
		opts = append(opts, lock.WithTimings(p.Config.Timings), lock.WithRenewObserver(func(r lock.Renewal) {
			for _, fn := range renewObservers {
				fn(r)
			}
		}))
		if p.Metrics != nil {
			opts = append(opts, lock.WithStateObserver(p.Metrics.StateChanged))
		}
		if kind == KindLease && p.Info.PodName != "" && p.Info.PodName != identity {
			// A handover may name this candidate by its Pod, which an operator knows where
			// the identity carries a random suffix.
			opts = append(opts, lock.WithHandoverAliases(p.Info.PodName))
		}
	}
	opts = append(opts, p.LockOpts...)
	var (
		l   lock.Lock
		err error
	)
	if ns := p.Config.Namespace; !kind.leases() && ns != "" && p.Info.Pod != nil && ns != p.Info.Pod.Namespace {
		return LeaderElectionResult{}, &FlagError{Flag: flagNamespace.name, Env: flagNamespace.env, Value: ns,
			Reason: fmt.Sprintf("a %s lock is owned by its Pod and lives in the Pod's namespace %q", kind, p.Info.Pod.Namespace)}
	}
	lc := lockClient(p.LockClient, p.Client)
	switch kind {
	case KindLease:
		l, err = lock.NewLease(lc.CoordinationV1(), cmp.Or(p.Config.Namespace, p.Info.Namespace), p.Config.LockName, opts...)
	case KindSemaphore:
		l, err = lock.NewSemaphore(lc.CoordinationV1(), cmp.Or(p.Config.Namespace, p.Info.Namespace), p.Config.LockName, p.Config.SemaphoreSize, opts...)
	case KindConfigMap:
		l, err = lock.NewConfigMapForLife(lc.CoreV1(), p.Info.Pod, p.Config.LockName, opts...)
	case KindLeaderLock:
		if p.Dynamic == nil {
			return LeaderElectionResult{}, fmt.Errorf("lock kind %s needs a dynamic.Interface in the graph (app.Kubernetes provides one)", KindLeaderLock)
		}
		l, err = lock.NewLeaderLockForLife(p.Dynamic, lc, p.Info.Pod, p.Config.LockName, opts...)
	}
	if err != nil {
		return LeaderElectionResult{}, err
	}
	leaderOpts := []leader.Option{leader.WithLogger(log), leader.WithRecorder(recorders)}
	if p.Config.LabelLeaderPod {
		if p.Info.Pod == nil {
			return LeaderElectionResult{}, &FlagError{Flag: flagLabelLeader.name, Env: flagLabelLeader.env, Value: "true",
				Reason: "needs this process's Pod: set POD_NAME (and POD_NAMESPACE) from the downward API"}
		}
		label, err := podlabel.New(p.Client.CoreV1(), p.Info.Pod, p.Config.LockName, podlabel.WithLogger(log))
		if err != nil {
			return LeaderElectionResult{}, err
		}
		// This process does not lead yet (a restarted one waits out its predecessor's record like
		// any candidate), so a label on its Pod is a previous container's, whose work is gone:
		// clear it before campaigning, so that a Service does not route to a follower while the
		// candidates wait out the crashed term.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := label.Unmark(ctx, nil); err != nil {
			log.Warn("could not clear a previous container's leader label from this Pod", zap.Error(err))
		}
		cancel()
		leaderOpts = append(leaderOpts, leader.WithMarker(label))
	}
	if p.Config.HandOverOnStop {
		if p.Info.Pod == nil {
			return LeaderElectionResult{}, &FlagError{Flag: flagHandOverOnStop.name, Env: flagHandOverOnStop.env, Value: "true",
				Reason: "needs this process's Pod: set POD_NAME (and POD_NAMESPACE) from the downward API"}
		}
		next, err := readypeer.New(p.Client.CoreV1(), p.Info.Pod)
		if err != nil {
			return LeaderElectionResult{}, &FlagError{Flag: flagHandOverOnStop.name, Env: flagHandOverOnStop.env, Value: "true", Reason: err.Error()}
		}
		leaderOpts = append(leaderOpts, leader.WithSuccessor(next))
	}
	e, err := leader.New(l, append(leaderOpts, p.Options...)...)
	if err != nil {
		return LeaderElectionResult{}, err
	}
	return LeaderElectionResult{Lock: l, Election: e}, nil
}
