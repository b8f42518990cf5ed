// Command chaosworker is a candidate for the chaos suite: while it leads a Lease, it writes to a
// fencing sink every tick with its term's token, and it logs every term's start and end. The
// sink refuses writes whose token is lower than the highest it has accepted.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

func main() {
	lockName := flag.String("lock-name", "chaos", "Lease name")
	namespace := flag.String("namespace", "default", "Lease namespace")
	identity := flag.String("identity", "", "holder identity")
	sink := flag.String("sink", "", "fencing sink URL")
	tick := flag.Duration("tick", 20*time.Millisecond, "time between writes while leading")
	leaseDuration := flag.Duration("lease-duration", 3*time.Second, "lease duration")
	renewDeadline := flag.Duration("renew-deadline", 2*time.Second, "renew deadline")
	retryPeriod := flag.Duration("retry-period", 500*time.Millisecond, "retry period")
	flag.Parse()

	log, _ := zap.NewProduction()
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		log.Fatal("kubeconfig", zap.Error(err))
	}
	client := kubernetes.NewForConfigOrDie(cfg)
	l, err := lock.NewLease(client.CoordinationV1(), *namespace, *lockName, lock.WithIdentity(*identity), lock.WithLogger(log),
		lock.WithTimings(lock.Timings{LeaseDuration: *leaseDuration, RenewDeadline: *renewDeadline, RetryPeriod: *retryPeriod}))
	if err != nil {
		log.Fatal("lock", zap.Error(err))
	}
	e, err := leader.New(l, leader.WithLogger(log))
	if err != nil {
		log.Fatal("election", zap.Error(err))
	}
	httpClient := &http.Client{Timeout: time.Second}
	work := func(ctx context.Context) error {
		token, _ := leader.TokenFrom(ctx)
		log.Info("term-start", zap.Int64("seq", token.Seq))
		defer log.Info("term-end", zap.Int64("seq", token.Seq))
		t := time.NewTicker(*tick)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			resp, err := httpClient.Post(fmt.Sprintf("%s/write?seq=%d&who=%s", *sink, token.Seq, *identity), "text/plain", nil)
			if err != nil {
				continue
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusConflict {
				log.Warn("write-rejected", zap.Int64("seq", token.Seq))
			}
		}
	}
	err = leader.RetryOnLost(e.AsLeader(work), leader.RetryBackoff(50*time.Millisecond, time.Second))(ctx)
	if err != nil && ctx.Err() == nil {
		log.Error("worker stopped", zap.Error(err))
		os.Exit(1)
	}
}
