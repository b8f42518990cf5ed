package e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/integrations/regentctrl"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// reconcileLog records who reconciled when, and reconciles that ran without their term's token.
type reconcileLog struct {
	mu      sync.Mutex
	at      []reconciled
	noToken []string
}

type reconciled struct {
	who string
	at  time.Time
}

func (l *reconcileLog) reconciler(who string, wantToken func() (lock.Token, bool)) reconcile.Func {
	return func(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.at = append(l.at, reconciled{who: who, at: time.Now()})
		if wantToken != nil {
			want, _ := wantToken()
			if got, ok := leader.TokenFrom(ctx); !ok || got != want {
				l.noToken = append(l.noToken, fmt.Sprintf("%s reconciled with token %v (found %v), want its term's %v", who, got, ok, want))
			}
		}
		return reconcile.Result{}, nil
	}
}

// firstAfter is the first reconcile after t by anyone but who.
func (l *reconcileLog) firstAfter(t time.Time, who string) (reconciled, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.at {
		if r.at.After(t) && r.who != who {
			return r, true
		}
	}
	return reconciled{}, false
}

func (l *reconcileLog) last() (reconciled, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.at) == 0 {
		return reconciled{}, false
	}
	return l.at[len(l.at)-1], true
}

// awaitReconcile waits until a reconcile after t by anyone but who is logged.
func (l *reconcileLog) await(t *testing.T, after time.Time, who string) reconciled {
	t.Helper()
	deadline := time.Now().Add(guard)
	for {
		if r, ok := l.firstAfter(after, who); ok {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconcile by anyone but %q after %s", who, after.Format("15:04:05.000"))
		}
		time.Sleep(5 * time.Millisecond) // polls the test's own log of reconciles
	}
}

// recordedController ends its term's interval when the controller has returned.
type recordedController struct {
	controller.Controller
	done func()
}

func (c recordedController) Start(ctx context.Context) error {
	defer c.done()
	return c.Controller.Start(ctx)
}

func crManager(t *testing.T, ns string, opts ctrl.Options) manager.Manager {
	t.Helper()
	skip := true
	opts.Metrics = metricsserver.Options{BindAddress: "0"}
	opts.HealthProbeBindAddress = "0"
	opts.Cache = cache.Options{DefaultNamespaces: map[string]cache.Config{ns: {}}}
	opts.Controller = config.Controller{SkipNameValidation: &skip}
	opts.Logger = logr.Discard()
	mgr, err := ctrl.NewManager(cp.Config(controlplane.AdminUser), opts)
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

func runManager(mgr manager.Manager) (stop func(), done chan error) {
	ctx, cancel := context.WithCancel(context.Background())
	done = make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return cancel, done
}

// controller-runtime managers with LeaderElection: false, their controllers under regent's
// election (integrations/regentctrl): three replicas, one reconciling at a time, every reconcile
// with its term's token, and a handover when the leader's manager stops; the same handover
// measured for controller-runtime's own leader election, same timings, same run.
func TestControllerRuntimeUnderRegent(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	admin := cp.Client(controlplane.AdminUser)
	for i := range 5 {
		if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	const rounds = 2

	// regent.
	rec := newTerms()
	log := &reconcileLog{}
	stops := map[string]func(){}
	dones := map[string]chan error{}
	for i := range 3 {
		who := fmt.Sprintf("regent-%d", i)
		mgr := crManager(t, ns, ctrl.Options{LeaderElection: false})
		l, err := lock.NewLease(admin.CoordinationV1(), ns, "operator", lock.WithIdentity(who), lock.WithTimings(fast))
		if err != nil {
			t.Fatal(err)
		}
		e, err := leader.New(l)
		if err != nil {
			t.Fatal(err)
		}
		err = regentctrl.Add(mgr, e, func(ctx context.Context, mgr manager.Manager) ([]controller.Controller, error) {
			token, _ := leader.TokenFrom(ctx)
			c, err := regentctrl.NewController("configmaps", controller.Options{Reconciler: log.reconciler(who, func() (lock.Token, bool) { return token, true })})
			if err != nil {
				return nil, err
			}
			if err := c.Watch(source.Kind(mgr.GetCache(), &corev1.ConfigMap{}, &handler.TypedEnqueueRequestForObject[*corev1.ConfigMap]{})); err != nil {
				return nil, err
			}
			rec.begin(who, token)
			return []controller.Controller{recordedController{Controller: c, done: func() { rec.finish(who) }}}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		stops[who], dones[who] = runManager(mgr)
	}
	t.Cleanup(func() {
		for who, stop := range stops {
			stop()
			if err := <-dones[who]; err != nil {
				t.Errorf("manager %s: %v", who, err)
			}
		}
		rec.check(t)
	})
	first := rec.next(t)
	log.await(t, first.start, "")
	var regentHandovers []time.Duration
	cur := first.who
	for round := range rounds {
		stopped := time.Now()
		stops[cur]()
		if err := <-dones[cur]; err != nil {
			t.Errorf("manager %s: %v", cur, err)
		}
		delete(stops, cur)
		next := log.await(t, stopped, cur)
		regentHandovers = append(regentHandovers, next.at.Sub(stopped))
		t.Logf("regent round %d: stopped %s's manager; %s reconciled %v later", round, cur, next.who, next.at.Sub(stopped).Round(time.Millisecond))
		cur = next.who
	}
	log.mu.Lock()
	for _, s := range log.noToken {
		t.Error(s)
	}
	log.mu.Unlock()

	// controller-runtime's own leader election, the same timings.
	native := &reconcileLog{}
	nstops := map[string]func(){}
	ndones := map[string]chan error{}
	ld, rd, rp := fast.LeaseDuration, fast.RenewDeadline, fast.RetryPeriod
	for i := range 3 {
		who := fmt.Sprintf("native-%d", i)
		mgr := crManager(t, ns, ctrl.Options{
			LeaderElection: true, LeaderElectionID: "operator-native", LeaderElectionNamespace: ns,
			LeaderElectionReleaseOnCancel: true, LeaseDuration: &ld, RenewDeadline: &rd, RetryPeriod: &rp,
		})
		if err := ctrl.NewControllerManagedBy(mgr).Named("configmaps-native").For(&corev1.ConfigMap{}).Complete(native.reconciler(who, nil)); err != nil {
			t.Fatal(err)
		}
		nstops[who], ndones[who] = runManager(mgr)
	}
	t.Cleanup(func() {
		for who, stop := range nstops {
			stop()
			<-ndones[who]
		}
	})
	nfirst := native.await(t, time.Time{}, "")
	ncur := nfirst.who
	var nativeHandovers []time.Duration
	for round := range rounds {
		stopped := time.Now()
		nstops[ncur]()
		<-ndones[ncur]
		delete(nstops, ncur)
		next := native.await(t, stopped, ncur)
		nativeHandovers = append(nativeHandovers, next.at.Sub(stopped))
		t.Logf("controller-runtime round %d: stopped %s's manager; %s reconciled %v later", round, ncur, next.who, next.at.Sub(stopped).Round(time.Millisecond))
		ncur = next.who
	}
	sort.Slice(regentHandovers, func(i, j int) bool { return regentHandovers[i] < regentHandovers[j] })
	sort.Slice(nativeHandovers, func(i, j int) bool { return nativeHandovers[i] < nativeHandovers[j] })
	t.Logf("leader's manager stopped -> next replica reconciling: regent %v, controller-runtime's election %v", regentHandovers, nativeHandovers)
	if last, ok := log.last(); !ok || last.who == "" {
		t.Error("no reconcile under regent")
	}
}
