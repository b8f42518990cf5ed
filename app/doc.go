// Package app wires regent into go.uber.org/fx applications. It is the only package that imports
// fx; everything it provides can be built without fx from the constructors here or from the
// packages below (contextinfo, lock, leader).
//
// A typical application:
//
//	fx.New(
//		app.ProductionLogger,           // or supply your own *zap.Logger
//		app.Logging,                    // fx events and client-go's klog output through zap
//		fx.Supply(cfg),                 // app.Config, e.g. from flags: cfg.RegisterFlags(flag.CommandLine)
//		app.Kubernetes,                 // rest.Config, clientsets, Pods/ConfigMaps/Leases getters
//		app.ContextInfo,                // who and where this process is
//		app.LeaderElection,             // the lock and the election
//		app.Monitoring,                 // /healthz, /readyz and Prometheus /metrics
//		app.GuardedWorkload(work),      // work runs as leader, retried on lost leadership
//	).Run()
//
// The guarded workload starts in the background from OnStart (which never blocks), is cancelled
// and awaited in OnStop, and shuts the application down through fx.Shutdowner when it ends on its
// own: exit code 0 when the work returned nil, 1 on an error that retrying does not mend.
package app
