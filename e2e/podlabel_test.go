package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/podlabel"
)

// labelWatch follows which Pods of a namespace carry a label, in the API server's order.
type labelWatch struct {
	key string

	mu       sync.Mutex
	labelled map[string]bool
	most     int // the most Pods labelled at once since the last reset
	changed  chan struct{}
}

func watchLabel(t *testing.T, ns, key string) *labelWatch {
	t.Helper()
	pods := cp.Client(controlplane.AdminUser).CoreV1().Pods(ns)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := pods.Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lw := &labelWatch{key: key, labelled: map[string]bool{}, changed: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			lw.mu.Lock()
			if ev.Type != watch.Deleted && p.Labels[key] == podlabel.Value {
				lw.labelled[p.Name] = true
			} else {
				delete(lw.labelled, p.Name)
			}
			lw.most = max(lw.most, len(lw.labelled))
			close(lw.changed)
			lw.changed = make(chan struct{})
			lw.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); w.Stop(); <-done })
	return lw
}

// await waits until the labelled Pods are exactly want.
func (lw *labelWatch) await(t *testing.T, what string, want ...string) time.Time {
	t.Helper()
	deadline := time.After(guard)
	for {
		lw.mu.Lock()
		got := make([]string, 0, len(lw.labelled))
		for name := range lw.labelled {
			got = append(got, name)
		}
		changed := lw.changed
		lw.mu.Unlock()
		slices.Sort(got)
		if slices.Equal(got, want) {
			return time.Now()
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("%s: Pods labelled %v, want %v", what, got, want)
		}
	}
}

// resetMost starts counting the most Pods labelled at once afresh, and returns the last count.
func (lw *labelWatch) resetMost() int {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	m := lw.most
	lw.most = len(lw.labelled)
	return m
}

func createPod(t *testing.T, ns, name string, labels map[string]string) *corev1.Pod {
	t.Helper()
	p, err := cp.Client(controlplane.AdminUser).CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "never-pulled"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Three candidates, each in a Pod of its own, label their Pod while they lead. A Service that
// selects the label must never see two leaders' Pods after a graceful handover; after a crash,
// the new leader clears the crashed one's label.
func TestTheLeadersPodIsLabelledAndOnlyItsPod(t *testing.T) {
	ns := namespace(t)
	const lockName = "routed"
	key := podlabel.KeyFor(lockName)
	lw := watchLabel(t, ns, key)
	ctx, cancel := context.WithCancel(context.Background())
	rec := newTerms()
	stops := make(chan chan struct{})
	var wg sync.WaitGroup
	cands := map[string]*candidate{}
	stopCand := map[string]context.CancelFunc{}
	for i := range 3 {
		c := newCandidate(t, controlplane.AdminUser, ns, lockName, fmt.Sprintf("c%d", i), fast)
		label, err := podlabel.New(c.client.CoreV1(), createPod(t, ns, c.name, map[string]string{"app": "routed"}), lockName,
			podlabel.WithLogger(zaptest.NewLogger(t).Named(c.name)))
		if err != nil {
			t.Fatal(err)
		}
		if c.election, err = leader.New(c.lease, leader.WithMarker(label), leader.WithLogger(zaptest.NewLogger(t).Named(c.name))); err != nil {
			t.Fatal(err)
		}
		cctx, ccancel := context.WithCancel(ctx)
		cands[c.name], stopCand[c.name] = c, ccancel
		runCandidate(cctx, c, rec, stops, &wg)
	}
	t.Cleanup(func() { cancel(); wg.Wait(); rec.check(t) })

	cur := rec.next(t)
	lw.await(t, "the first leader's Pod", cur.who)
	lw.resetMost()
	for i := range 3 {
		stopped := make(chan struct{})
		stops <- stopped
		<-stopped
		next := rec.next(t)
		labelledAt := lw.await(t, fmt.Sprintf("handover %d", i), next.who)
		if most := lw.resetMost(); most > 1 {
			t.Errorf("handover %d (%s -> %s): %d Pods labelled at once; the old leader must unlabel before it releases", i, cur.who, next.who, most)
		}
		t.Logf("handover %d: %s -> %s, labelled %v after its term began", i, cur.who, next.who, labelledAt.Sub(next.start).Round(time.Millisecond))
		cur = next
	}

	// A crash: the leader is cut off from the API server and its process ends, so it can
	// neither unlabel nor release. The next leader, a lease duration later, clears the label.
	cands[cur.who].cut.cut.Store(true)
	stopCand[cur.who]()
	next := rec.next(t)
	lw.await(t, "after the crash of "+cur.who, next.who)
	t.Logf("crash of %s: %s leads and its Pod alone is labelled", cur.who, next.who)
}

// A StatefulSet Pod deleted and created again under the same name is another Pod: the old
// process, still running its release, must not remove the label of the new Pod's process.
func TestAReplacedPodKeepsItsNewLabel(t *testing.T) {
	ns := namespace(t)
	key := podlabel.KeyFor("replaced")
	pods := cp.Client(controlplane.AdminUser).CoreV1().Pods(ns)
	old := createPod(t, ns, "sts-0", nil)
	c := newCandidate(t, controlplane.AdminUser, ns, "replaced", "old", fast)
	label, err := podlabel.New(c.client.CoreV1(), old, "replaced", podlabel.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	term, err := c.lease.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := label.Mark(context.Background(), term); err != nil {
		t.Fatal(err)
	}
	if err := pods.Delete(context.Background(), "sts-0", metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	replacement := createPod(t, ns, "sts-0", map[string]string{key: podlabel.Value})
	if replacement.UID == old.UID {
		t.Fatal("the replacement has the old Pod's UID")
	}
	uctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := label.Unmark(uctx, term); err != nil {
		t.Errorf("the old process's Unmark: %v, want nil: the label is not its own", err)
	}
	if err := label.Mark(uctx, term); err == nil || uctx.Err() != nil {
		t.Errorf("the old process's Mark: %v (context: %v), want a failure at once: its Pod is gone", err, uctx.Err())
	} else {
		t.Logf("the old process's Mark: %v", err)
	}
	p, err := pods.Get(context.Background(), "sts-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Labels[key] != podlabel.Value {
		t.Fatalf("the old process removed the replacement Pod's label (labels %v)", p.Labels)
	}
	_ = term.Release(context.Background())
}
