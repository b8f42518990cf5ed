package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/regent-k8s/regent/e2e/controlplane"
)

// watchGone returns a channel that receives the time the named ConfigMap is deleted.
func watchGone(b *testing.B, ns, name string) <-chan time.Time {
	b.Helper()
	w, err := cp.Client(controlplane.AdminUser).CoreV1().ConfigMaps(ns).Watch(context.Background(), metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String(),
	})
	if err != nil {
		b.Fatal(err)
	}
	gone := make(chan time.Time, 1)
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			if ev.Type == watch.Deleted {
				gone <- time.Now()
				return
			}
		}
	}()
	return gone
}

func quantile(d []time.Duration, q float64) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[int(q*float64(len(s)-1))].Microseconds()) / 1000
}

// BenchmarkForLifeFailover measures, per iteration, the time from deleting the leader's Pod to
// the next leader's work starting (failover-ms), and the time until the lock object is gone
// (lock-gone-ms). gc-ms is the garbage collector's own latency on an owned ConfigMap that no
// candidate watches.
func BenchmarkForLifeFailover(b *testing.B) {
	ns := namespace(b)
	admin := cp.Client(controlplane.AdminUser)
	ctx := context.Background()
	var failover, gone, gc []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		name := fmt.Sprintf("bench-%d", i)
		a := newLifeCandidate(b, lifeKinds[0], controlplane.AdminUser, newPod(b, ns, "a-"+name), name)
		waiter := newLifeCandidate(b, lifeKinds[0], controlplane.AdminUser, newPod(b, ns, "b-"+name), name)
		aLead, err := a.election.Lead(ctx)
		if err != nil {
			b.Fatal(err)
		}
		started := make(chan time.Time, 1)
		done := make(chan error, 1)
		go func() {
			done <- waiter.election.RunAsLeader(ctx, func(context.Context) error {
				started <- time.Now()
				return nil
			})
		}()
		lockGone := watchGone(b, ns, name)
		time.Sleep(200 * time.Millisecond) // let the waiter's watches open
		b.StartTimer()
		t0 := time.Now()
		if err := admin.CoreV1().Pods(ns).Delete(ctx, "a-"+name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		t1 := <-started
		b.StopTimer()
		failover = append(failover, t1.Sub(t0))
		gone = append(gone, (<-lockGone).Sub(t0))
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		aLead.Release(ctx)

		// The garbage collector alone: an owned ConfigMap nobody watches for a lock.
		owner := newPod(b, ns, "gc-"+name)
		yes := true
		if _, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: "gc-" + name, OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: owner.Name, UID: owner.UID, Controller: &yes}},
		}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		collected := watchGone(b, ns, "gc-"+name)
		time.Sleep(100 * time.Millisecond)
		t0 = time.Now()
		if err := admin.CoreV1().Pods(ns).Delete(ctx, owner.Name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		gc = append(gc, (<-collected).Sub(t0))
		b.StartTimer()
	}
	b.ReportMetric(quantile(failover, 0.5), "failover-p50-ms")
	b.ReportMetric(quantile(failover, 0.99), "failover-p99-ms")
	b.ReportMetric(quantile(gone, 0.5), "lock-gone-p50-ms")
	b.ReportMetric(quantile(gc, 0.5), "gc-p50-ms")
	b.ReportMetric(quantile(gc, 0.99), "gc-p99-ms")
}

// BenchmarkForLifeFailoverBecomeSchedule is BenchmarkForLifeFailover's measure for a waiter on
// the schedule of operator-lib's leader.Become (becomeModel): a Pod holds the lock ConfigMap,
// the waiter starts, and after a wait drawn uniformly from [0, 40 s) (the waiter's backoff
// depends on how long it has waited) the holder's Pod is deleted. failover-ms is the time from
// the deletion to the waiter's successful create; gc-ms the time until the garbage collector
// removed the lock. waiting-req/s is the waiter's request rate before the deletion.
func BenchmarkForLifeFailoverBecomeSchedule(b *testing.B) {
	ns := namespace(b)
	admin := cp.Client(controlplane.AdminUser)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	var failover, gone []time.Duration
	var requests, waited float64
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		name := fmt.Sprintf("become-%d", i)
		holder := newPod(b, ns, "a-"+name)
		if err := becomeModel(ctx, admin, holder, name); err != nil {
			b.Fatal(err)
		}
		var sent atomic.Int64
		cfg := rest.CopyConfig(cp.Config(controlplane.AdminUser))
		cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counting(&sent, rt) })
		waiter := newPod(b, ns, "b-"+name)
		done := make(chan time.Time, 1)
		go func() {
			if err := becomeModel(ctx, kubernetes.NewForConfigOrDie(cfg), waiter, name); err != nil {
				b.Error(err)
			}
			done <- time.Now()
		}()
		lockGone := watchGone(b, ns, name)
		wait := time.Duration(rng.Int64N(int64(40 * time.Second)))
		time.Sleep(wait)
		requests += float64(sent.Load())
		waited += wait.Seconds()
		b.StartTimer()
		t0 := time.Now()
		if err := admin.CoreV1().Pods(ns).Delete(ctx, holder.Name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		t1 := <-done
		b.StopTimer()
		failover = append(failover, t1.Sub(t0))
		gone = append(gone, (<-lockGone).Sub(t0))
		b.StartTimer()
	}
	b.ReportMetric(quantile(failover, 0.5), "failover-p50-ms")
	b.ReportMetric(quantile(failover, 1), "failover-max-ms")
	b.ReportMetric(quantile(gone, 0.5), "gc-p50-ms")
	b.ReportMetric(requests/waited, "waiting-req/s")
}
