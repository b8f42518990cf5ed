// Command lease-leader is the Lease leader example: run three replicas; one leads and logs
// "leading", then "still leading" every tick (5 s by default). On SIGTERM its work stops first,
// and only then is the Lease released, so another replica takes over at once.
//
// With --label-leader-pod (as deploy/ runs it), the leader's Pod carries the label
// leader.regent.dev/lease-leader-example=true while it leads, and deploy/service.yaml's Service
// lease-leader-active reaches the leader alone. With --hand-over-on-stop (as deploy/ runs it), a
// leader told to stop hands the Lease to the newest Ready replica, so that in a rolling update the
// leadership moves once, to a new Pod, rather than from one old Pod to the next.
//
// The work notes each tick, and /healthz fails while a leader's work has not ticked for three
// ticks: a leader whose work hangs while its Lease renews is restarted by the liveness probe, and
// another replica leads once the Lease expires. --hang-after makes the work hang on purpose
// after leading that long, to try it.
//
//	go run ./examples/lease-leader --lock-name=lease-leader-example
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
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
	hangAfter := flag.Duration("hang-after", 0, "a fault to try the liveness probe with: the work hangs, ignoring its context, after leading this long (0: never)")
	flag.Parse()
	err := cfg.Validate()
	if err == nil && *tick <= 0 {
		err = fmt.Errorf("--tick=%v: must be positive", *tick)
	}
	if err == nil && *hangAfter < 0 {
		err = fmt.Errorf("--hang-after=%v: must be positive, or 0 for never", *hangAfter)
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(2)
	}
	w := &work{tick: *tick, hangAfter: *hangAfter}
	fx.New(
		app.ProductionLogger,
		app.Logging,
		fx.Supply(cfg),
		app.Kubernetes,
		app.ContextInfo,
		app.LeaderElection,
		app.Monitoring,
		fx.Invoke(func(p app.WorkloadParams, h *app.Health, log *zap.Logger) error {
			if err := h.AddCheck("work progress", w.progress); err != nil {
				return err
			}
			app.RunGuarded(p, w.lead(log))
			return nil
		}),
	).Run()
}

// work is the guarded work, with what /healthz needs to know of it.
type work struct {
	tick, hangAfter time.Duration
	// lastTick is when the work last ticked (UnixNano), 0 while it does not lead.
	lastTick atomic.Int64
}

// lead is the guarded work: it runs while this replica leads.
func (w *work) lead(log *zap.Logger) leader.Work {
	return func(ctx context.Context) error {
		token, _ := leader.TokenFrom(ctx)
		log.Info("leading", zap.Stringer("token", token))
		w.lastTick.Store(time.Now().UnixNano())
		defer w.lastTick.Store(0)
		began := time.Now()
		t := time.NewTicker(w.tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				log.Info("stopped leading work", zap.Stringer("token", token), zap.NamedError("cause", context.Cause(ctx)))
				return nil
			case <-t.C:
			}
			if w.hangAfter > 0 && time.Since(began) >= w.hangAfter {
				log.Warn("the work hangs on purpose (--hang-after), ignoring its context", zap.Stringer("token", token))
				select {} // never returns: only the process's end stops it
			}
			w.lastTick.Store(time.Now().UnixNano())
			log.Info("still leading", zap.Stringer("token", token))
		}
	}
}

// progress fails while this replica leads and its work has not ticked for three ticks.
func (w *work) progress() error {
	last := w.lastTick.Load()
	if last == 0 {
		return nil
	}
	if since := time.Since(time.Unix(0, last)); since > 3*w.tick {
		return errors.New("the leader's work has not ticked for " + since.Round(time.Second).String())
	}
	return nil
}
