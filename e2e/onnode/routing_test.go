package onnode

import (
	"context"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// named is what the Service's endpoints named from a moment on.
type named struct {
	at   time.Time
	pods []string
}

// endpointWatch follows the ready endpoints of a Service's EndpointSlices, by Pod name.
type endpointWatch struct {
	mu      sync.Mutex
	slices  map[string][]string // slice name -> ready Pods
	most    int                 // the most ready Pods at once since the last reset
	changed chan struct{}
	history []named
}

func watchEndpoints(t *testing.T, ns, service string) *endpointWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w, err := admin().DiscoveryV1().EndpointSlices(ns).Watch(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + service})
	if err != nil {
		t.Fatal(err)
	}
	ew := &endpointWatch{slices: map[string][]string{}, changed: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			s, ok := ev.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			var ready []string
			for _, e := range s.Endpoints {
				if e.TargetRef != nil && (e.Conditions.Ready == nil || *e.Conditions.Ready) {
					ready = append(ready, e.TargetRef.Name)
				}
			}
			ew.mu.Lock()
			if ev.Type == watch.Deleted {
				delete(ew.slices, s.Name)
			} else {
				ew.slices[s.Name] = ready
			}
			ew.most = max(ew.most, len(ew.readyLocked()))
			ew.history = append(ew.history, named{at: time.Now(), pods: ew.readyLocked()})
			close(ew.changed)
			ew.changed = make(chan struct{})
			ew.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return ew
}

func (ew *endpointWatch) readyLocked() []string {
	var out []string
	for _, pods := range ew.slices {
		out = append(out, pods...)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// await waits until the Service's ready endpoints are exactly the Pods want, and returns when.
func (ew *endpointWatch) await(t *testing.T, what string, limit time.Duration, want ...string) time.Time {
	t.Helper()
	deadline := time.After(limit)
	for {
		ew.mu.Lock()
		got, changed := ew.readyLocked(), ew.changed
		ew.mu.Unlock()
		if slices.Equal(got, want) {
			return time.Now()
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: the Service's ready endpoints are %v after %v, want %v", what, got, limit, want)
		}
	}
}

// namedBetween reports whether the Service named pod at some moment in [from, to).
func (ew *endpointWatch) namedBetween(pod string, from, to time.Time) bool {
	ew.mu.Lock()
	defer ew.mu.Unlock()
	for _, h := range ew.history {
		if !h.at.Before(from) && h.at.Before(to) && slices.Contains(h.pods, pod) {
			return true
		}
	}
	return false
}

func (ew *endpointWatch) resetMost() int {
	ew.mu.Lock()
	defer ew.mu.Unlock()
	m := ew.most
	ew.most = len(ew.readyLocked())
	return m
}

// 1. of issue 14: the lease-leader example's Service (deploy/service.yaml) selects the Pod the
// leader labels. Through kubectl delete pod of the leader, three times, and a crash of the
// leader's container, the Service's EndpointSlice must name the new leader alone; measured: from
// the new leader's first line to the EndpointSlice naming it alone. After a delete the Service
// must never name two Pods.
func TestTheServiceReachesOnlyTheLeader(t *testing.T) {
	ex := examples[0] // lease-leader, with --label-leader-pod
	ns := deploy(t, ex)
	logs := collectLogs(t, ns)
	ew := watchEndpoints(t, ns, "lease-leader-active")
	ctx := context.Background()
	cur := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.end.IsZero() })
	at := ew.await(t, "the first leader", time.Minute, cur.pod)
	t.Logf("first leader %s; the EndpointSlice named it alone %v after its first line", cur.pod, at.Sub(cur.start).Round(time.Millisecond))
	ew.resetMost()
	var lags []time.Duration
	for round := range 3 {
		if err := admin().CoreV1().Pods(ns).Delete(ctx, cur.pod, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		next := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.pod != cur.pod && tm.start.After(cur.start) })
		at := ew.await(t, "after the delete of "+cur.pod, time.Minute, next.pod)
		lag := at.Sub(next.start)
		lags = append(lags, lag)
		if most := ew.resetMost(); most > 1 {
			t.Errorf("round %d: the Service named %d Pods at once while %s handed over to %s", round, most, cur.pod, next.pod)
		}
		t.Logf("round %d: deleted %s; %s leads; the EndpointSlice named it alone %v after its first line", round, cur.pod, next.pod, lag.Round(time.Millisecond))
		awaitReady(t, ns, ex.deployment, 2*time.Minute)
		cur = next
	}

	// A crash: the leader's container is killed. Its restarted process clears the label its
	// predecessor left before it campaigns, and the next leader (after the lease expired) labels
	// itself.
	p, err := admin().CoreV1().Pods(ns).Get(ctx, cur.pod, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := containerStatus(p)
	if st == nil {
		t.Fatalf("%s has no container status", cur.pod)
	}
	killed := time.Now()
	if err := n.KillContainer(ctx, st.ContainerID); err != nil {
		t.Fatal(err)
	}
	emptied := ew.await(t, "after the crash of "+cur.pod, time.Minute)
	next := logs.awaitTerm(t, ex, 2*time.Minute, func(tm term) bool { return tm.start.After(killed) })
	at = ew.await(t, "after the crash of "+cur.pod, time.Minute, next.pod)
	if next.pod != cur.pod && ew.namedBetween(cur.pod, emptied, next.start) {
		t.Errorf("after its crash the Service named %s again, a follower now: its restarted process must clear the old label before it is Ready", cur.pod)
	}
	t.Logf("crash of %s: the Service named no Pod %v after the kill; %s leads %v after the kill; the EndpointSlice named it alone %v after its first line",
		cur.pod, emptied.Sub(killed).Round(time.Millisecond), next.pod, next.start.Sub(killed).Round(time.Millisecond), at.Sub(next.start).Round(time.Millisecond))
	slices.Sort(lags)
	t.Logf("handovers by delete: EndpointSlice lag after the new leader's first line: %v", lags)
	for _, o := range overlaps(terms(logs.snapshot(), ex)) {
		t.Errorf("overlap: %s", o)
	}
}
