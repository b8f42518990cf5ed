package app

import (
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// GuardedWorkload runs work as the leader of the graph's election for the application's life:
// started in the background from OnStart, cancelled and awaited in OnStop, run again after lost
// leadership (leader.RetryOnLost). When it ends on its own the application shuts down through
// fx.Shutdowner: exit code 0 if the work returned nil, 1 on any other error (an unrecoverable
// Kubernetes failure such as Forbidden, or the work's own error).
func GuardedWorkload(work leader.Work, opts ...leader.RetryOption) fx.Option {
	if work == nil {
		return fx.Error(&lock.ConfigError{Field: "work", Value: nil, Reason: "GuardedWorkload needs the work to run"})
	}
	return fx.Module("regent.workload", fx.Invoke(func(p WorkloadParams) {
		RunGuarded(p, work, opts...)
	}))
}

// GuardedWorkloadOf is GuardedWorkload for work that needs the graph's values: newWork is a
// constructor, a function whose parameters fx resolves and which returns the leader.Work (and
// optionally an error), for example
//
//	app.GuardedWorkloadOf(func(db *sql.DB, log *zap.Logger) leader.Work {
//		return func(ctx context.Context) error { return syncOnce(ctx, db, log) }
//	})
//
// The constructor runs once, when the application is built; the work it returns runs in every
// term, as with GuardedWorkload.
func GuardedWorkloadOf(newWork any, opts ...leader.RetryOption) fx.Option {
	if newWork == nil {
		return fx.Error(&lock.ConfigError{Field: "newWork", Value: nil, Reason: "GuardedWorkloadOf needs a constructor of the work"})
	}
	return fx.Module("regent.workload",
		fx.Provide(fx.Private, fx.Annotate(newWork, fx.ResultTags(`name:"regent.work"`))),
		fx.Invoke(func(p struct {
			WorkloadParams
			Work leader.Work `name:"regent.work"`
		}) error {
			if p.Work == nil {
				return &lock.ConfigError{Field: "newWork", Value: nil, Reason: "the constructor returned a nil leader.Work"}
			}
			RunGuarded(p.WorkloadParams, p.Work, opts...)
			return nil
		}),
	)
}

// WorkloadParams are RunGuarded's inputs.
type WorkloadParams struct {
	fx.In
	Lifecycle  fx.Lifecycle
	Shutdowner fx.Shutdowner
	Election   *leader.Election
	Log        *zap.Logger `optional:"true"`
}

// RunGuarded registers the lifecycle hooks of a guarded workload; see GuardedWorkload.
func RunGuarded(p WorkloadParams, work leader.Work, opts ...leader.RetryOption) {
	log := p.Log
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("workload")
	runForLife(p.Lifecycle, p.Shutdowner, log, "guarded workload", leader.RetryOnLost(p.Election.AsLeader(work), opts...))
}
