package onnode

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// 2. kubectl delete pod <leader>: kubelet's SIGTERM, the work stops, the lease is handed over
// (--hand-over-on-stop) to the newest Ready Pod, which leads next, with no overlap.
// Measured: from the delete to the next leader's work, and from the old leader's last line (its
// work stopped, after SIGTERM) to the next leader's work.
func TestDeletingTheLeaderPodHandsOver(t *testing.T) {
	ex := examples[0] // lease-leader
	ns := deploy(t, ex)
	logs := collectLogs(t, ns)
	ctx := context.Background()
	for round := range 3 {
		first := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.end.IsZero() })
		deleted := time.Now()
		if err := admin().CoreV1().Pods(ns).Delete(ctx, first.pod, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		next := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.pod != first.pod && tm.start.After(first.start) })
		old := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.pod == first.pod && tm.start.Equal(first.start) && !tm.end.IsZero() })
		// The stopping leader named its successor (the newest Ready Pod when its work stopped;
		// the rule is unit-tested in readypeer: a replacement Pod may already be Ready then),
		// and that Pod led next.
		successor := logs.awaitField(t, first.pod, "stopping: handing the lock over to the successor", "to", time.Minute)
		if next.pod != successor {
			t.Errorf("round %d: %s handed the lock over to %s, but %s led next", round, first.pod, successor, next.pod)
		}
		t.Logf("round %d: deleted %s; its work stopped %v after the delete; it named %s; %s led %v after the delete, %v after the old work stopped",
			round, first.pod, old.end.Sub(deleted).Round(time.Millisecond), successor, next.pod,
			next.start.Sub(deleted).Round(time.Millisecond), next.start.Sub(old.end).Round(time.Millisecond))
		if gap := next.start.Sub(old.end); gap > time.Second {
			t.Errorf("round %d: the next leader started %v after the old work stopped; want a handover within a second", round, gap)
		}
		awaitReady(t, ns, ex.deployment, 2*time.Minute)
	}
	for _, o := range overlaps(terms(logs.snapshot(), ex)) {
		t.Errorf("overlap: %s", o)
	}
}

// 3. kubectl rollout restart of each Deployment: leadership ends up on a new Pod, with no
// overlap; the lease-leader example, which runs with --hand-over-on-stop, never passes the
// leadership to another old Pod (a stopping leader names the newest Ready Pod); the longest time without a leader is measured, and the same for client-go's
// leaderelection as a Deployment on the same node (overlaps reported, not failed, for it).
func TestRolloutRestart(t *testing.T) {
	for _, ex := range append(examples, clientGo) {
		t.Run(ex.name, func(t *testing.T) {
			ns := deploy(t, ex)
			logs := collectLogs(t, ns)
			logs.awaitTerm(t, ex, time.Minute, func(term) bool { return true })
			pods, err := admin().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			before := map[string]bool{}
			for _, p := range pods.Items {
				before[p.Name] = true
			}
			patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
			restarted := time.Now()
			if _, err := admin().AppsV1().Deployments(ns).Patch(context.Background(), ex.deployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			awaitReady(t, ns, ex.deployment, 3*time.Minute)
			last := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return !before[tm.pod] && tm.start.After(restarted) })
			ts := terms(logs.snapshot(), ex)
			for _, o := range overlaps(ts) {
				if ex == clientGo {
					t.Logf("client-go overlap: %s", o)
				} else {
					t.Errorf("overlap: %s", o)
				}
			}
			if ex.name == "lease-leader" { // runs with --hand-over-on-stop
				for _, tm := range ts {
					if tm.start.After(restarted) && before[tm.pod] {
						t.Errorf("after the restart the old Pod %s led (from %v): a stopping leader must hand over to a new, Ready Pod",
							tm.pod, tm.start.Sub(restarted).Round(time.Millisecond))
					}
				}
			}
			var longest time.Duration
			for i := 1; i < len(ts); i++ {
				if prev := ts[i-1]; !prev.end.IsZero() && ts[i].start.After(restarted) {
					longest = max(longest, ts[i].start.Sub(prev.end))
				}
			}
			t.Logf("%s: rollout restart took %v; leadership on new pod %s; %d terms; longest time without a leader %v",
				ex.name, time.Since(restarted).Round(time.Millisecond), last.pod, len(ts), longest.Round(time.Millisecond))
		})
	}
}
