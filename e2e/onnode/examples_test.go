package onnode

import (
	"context"
	"flag"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var watchFor = flag.Duration("onnode.watch", 3*time.Minute, "how long the examples run as Deployments while their probes are watched")

// 1. Each example's manifests, unchanged, as a Deployment: exactly one leader (or critical
// section) at a time, from the Pods' logs on one clock, and every Pod stays Ready and is never
// restarted by its probes, for -onnode.watch (3 minutes); and each runs under its own
// ServiceAccount with exactly the Roles its manifests grant (checkRBAC).
func TestExamplesRunAsDeployments(t *testing.T) {
	nss := make([]string, len(examples))
	for i, ex := range examples {
		nss[i] = deploy(t, ex)
	}
	for i, ex := range examples {
		checkRBAC(t, nss[i], ex) // 6. each under its own ServiceAccount, with exactly its Role
	}
	t.Logf("all four Deployments Ready; watching them for %v", *watchFor)
	deadline := time.Now().Add(*watchFor)
	for time.Now().Before(deadline) {
		for i, ex := range examples {
			pods, err := admin().CoreV1().Pods(nss[i]).List(context.Background(), metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				for _, c := range p.Status.ContainerStatuses {
					if c.RestartCount > 0 || !c.Ready {
						t.Fatalf("%s: pod %s ready=%v restarts=%d:\n%s", ex.name, p.Name, c.Ready, c.RestartCount, podSummary(nss[i]))
					}
				}
			}
		}
		time.Sleep(5 * time.Second) // as a liveness probe's period: checks the Pods, not timing
	}
	for i, ex := range examples {
		ts := terms(podLogs(t, nss[i]), ex)
		for _, o := range overlaps(ts) {
			t.Errorf("%s: overlap: %s", ex.name, o)
		}
		leaders := map[string]bool{}
		for _, tm := range ts {
			leaders[tm.pod] = true
		}
		switch {
		case len(ts) == 0:
			t.Errorf("%s: nobody led in %v", ex.name, *watchFor)
		case ex.name != "distributed-lock" && len(leaders) != 1:
			t.Errorf("%s: %d Pods led, want one leader for the whole run: %v", ex.name, len(leaders), ts)
		}
		t.Logf("%s: %d terms by %d Pods, no overlap", ex.name, len(ts), len(leaders))
	}
}
