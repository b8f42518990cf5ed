// Command semaphore-worker is the semaphore example: run four replicas; two at a time hold a slot
// of the semaphore and work (they log "holding a slot", then "still working" every tick, 5 s by
// default), the others wait. On SIGTERM a holder's work stops first, and only then is its slot
// released, so a waiting replica takes it at once. A crashed holder's slot is taken once its
// Lease expires.
//
//	go run ./examples/semaphore-worker --lock-name=semaphore-example --semaphore-size=2
//
// The size is recorded in the Lease named after the semaphore when the first replica starts;
// change it with
//
//	kubectl annotate lease semaphore-example regent.dev/semaphore-size=3 --overwrite
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
	"github.com/regent-k8s/regent/leader"
)

func main() {
	cfg := app.DefaultConfig()
	cfg.LockKind, cfg.LockName, cfg.SemaphoreSize = app.KindSemaphore, "semaphore-example", 2
	cfg.RegisterFlags(flag.CommandLine)
	tick := flag.Duration("tick", 5*time.Second, "how often a holder logs that it still works")
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
		app.LeaderElection,
		app.Monitoring,
		app.GuardedWorkloadOf(func(log *zap.Logger) leader.Work { return work(log, *tick) }),
	).Run()
}

// work runs while this replica holds a slot.
func work(log *zap.Logger, tick time.Duration) leader.Work {
	return func(ctx context.Context) error {
		l, _ := leader.FromContext(ctx)
		slot := zap.String("slot", l.Term().Lock())
		log.Info("holding a slot", slot, zap.Stringer("token", l.Token()))
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				log.Info("stopped working", slot, zap.NamedError("cause", context.Cause(ctx)))
				return nil
			case <-t.C:
				log.Info("still working", slot)
			}
		}
	}
}
