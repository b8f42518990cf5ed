// Command distributed-lock is a worker that runs a critical section under a cluster-wide lock: a
// Lease declared up front (deploy/lease.yaml). Each round it waits for the lock, works inside
// the critical section while the lock renews itself in the background, and releases it. If the
// lock is lost mid-way, the critical section's context is cancelled at once and the round is
// abandoned; the fencing token lets the systems it writes to refuse a stale holder.
//
//	go run ./examples/distributed-lock --lock-name=distributed-lock-example --rounds=3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/lock"
)

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file (default: in-cluster, then ~/.kube/config)")
	lockName := flag.String("lock-name", "distributed-lock-example", "name of the Lease")
	rounds := flag.Int("rounds", 0, "critical sections to run; 0 runs until stopped")
	hold := flag.Duration("hold", 3*time.Second, "time spent inside each critical section")
	flag.Parse()

	log, _ := zap.NewProduction()
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, log, *kubeconfig, *lockName, *rounds, *hold); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("worker failed", zap.Error(err))
		os.Exit(1)
	}
}

func run(ctx context.Context, log *zap.Logger, kubeconfig, lockName string, rounds int, hold time.Duration) error {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	info, err := contextinfo.Load(ctx, client.CoreV1(), contextinfo.WithKubeconfig(cc))
	if err != nil {
		return err
	}
	// The lock's own client: its renewals never queue behind other requests of this process.
	lockClient, err := kubernetes.NewForConfig(rest.CopyConfig(cfg))
	if err != nil {
		return err
	}
	l, err := lock.NewLease(lockClient.CoordinationV1(), info.Namespace, lockName,
		lock.WithIdentity(info.Identity()), lock.WithLogger(log))
	if err != nil {
		return err
	}
	for i := 1; rounds == 0 || i <= rounds; i++ {
		if err := criticalSection(ctx, log, l, i, hold); err != nil {
			return err
		}
	}
	return nil
}

// criticalSection takes the lock, works under it, and releases it: acquire, use, release.
func criticalSection(ctx context.Context, log *zap.Logger, l *lock.Lease, round int, hold time.Duration) error {
	term, err := l.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("round %d: %w", round, err)
	}
	defer func() {
		if err := term.Release(context.WithoutCancel(ctx)); err != nil {
			log.Warn("release failed; the lease will expire on its own", zap.Error(err))
		}
	}()
	log.Info("entered the critical section", zap.Int("round", round), zap.Stringer("token", term.Token()))
	select {
	case <-time.After(hold): // the work; pass term.Token() to whatever it writes
		log.Info("left the critical section", zap.Int("round", round))
		return nil
	case <-term.Done():
		log.Warn("lock lost inside the critical section; abandoning the round", zap.Int("round", round), zap.Error(term.Err()))
		return nil
	case <-ctx.Done():
		log.Info("left the critical section", zap.Int("round", round), zap.String("why", "stopping"))
		return ctx.Err()
	}
}
