// Command lease-leader is the Lease leader example: run three replicas; one leads and logs
// "leading", then "still leading" every tick (5 s by default). On SIGTERM its work stops first,
// and only then is the Lease released, so another replica takes over at once.
//
//	go run ./examples/lease-leader --lock-name=lease-leader-example
package main

import (
	"context"
	"flag"
	"os"
	"time"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/regent-k8s/regent/app"
	"github.com/regent-k8s/regent/leader"
)

func main() {
	cfg := app.DefaultConfig()
	cfg.LockName = "lease-leader-example"
	cfg.RegisterFlags(flag.CommandLine)
	tick := flag.Duration("tick", 5*time.Second, "how often the leader logs that it still leads")
	flag.Parse()
	if err := cfg.Validate(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	fx.New(
		app.ProductionLogger,
		app.Logging,
		fx.Supply(cfg),
		app.Kubernetes,
		app.ContextInfo,
		app.LeaderElection,
		app.Monitoring,
		fx.Invoke(func(p app.WorkloadParams, log *zap.Logger) {
			app.RunGuarded(p, lead(log, *tick))
		}),
	).Run()
}

// lead is the guarded work: it runs while this replica leads.
func lead(log *zap.Logger, tick time.Duration) leader.Work {
	return func(ctx context.Context) error {
		token, _ := leader.TokenFrom(ctx)
		log.Info("leading", zap.Stringer("token", token))
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				log.Info("stopped leading work", zap.Stringer("token", token), zap.NamedError("cause", context.Cause(ctx)))
				return nil
			case <-t.C:
				log.Info("still leading", zap.Stringer("token", token))
			}
		}
	}
}
