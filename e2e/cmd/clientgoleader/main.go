// Command clientgoleader is client-go's leaderelection as most programs use it, for comparison
// with regent on a real node: a LeaseLock named by --lock-name, client-go's default timings
// (15 s / 10 s / 2 s), ReleaseOnCancel, the identity from POD_NAME, in-cluster config. It logs
// "leading" and "stopped leading work" as JSON lines, like regent's examples.
package main

import (
	"context"
	"flag"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

func main() {
	lockName := flag.String("lock-name", "clientgo-leader-example", "Lease name")
	flag.Parse()
	log, _ := zap.NewProduction()
	defer log.Sync()
	cfg, err := rest.InClusterConfig()
	if err != nil {
		log.Fatal("in-cluster config", zap.Error(err))
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	leaderelection.RunOrDie(ctx, leaderelection.LeaderElectionConfig{
		Lock: &resourcelock.LeaseLock{
			LeaseMeta:  metav1.ObjectMeta{Namespace: os.Getenv("POD_NAMESPACE"), Name: *lockName},
			Client:     client.CoordinationV1(),
			LockConfig: resourcelock.ResourceLockConfig{Identity: os.Getenv("POD_NAME")},
		},
		LeaseDuration:   15 * time.Second,
		RenewDeadline:   10 * time.Second,
		RetryPeriod:     2 * time.Second,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(ctx context.Context) {
				log.Info("leading")
				<-ctx.Done()
				log.Info("stopped leading work")
			},
			OnStoppedLeading: func() {},
		},
	})
}
