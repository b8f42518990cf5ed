package app

import (
	"cmp"
	"context"

	"go.uber.org/fx"
	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/lock"
)

// ShardWork is the work of one shard: it runs while this process holds the shard and must
// return once ctx is done (see lock.Sharding.Run).
type ShardWork = func(ctx context.Context, shard int) error

// ShardedWorkloadOf spreads shards shards of work over the application's replicas for the
// application's life (lock.Sharding named Config.LockName, in Config.Namespace or this process's
// own, with Config's identity and timings): each replica runs newWork's ShardWork for the shards
// it holds. newWork is a constructor whose parameters fx resolves and which returns the ShardWork
// (and optionally an error).
//
// The number of shards is a constant of the program rather than a flag: every replica must be
// given the same. Config.LockKind must be lease (or empty). The sharding starts in OnStart and
// leaves in OnStop (each shard's work stopped, then released); when it ends on its own (a shard's
// work failed, or a Kubernetes failure that retrying does not mend) the application shuts down
// with exit code 1. The graph's *Metrics, when present, receives every change of the shards held
// (regent_shard_held, regent_shard_changes_total). The *lock.Sharding is provided to the graph.
func ShardedWorkloadOf(shards int, newWork any) fx.Option {
	if newWork == nil {
		return fx.Error(&lock.ConfigError{Field: "newWork", Value: nil, Reason: "ShardedWorkloadOf needs a constructor of the work"})
	}
	return fx.Module("regent.sharded",
		fx.Provide(func(p ShardingParams) (*lock.Sharding, error) { return NewSharding(p, shards) }),
		fx.Provide(fx.Private, fx.Annotate(newWork, fx.ResultTags(`name:"regent.shardwork"`))),
		fx.Invoke(func(p struct {
			ShardedParams
			Work ShardWork `name:"regent.shardwork"`
		}) error {
			if p.Work == nil {
				return &lock.ConfigError{Field: "newWork", Value: nil, Reason: "the constructor returned a nil ShardWork"}
			}
			RunSharded(p.ShardedParams, p.Work)
			return nil
		}),
	)
}

// ShardingParams are NewSharding's inputs.
type ShardingParams struct {
	fx.In
	Config Config
	Info   contextinfo.Info
	Client kubernetes.Interface
	// LockClient, when in the graph, is what the sharding's Leases use instead of Client.
	LockClient LockClient  `optional:"true"`
	Log        *zap.Logger `optional:"true"`
	// LockOpts collect extra lock options from the graph, as for LeaderElection.
	LockOpts []lock.Option `group:"regent.lock.options"`
}

// NewSharding builds the sharding of shards shards from Config.
func NewSharding(p ShardingParams, shards int) (*lock.Sharding, error) {
	if err := p.Config.Validate(); err != nil {
		return nil, err
	}
	if kind := orKind(p.Config.LockKind); kind != KindLease {
		return nil, &FlagError{Flag: flagLockKind.name, Env: flagLockKind.env, Value: string(kind), Reason: "sharded work is stored in Leases: must be lease"}
	}
	if p.Client == nil {
		return nil, &lock.ConfigError{Field: "Client", Value: nil, Reason: "must not be nil (app.Kubernetes provides one)"}
	}
	log := p.Log
	if log == nil {
		log = zap.NewNop()
	}
	opts := append([]lock.Option{lock.WithIdentity(cmp.Or(p.Config.Identity, p.Info.Identity())), lock.WithLogger(log),
		lock.WithTimings(p.Config.Timings)}, p.LockOpts...)
	return lock.NewSharding(lockClient(p.LockClient, p.Client).CoordinationV1(), cmp.Or(p.Config.Namespace, p.Info.Namespace), p.Config.LockName, shards, opts...)
}

// ShardedParams are RunSharded's inputs.
type ShardedParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
	Sharding   *lock.Sharding
	Log        *zap.Logger `optional:"true"`
	Metrics    *Metrics    `optional:"true"`
}

// RunSharded registers the lifecycle hooks of a sharded workload; see ShardedWorkloadOf.
func RunSharded(p ShardedParams, work ShardWork) {
	log := p.Log
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("sharded")
	runForLife(p.Lifecycle, p.Shutdowner, log, "sharded workload", func(ctx context.Context) error {
		if p.Metrics != nil {
			changes := p.Sharding.Changes(ctx) // closed when ctx ends
			go func() {
				for c := range changes {
					p.Metrics.ShardChanged(p.Sharding.String(), c)
				}
			}()
		}
		return p.Sharding.Run(ctx, work)
	})
}
