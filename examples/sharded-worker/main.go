// Command sharded-worker is the sharding example: 8 shards of work spread over its replicas.
// Run three replicas and each runs two or three shards (it logs "running shard", then "still
// running" every tick, 5 s by default); every shard runs in exactly one replica at a time. When a
// replica joins, the others stop the shards it is to run ("stopped shard", cause "moved"), and
// only then release them, so that it takes them at once; when a replica is stopped (SIGTERM), its
// shards stop, are released and are taken by the others. A crashed replica's shards are taken
// once their Leases expire.
//
//	go run ./examples/sharded-worker --lock-name=sharded-example
//
// The number of shards is a constant of the program, not a flag: every replica must be given
// the same one (a replica that sees another member given a different number logs a warning naming
// both; change it by replacing every replica, as a rollout does, never side by side).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/regent-k8s/regent/app"
	"github.com/regent-k8s/regent/lock"
)

// shards is the number of shards of the work.
const shards = 8

func main() {
	cfg := app.DefaultConfig()
	cfg.LockName = "sharded-example"
	cfg.RegisterFlags(flag.CommandLine)
	tick := flag.Duration("tick", 5*time.Second, "how often a shard's work logs that it still runs")
	flag.Parse()
	err := cfg.Validate()
	if err == nil && *tick <= 0 {
		err = fmt.Errorf("--tick=%v: must be positive", *tick)
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	fx.New(
		app.ProductionLogger,
		app.Logging,
		fx.Supply(cfg),
		app.Kubernetes,
		app.ContextInfo,
		app.Monitoring,
		app.ShardedWorkloadOf(shards, func(log *zap.Logger) app.ShardWork { return work(log, *tick) }),
	).Run()
}

// work runs one shard while this replica holds it.
func work(log *zap.Logger, tick time.Duration) app.ShardWork {
	return func(ctx context.Context, shard int) error {
		fields := []zap.Field{zap.Int("shard", shard)}
		if term, ok := lock.ShardTerm(ctx); ok {
			fields = append(fields, zap.Stringer("token", term.Token()))
		}
		log.Info("running shard", fields...)
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				log.Info("stopped shard", zap.Int("shard", shard), zap.NamedError("cause", context.Cause(ctx)))
				return nil
			case <-t.C:
				log.Info("still running", zap.Int("shard", shard))
			}
		}
	}
}
