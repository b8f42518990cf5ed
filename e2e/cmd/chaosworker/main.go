// Command chaosworker is a candidate for the chaos suite: while it leads a Lease (or holds a slot
// of a semaphore, with --semaphore), it writes to a fencing sink every tick with its term's
// token, and it logs every term's start and end with the machine's monotonic clock (field
// "mono") and what the term holds (field "held"), so that the harness can check that no two terms
// of one lock overlap. The sink refuses writes whose token is lower than the highest it has accepted. On a
// graceful stop it logs "exit" with the goroutines it left behind, if any.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync/atomic"
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
	semaphore := flag.Int("semaphore", 0, "hold a slot of the semaphore --lock-name of this size instead of leading the Lease (regent only)")
	sharding := flag.Int("sharding", 0, "take part in the sharding --lock-name of this many shards instead of leading the Lease (regent only)")
	check := flag.Bool("check", false, "check the term (Term.Check) before each write (regent only)")
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
	// A member of a sharding renews every shard it holds each RetryPeriod: 64 shards at 0.5 s are
	// 130 requests a second, far above client-go's default limit of 5.
	restCfg.QPS, restCfg.Burst = 1000, 2000
	// Every request the worker makes is counted; SIGUSR1 logs the count ("requests"), so that
	// the harness can tell what waiters ask of the API server.
	var requests atomic.Int64
	restCfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			requests.Add(1)
			return rt.RoundTrip(r)
		})
	})
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	reporting := make(chan struct{})
	go func() {
		defer close(reporting)
		for range usr1 {
			log.Info("requests", zap.Int64("n", requests.Load()))
		}
	}()
	client := kubernetes.NewForConfigOrDie(restCfg)
	w := &writer{log: log, client: &http.Client{Timeout: time.Second}, sink: *sink, who: *identity, tick: *tick, check: *check}
	log.Info("campaigning", zap.String("library", *library))
	switch {
	case *sharding > 0:
		runSharding(ctx, log, client, *namespace, *lockName, *identity, timings, *sharding, w)
	case *library == "client-go":
		runClientGo(ctx, log, client, *namespace, *lockName, *identity, timings, w)
	default:
		runRegent(ctx, log, client, *namespace, *lockName, *identity, timings, *semaphore, w)
	}
	signal.Stop(usr1)
	close(usr1)
	<-reporting
	reportLeaks(log)
}

// runRegent campaigns with regent until ctx ends, retrying after every lost term: for the Lease
// name, or for a slot of the semaphore name when size > 0.
func runRegent(ctx context.Context, log *zap.Logger, client kubernetes.Interface, ns, name, id string, timings lock.Timings, size int, w *writer) {
	opts := []lock.Option{lock.WithIdentity(id), lock.WithLogger(log), lock.WithTimings(timings)}
	var l lock.Lock
	var err error
	if size > 0 {
		l, err = lock.NewSemaphore(client.CoordinationV1(), ns, name, size, opts...)
	} else {
		l, err = lock.NewLease(client.CoordinationV1(), ns, name, opts...)
	}
	if err != nil {
		log.Fatal("lock", zap.Error(err))
	}
	e, err := leader.New(l, leader.WithLogger(log))
	if err != nil {
		log.Fatal("election", zap.Error(err))
	}
	work := func(ctx context.Context) error {
		l, _ := leader.FromContext(ctx)
		held := ""
		if size > 0 {
			held = l.Term().Lock()
		}
		w.loop(ctx, held, l.Token().Seq, func() error { return leader.Check(ctx) })
		return nil
	}
	err = leader.RetryOnLost(e.AsLeader(work), leader.RetryBackoff(50*time.Millisecond, time.Second))(ctx)
	if err != nil && ctx.Err() == nil {
		log.Error("worker stopped", zap.Error(err))
		os.Exit(1)
	}
}

// runSharding takes part in the sharding name of k shards until ctx ends, writing to the sink
// for every shard it holds (each shard fenced on its own).
func runSharding(ctx context.Context, log *zap.Logger, client kubernetes.Interface, ns, name, id string, timings lock.Timings, k int, w *writer) {
	s, err := lock.NewSharding(client.CoordinationV1(), ns, name, k, lock.WithIdentity(id), lock.WithLogger(log), lock.WithTimings(timings))
	if err != nil {
		log.Fatal("sharding", zap.Error(err))
	}
	w.many = true // the sharding logs "shard lost" for every shard it loses
	err = s.Run(ctx, func(ctx context.Context, shard int) error {
		term, _ := lock.ShardTerm(ctx)
		w.loop(ctx, term.Lock(), term.Token().Seq, term.Check)
		return nil
	})
	if err != nil {
		log.Error("worker stopped", zap.Error(err))
		os.Exit(1)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// writer writes to the fencing sink every tick while its context lasts.
type writer struct {
	log    *zap.Logger
	client *http.Client
	sink   string
	who    string
	tick   time.Duration
	many   bool // the worker holds many locks at once (a sharding's shards)
	check  bool // call the term's check before each write
}

// loop writes to the sink while ctx lasts, and with --check only while check returns nil. held
// names what the term holds when the worker's terms hold different locks (a semaphore's slots);
// the sink then fences each lock on its own.
func (w *writer) loop(ctx context.Context, held string, seq int64, check func() error) {
	w.log.Info("term-start", zap.String("held", held), zap.Bool("many", w.many), zap.Int64("seq", seq), zap.Int64("mono", chaos.Now()))
	defer func() {
		w.log.Info("term-end", zap.String("held", held), zap.Bool("many", w.many), zap.Int64("seq", seq), zap.Int64("mono", chaos.Now()))
	}()
	target := fmt.Sprintf("%s/write?seq=%d&who=%s", w.sink, seq, w.who)
	if held != "" {
		target += "&lock=" + url.QueryEscape(held)
	}
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if w.check && check != nil {
			if err := check(); err != nil {
				w.log.Info("write-skipped", zap.Int64("seq", seq), zap.Error(err))
				continue
			}
		}
		resp, err := w.client.Post(target, "text/plain", nil)
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
					w.loop(lctx, "", seq, nil) // client-go has no check
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
