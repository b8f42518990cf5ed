// Command leaderlock-leader-for-life is the leader-for-life example with a LeaderLock custom resource lock:
// the replica that gets the lock logs "Got leader role" and then works for the rest of its Pod's
// life. When that Pod goes, Kubernetes' garbage collector deletes the lock and another replica
// takes over at once. It must run in a Pod (POD_NAME from the downward API).
// Install the CRD first: kubectl apply -f config/crd/leaderlocks.regent.dev.yaml
package main

import (
	"context"
	"flag"
	"os"

	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/regent-k8s/regent/app"
	"github.com/regent-k8s/regent/leader"
)

func main() {
	cfg := app.DefaultConfig()
	cfg.LockKind = app.KindLeaderLock
	cfg.LockName = "leaderlock-leader-example"
	cfg.RegisterFlags(flag.CommandLine)
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
			app.RunGuarded(p, func(ctx context.Context) error {
				token, _ := leader.TokenFrom(ctx)
				log.Info("Got leader role", zap.Stringer("token", token))
				<-ctx.Done() // the work of a leader for life: runs until the Pod stops
				log.Info("stopped leader work", zap.Stringer("token", token), zap.NamedError("cause", context.Cause(ctx)))
				return nil
			})
		}),
	).Run()
}
