package onnode

import (
	"context"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The semaphore example's manifests, unchanged: of its four replicas, two work at once, under
// exactly the Role its manifests grant. Deleting a working Pod (kubectl delete pod) stops its
// work, releases its slot, and a waiting Pod takes the slot: at no instant do more than two Pods
// work, by their logs on one clock.
func TestSemaphoreExampleOnTheNode(t *testing.T) {
	ex := semaphoreWorker
	ns := deploy(t, ex)
	checkRBAC(t, ns, ex)
	logs := collectLogs(t, ns)
	first := logs.awaitTerm(t, ex, time.Minute, func(term) bool { return true })
	logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.pod != first.pod })

	deleted := time.Now()
	if err := admin().CoreV1().Pods(ns).Delete(context.Background(), first.pod, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	ended := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.pod == first.pod && !tm.end.IsZero() })
	next := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.start.After(ended.end) })
	t.Logf("deleted the working Pod %s: its work stopped %v after the delete, and %s worked %v after that",
		first.pod, ended.end.Sub(deleted).Round(time.Millisecond), next.pod, next.start.Sub(ended.end).Round(time.Millisecond))
	awaitReady(t, ns, ex.deployment, 2*time.Minute)

	ts := terms(logs.snapshot(), ex)
	if most := mostAtOnce(ts); most > 2 {
		t.Errorf("%d Pods worked at once, want at most 2: %v", most, ts)
	}
	if most := mostAtOnce(ts); most < 2 {
		t.Errorf("at most %d Pods worked at once, want the semaphore's 2: %v", most, ts)
	}
}

// mostAtOnce is the largest number of terms open at one instant; an open term runs until now.
func mostAtOnce(ts []term) int {
	type edge struct {
		at    time.Time
		delta int
	}
	var edges []edge
	for _, tm := range ts {
		end := tm.end
		if end.IsZero() {
			end = time.Now()
		}
		edges = append(edges, edge{tm.start, 1}, edge{end, -1})
	}
	sort.Slice(edges, func(i, j int) bool {
		if !edges[i].at.Equal(edges[j].at) {
			return edges[i].at.Before(edges[j].at)
		}
		return edges[i].delta < edges[j].delta // an end before a start at the same instant
	})
	most, running := 0, 0
	for _, e := range edges {
		running += e.delta
		most = max(most, running)
	}
	return most
}
