package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// library is the leader-election implementation a fleet runs.
type library string

const (
	regentLib   library = "regent"
	clientGoLib library = "client-go"
)

// term is a leader's work starting: who, when, and how to end it gracefully.
type term struct {
	who  int
	at   time.Time
	stop func()
}

// fleet is n candidates of one library on one Lease, each with its own client and transport,
// campaigning again after every term, until close.
type fleet struct {
	lib      library
	ns, name string
	timings  lock.Timings
	started  chan term
	cutters  []*cutter
	requests atomic.Int64 // requests sent by all candidates
	writes   atomic.Int64 // of which writes (anything but GET)
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	// Terms started so far; a candidate whose term ended waits for the next one to start before
	// it campaigns again, so that a handover goes to another candidate.
	mu      sync.Mutex
	terms   int
	newTerm chan struct{}
}

// begin announces a term of candidate i and returns its number and the function that ends it.
func (f *fleet) begin(i int) (int, <-chan struct{}) {
	f.mu.Lock()
	f.terms++
	n := f.terms
	close(f.newTerm)
	f.newTerm = make(chan struct{})
	f.mu.Unlock()
	stop := make(chan struct{})
	var once sync.Once
	f.started <- term{who: i, at: time.Now(), stop: func() { once.Do(func() { close(stop) }) }}
	return n, stop
}

// stepAside waits until a term after term n has started, or ctx ends.
func (f *fleet) stepAside(ctx context.Context, n int) {
	for {
		f.mu.Lock()
		later, ch := f.terms > n, f.newTerm
		f.mu.Unlock()
		if later {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

func newFleet(tb testing.TB, lib library, n int, timings lock.Timings) *fleet {
	tb.Helper()
	return newFleetOf(tb, lib, n, timings, false)
}

// newFleetOf is newFleet whose candidates share one clientset, and so one connection and no
// client-side rate limit, if shared; only the first candidate's cutter then cuts anything.
func newFleetOf(tb testing.TB, lib library, n int, timings lock.Timings, shared bool) *fleet {
	tb.Helper()
	klog.SetLogger(logr.Discard()) // client-go's election logs would drown the figures
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{lib: lib, ns: namespace(tb), name: "bench", timings: timings, started: make(chan term, n+10), cancel: cancel, newTerm: make(chan struct{})}
	var client kubernetes.Interface
	for i := range n {
		c := &cutter{}
		f.cutters = append(f.cutters, c)
		if client == nil || !shared {
			cfg := rest.CopyConfig(cp.Config(controlplane.AdminUser))
			cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return c.wrap(f.counting(rt)) })
			if shared {
				cfg.QPS = -1 // n candidates' requests through one client: no client-side limit
			}
			client = kubernetes.NewForConfigOrDie(cfg)
		}
		f.wg.Add(1)
		switch lib {
		case regentLib:
			go f.runRegent(ctx, tb, i, client)
		case clientGoLib:
			go f.runClientGo(ctx, tb, i, client)
		}
	}
	return f
}

func (f *fleet) close() {
	f.cancel()
	f.wg.Wait()
}

func (f *fleet) identity(i int) string { return fmt.Sprintf("%s-%d", f.lib, i) }

func (f *fleet) runRegent(ctx context.Context, tb testing.TB, i int, client kubernetes.Interface) {
	defer f.wg.Done()
	l, err := lock.NewLease(client.CoordinationV1(), f.ns, f.name, lock.WithIdentity(f.identity(i)), lock.WithTimings(f.timings))
	if err != nil {
		tb.Error(err)
		return
	}
	e, err := leader.New(l)
	if err != nil {
		tb.Error(err)
		return
	}
	for ctx.Err() == nil {
		mine := -1
		_ = e.RunAsLeader(ctx, func(wctx context.Context) error {
			n, stop := f.begin(i)
			mine = n
			select {
			case <-stop:
			case <-wctx.Done():
			}
			return nil
		})
		if mine >= 0 {
			f.stepAside(ctx, mine)
		}
	}
}

func (f *fleet) runClientGo(ctx context.Context, tb testing.TB, i int, client kubernetes.Interface) {
	defer f.wg.Done()
	for ctx.Err() == nil {
		mine := -1
		rctx, cancel := context.WithCancel(ctx)
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: f.ns, Name: f.name},
				Client:     client.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: f.identity(i)},
			},
			LeaseDuration:   f.timings.LeaseDuration,
			RenewDeadline:   f.timings.RenewDeadline,
			RetryPeriod:     f.timings.RetryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					n, stop := f.begin(i)
					mine = n
					select {
					case <-stop:
						cancel() // a graceful stop: client-go releases once Run sees the cancellation
					case <-lctx.Done():
					}
				},
				OnStoppedLeading: func() {},
			},
		})
		if err != nil {
			tb.Error(err)
			cancel()
			return
		}
		le.Run(rctx)
		cancel()
		if mine >= 0 {
			f.stepAside(ctx, mine)
		}
	}
}

// next waits for the next leader's work to start.
func (f *fleet) next(tb testing.TB) term {
	tb.Helper()
	select {
	case t := <-f.started:
		return t
	case <-time.After(2 * time.Minute):
		tb.Fatalf("%s: no leader within two minutes", f.lib)
		panic("unreachable")
	}
}

// counting counts the fleet's requests and writes.
func (f *fleet) counting(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		f.requests.Add(1)
		if r.Method != http.MethodGet {
			f.writes.Add(1)
		}
		return rt.RoundTrip(r)
	})
}

func counting(n *atomic.Int64, rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		return rt.RoundTrip(r)
	})
}

// renewals follows the fleet's Lease and remembers when each holder's record last changed.
type renewals struct {
	mu   sync.Mutex
	last map[string]time.Time
	stop func()
}

func watchRenewals(tb testing.TB, ns, name string) *renewals {
	tb.Helper()
	w, err := cp.Client(controlplane.AdminUser).CoordinationV1().Leases(ns).Watch(context.Background(),
		metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		tb.Fatal(err)
	}
	r := &renewals{last: map[string]time.Time{}, stop: w.Stop}
	go func() {
		for ev := range w.ResultChan() {
			if l, ok := ev.Object.(*coordinationv1.Lease); ok && l.Spec.HolderIdentity != nil {
				r.mu.Lock()
				r.last[*l.Spec.HolderIdentity] = time.Now()
				r.mu.Unlock()
			}
		}
	}()
	return r
}

func (r *renewals) lastOf(holder string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[holder]
}
