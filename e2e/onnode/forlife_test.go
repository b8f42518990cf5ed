package onnode

import (
	"context"
	"testing"
	"time"

	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// 4. Leader for life: the leader Pod deleted gracefully, deleted with --grace-period=0 --force,
// and evicted through the Eviction API. The next Pod leads once the lock is gone; after a
// graceful deletion or an eviction, only after the old leader's work has stopped. A forced
// deletion removes the Pod object at once, while kubelet may still be stopping its container:
// the lock is collected with the object, so the next leader may start before the old container
// ends (docs/leader-for-life.md). That overlap is measured and reported, not failed.
func TestLeaderForLifePodDeletedOrEvicted(t *testing.T) {
	ctx := context.Background()
	for _, ex := range []example{examples[1], examples[2]} { // configmap, leaderlock
		t.Run(ex.name, func(t *testing.T) {
			ns := deploy(t, ex)
			logs := collectLogs(t, ns)
			for _, how := range []string{"delete", "evict", "force delete"} {
				first := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.end.IsZero() })
				at := time.Now()
				var err error
				switch how {
				case "delete":
					err = admin().CoreV1().Pods(ns).Delete(ctx, first.pod, metav1.DeleteOptions{})
				case "evict":
					err = admin().CoreV1().Pods(ns).EvictV1(ctx, &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: first.pod, Namespace: ns}})
				case "force delete":
					zero := int64(0)
					err = admin().CoreV1().Pods(ns).Delete(ctx, first.pod, metav1.DeleteOptions{GracePeriodSeconds: &zero})
				}
				if err != nil {
					t.Fatalf("%s %s: %v", how, first.pod, err)
				}
				next := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.pod != first.pod && tm.start.After(first.start) })
				old := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.pod == first.pod && tm.start.Equal(first.start) && !tm.end.IsZero() })
				gap := next.start.Sub(old.end)
				t.Logf("%s %s: next leader %s %v after; old work ended %v after; next began %v after the old work ended",
					how, first.pod, next.pod, next.start.Sub(at).Round(time.Millisecond), old.end.Sub(at).Round(time.Millisecond), gap.Round(time.Millisecond))
				if how != "force delete" && gap < 0 {
					t.Errorf("%s: the next leader began %v before the old leader's work ended", how, -gap)
				}
				awaitReady(t, ns, ex.deployment, 2*time.Minute)
			}
		})
	}
}
