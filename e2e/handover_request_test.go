package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/lock"
)

// annotateHandover asks for a handover as kubectl annotate lease NAME regent.dev/handover-to=TO
// does: a merge patch of the annotation alone.
func annotateHandover(t *testing.T, ns, name, to string) {
	t.Helper()
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{lock.HandoverToAnnotation: to}}})
	_, err := cp.Client(controlplane.AdminUser).CoordinationV1().Leases(ns).Patch(context.Background(), name,
		types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// endOf is when the term iv ended, once it has.
func (r *terms) endOf(t *testing.T, iv interval) time.Time {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.done {
		if d.who == iv.who && d.start.Equal(iv.start) {
			return d.end
		}
	}
	t.Fatalf("%s's term has not ended", iv.who)
	panic("unreachable")
}

// An operator's handover request on the real API server: three candidates run their work with
// RunAsLeader (each campaigning again when it returns); an annotation on the Lease names one of
// the followers. The leader must notice it at its next renewal, stop its work, and hand over;
// the named follower must lead next, and no two works may overlap (checked throughout).
// Measured: from the request to the new work's start, and the gap without a leader.
func TestAnOperatorsHandoverRequestMovesTheLeadership(t *testing.T) {
	ns := namespace(t)
	_, rec, _ := runThree(t, ns, "requested", fast)
	cur := rec.next(t)
	time.Sleep(fast.RetryPeriod) // the followers settle on the held record
	var latency, gaps []time.Duration
	for round := range 4 {
		to := "c" + string(rune('0'+(int(cur.who[1]-'0')+1+round%2)%3))
		asked := time.Now()
		annotateHandover(t, ns, "requested", to)
		n := rec.next(t)
		if n.who != to {
			t.Fatalf("round %d: asked for %s, but %s leads", round, to, n.who)
		}
		if n.token.Seq <= cur.token.Seq {
			t.Errorf("round %d: token %v after %v", round, n.token, cur.token)
		}
		latency = append(latency, n.start.Sub(asked))
		gaps = append(gaps, n.start.Sub(rec.endOf(t, cur)))
		cur = n
		time.Sleep(fast.RetryPeriod) // the old leader campaigns again and settles
	}
	slices.Sort(latency)
	slices.Sort(gaps)
	t.Logf("request to the named candidate's work: %v; gap without a leader: %v", latency, gaps)
	// The holder reads the request at its next renewal, within a RetryPeriod (plus a request).
	if worst := latency[len(latency)-1]; worst > fast.RetryPeriod+time.Second {
		t.Errorf("a handover request took %v to move the leadership, more than a RetryPeriod (%v) and a second", worst, fast.RetryPeriod)
	}
	if worst := gaps[len(gaps)-1]; worst > time.Second {
		t.Errorf("a requested handover left the lock without a leader for %v", worst)
	}
}
