// Package regentctrl runs controller-runtime controllers under a regent election, in a manager
// that runs with LeaderElection: false. The manager, its cache, webhooks, health probes and
// metrics run on every replica; only the controllers run, on the replica that leads, for as long
// as it leads:
//
//	mgr, _ := ctrl.NewManager(cfg, ctrl.Options{LeaderElection: false})
//	election, _ := leader.New(lease)
//	err := regentctrl.Add(mgr, election, func(ctx context.Context, mgr manager.Manager) ([]controller.Controller, error) {
//		c, err := regentctrl.NewController("configmaps", controller.Options{Reconciler: r})
//		if err != nil {
//			return nil, err
//		}
//		return []controller.Controller{c}, c.Watch(source.Kind(mgr.GetCache(), &corev1.ConfigMap{},
//			&handler.TypedEnqueueRequestForObject[*corev1.ConfigMap]{}))
//	})
//
// What it guarantees, and why:
//
//   - Controllers cannot be started twice, so the setup function builds them afresh at the start
//     of every term, with NewController (controller.NewUnmanaged under the same name in every
//     term). They are never added to the manager.
//   - Their sources read the manager's cache, which every replica keeps warm: a new leader's
//     controllers start reconciling as soon as its term begins, without a fresh LIST.
//   - The term's context reaches every Reconcile: leader.TokenFrom(ctx) gives the fencing token.
//   - When the term ends (lost, or the manager stopping), the controllers' context is cancelled,
//     and the term is released only after every controller has returned, in-flight reconciles
//     included (controller-runtime waits for its workers). A lost term is campaigned for again;
//     the process never exits for it.
package regentctrl

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// Setup builds the controllers of one term, with the term's context. It is called at the start
// of every term; build the controllers with NewController, not with the manager's builder, which
// would add them to the manager.
type Setup func(ctx context.Context, mgr manager.Manager) ([]controller.Controller, error)

// Runnable is a manager.Runnable that runs the controllers Setup builds while election leads.
type Runnable struct {
	mgr      manager.Manager
	election *leader.Election
	setup    Setup
	retry    []leader.RetryOption
}

var (
	_ manager.Runnable               = (*Runnable)(nil)
	_ manager.LeaderElectionRunnable = (*Runnable)(nil)
)

// New returns the Runnable; Add adds it to mgr.
func New(mgr manager.Manager, election *leader.Election, setup Setup, opts ...leader.RetryOption) (*Runnable, error) {
	switch {
	case mgr == nil:
		return nil, &lock.ConfigError{Field: "mgr", Value: nil, Reason: "must not be nil"}
	case election == nil:
		return nil, &lock.ConfigError{Field: "election", Value: nil, Reason: "must not be nil"}
	case setup == nil:
		return nil, &lock.ConfigError{Field: "setup", Value: nil, Reason: "must not be nil"}
	}
	return &Runnable{mgr: mgr, election: election, setup: setup, retry: opts}, nil
}

// Add adds a Runnable to mgr.
func Add(mgr manager.Manager, election *leader.Election, setup Setup, opts ...leader.RetryOption) error {
	r, err := New(mgr, election, setup, opts...)
	if err != nil {
		return err
	}
	return mgr.Add(r)
}

// NeedLeaderElection is false: the Runnable runs on every replica, and regent's election, not the
// manager's, decides where the controllers run.
func (r *Runnable) NeedLeaderElection() bool { return false }

// Start campaigns until ctx ends (the manager stopping), running the controllers in every term.
// It returns nil when ctx ends, and an error when the election or a controller fails in a way
// that retrying does not mend; the manager then stops.
func (r *Runnable) Start(ctx context.Context) error {
	err := leader.RetryOnLost(r.election.AsLeader(r.term), r.retry...)(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// term runs one term's controllers until the term's context ends or one of them fails.
func (r *Runnable) term(ctx context.Context) error {
	controllers, err := r.setup(ctx, r.mgr)
	if err != nil {
		return fmt.Errorf("regentctrl: setting up the term's controllers: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(controllers))
	for i, c := range controllers {
		if c == nil {
			cancel()
			errs[i] = errors.New("regentctrl: setup returned a nil controller")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Start(ctx); err != nil && ctx.Err() == nil {
				errs[i] = err
				cancel() // one failed controller ends the term's work
			}
		}()
	}
	wg.Wait() // every controller, and its in-flight reconciles, has returned
	if err := errors.Join(errs...); err != nil {
		return err
	}
	<-ctx.Done() // no controllers, or all returned early: hold the term until it ends
	return nil
}

// NewController is controller.NewUnmanaged for a term: a controller under the same name in every
// term (controller-runtime refuses a name twice unless told not to check).
func NewController(name string, opts controller.Options) (controller.Controller, error) {
	skip := true
	opts.SkipNameValidation = &skip
	return controller.NewUnmanaged(name, opts)
}
