// Command chaosworker is a candidate for the chaos suite: while it leads a Lease, it writes to a
// fencing sink every tick with its term's token, and it logs every term's start and end with the
// machine's monotonic clock (field "mono"), so that the harness can check that no two terms
// overlap. The sink refuses writes whose token is lower than the highest it has accepted. On a
// graceful stop it logs "exit" with the goroutines it left behind, if any.
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

	"go.uber.org/goleak"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/regent-k8s/regent/e2e/chaos"
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
	library := flag.String("library", "regent", "regent or client-go")
	server := flag.String("server", "", "API server URL, replacing the kubeconfig's (the chaos suite's partition proxy)")
	debug := flag.Bool("debug", false, "log at debug level: every observation and acquiring write of the lock")
	flag.Parse()
	timings := lock.Timings{LeaseDuration: *leaseDuration, RenewDeadline: *renewDeadline, RetryPeriod: *retryPeriod}

	cfg := zap.NewProductionConfig()
	if *debug {
		cfg.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	log, _ := cfg.Build()
	defer log.Sync()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	restCfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		log.Fatal("kubeconfig", zap.Error(err))
	}
	if *server != "" {
		restCfg.Host = *server
	}
	client := kubernetes.NewForConfigOrDie(restCfg)
	w := &writer{log: log, client: &http.Client{Timeout: time.Second}, sink: *sink, who: *identity, tick: *tick}
	log.Info("campaigning", zap.String("library", *library))
	if *library == "client-go" {
		runClientGo(ctx, log, client, *namespace, *lockName, *identity, timings, w)
	} else {
		runRegent(ctx, log, client, *namespace, *lockName, *identity, timings, w)
	}
	reportLeaks(log)
}

// runRegent campaigns with regent until ctx ends, retrying after every lost term.
func runRegent(ctx context.Context, log *zap.Logger, client kubernetes.Interface, ns, name, id string, timings lock.Timings, w *writer) {
	l, err := lock.NewLease(client.CoordinationV1(), ns, name, lock.WithIdentity(id), lock.WithLogger(log), lock.WithTimings(timings))
	if err != nil {
		log.Fatal("lock", zap.Error(err))
	}
	e, err := leader.New(l, leader.WithLogger(log))
	if err != nil {
		log.Fatal("election", zap.Error(err))
	}
	work := func(ctx context.Context) error {
		token, _ := leader.TokenFrom(ctx)
		w.loop(ctx, token.Seq)
		return nil
	}
	err = leader.RetryOnLost(e.AsLeader(work), leader.RetryBackoff(50*time.Millisecond, time.Second))(ctx)
	if err != nil && ctx.Err() == nil {
		log.Error("worker stopped", zap.Error(err))
		os.Exit(1)
	}
}

// writer writes to the fencing sink every tick while its context lasts.
type writer struct {
	log    *zap.Logger
	client *http.Client
	sink   string
	who    string
	tick   time.Duration
}

func (w *writer) loop(ctx context.Context, seq int64) {
	w.log.Info("term-start", zap.Int64("seq", seq), zap.Int64("mono", chaos.Now()))
	defer func() { w.log.Info("term-end", zap.Int64("seq", seq), zap.Int64("mono", chaos.Now())) }()
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		resp, err := w.client.Post(fmt.Sprintf("%s/write?seq=%d&who=%s", w.sink, seq, w.who), "text/plain", nil)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusConflict {
			w.log.Warn("write-rejected", zap.Int64("seq", seq))
		}
	}
}

// runClientGo campaigns with client-go's leaderelection until ctx ends. client-go has no token;
// the Lease's transition count read when a term starts serves as one, since client-go increments
// it on every change of holder.
func runClientGo(ctx context.Context, log *zap.Logger, client kubernetes.Interface, ns, name, id string, t lock.Timings, w *writer) {
	for ctx.Err() == nil {
		rctx, cancel := context.WithCancel(ctx)
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &clearReporter{LeaseLock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: name},
				Client:     client.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: id},
			}, log: log},
			LeaseDuration: t.LeaseDuration, RenewDeadline: t.RenewDeadline, RetryPeriod: t.RetryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					var seq int64
					if l, err := client.CoordinationV1().Leases(ns).Get(lctx, name, metav1.GetOptions{}); err == nil && l.Spec.LeaseTransitions != nil {
						seq = int64(*l.Spec.LeaseTransitions)
					}
					w.loop(lctx, seq)
				},
				OnStoppedLeading: func() {
					if ctx.Err() == nil {
						log.Warn("leadership lost; cancelling the work")
					}
				},
			},
		})
		if err != nil {
			log.Fatal("elector", zap.Error(err))
		}
		le.Run(rctx)
		cancel()
	}
}

// clearReporter is client-go's LeaseLock, logging "cleared another holder's record" when client-go
// writes a free record over a record that another candidate holds. client-go's release does so
// after its own leader lost the Lease: it reads the Lease, checks leadership against the record
// it observed before (its own), and clears what it read. The chaos harness uses the log to tell
// the overlap that follows from a defect of regent.
type clearReporter struct {
	*resourcelock.LeaseLock
	log  *zap.Logger
	read *resourcelock.LeaderElectionRecord // the record of the last Get
}

func (c *clearReporter) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	rec, raw, err := c.LeaseLock.Get(ctx)
	if err == nil {
		c.read = rec
	}
	return rec, raw, err
}

func (c *clearReporter) Update(ctx context.Context, ler resourcelock.LeaderElectionRecord) error {
	read := c.read
	at := chaos.Now()
	err := c.LeaseLock.Update(ctx, ler)
	if err == nil && ler.HolderIdentity == "" && read != nil && read.HolderIdentity != "" && read.HolderIdentity != c.Identity() {
		c.log.Warn("cleared another holder's record", zap.String("holder", read.HolderIdentity), zap.Int64("mono", at))
	}
	return err
}

// reportLeaks logs "exit" with the goroutines still running after the campaign ended, leaving
// out the process's own plumbing: idle HTTP connections of the client's transport, klog's flush
// daemon and the signal handler.
func reportLeaks(log *zap.Logger) {
	err := goleak.Find(
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("golang.org/x/net/http2.(*ClientConn).readLoop"),
		goleak.IgnoreAnyFunction("k8s.io/klog/v2.(*flushDaemon).run.func1"),
		goleak.IgnoreAnyFunction("os/signal.signal_recv"),
	)
	leaked := ""
	if err != nil {
		leaked = err.Error()
	}
	log.Info("exit", zap.String("leaked", leaked))
}
