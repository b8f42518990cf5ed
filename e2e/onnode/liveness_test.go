package onnode

import (
	"bufio"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// 5. The leader's work hangs (the example's --hang-after) while its Lease renews: the example's
// /healthz fails once the work has not ticked for three ticks, kubelet's liveness probe (the
// manifest's, unchanged) restarts the container, a follower takes over once the Lease expires and
// never before the old container has ended, and the restarted container rejoins as a follower.
func TestLivenessProbeRestartsAHungLeader(t *testing.T) {
	ex := examples[0] // lease-leader
	ns := deploy(t, ex)
	ctx := context.Background()
	// The fault is a flag: add it to the Deployment, as a user trying it would, and let it roll.
	patch := `[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--tick=1s"},` +
		`{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--hang-after=5s"}]`
	patched := time.Now()
	if _, err := admin().AppsV1().Deployments(ns).Patch(ctx, ex.deployment, types.JSONPatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	logs := collectLogs(t, ns)
	awaitReady(t, ns, ex.deployment, 2*time.Minute)
	// During the rollout an old Pod, stopping, may still lead for a moment after the patch: the
	// term that hangs is one of a Pod that runs the patched template.
	patchedPods := podsWithArg(t, ns, "--hang-after=5s")
	hung := logs.awaitTerm(t, ex, 2*time.Minute, func(tm term) bool { return patchedPods[tm.pod] && tm.start.After(patched) })
	next := logs.awaitTerm(t, ex, 3*time.Minute, func(tm term) bool {
		return patchedPods[tm.pod] && tm.pod != hung.pod && tm.start.After(hung.start)
	})
	old := logs.awaitTerm(t, ex, time.Minute, func(tm term) bool { return tm.pod == hung.pod && tm.start.Equal(hung.start) && !tm.end.IsZero() })
	lines := logs.snapshot()
	var hangAt time.Time
	for _, l := range lines {
		if l.Pod == hung.pod && strings.HasPrefix(l.Msg, "the work hangs on purpose") {
			hangAt = l.At
		}
	}
	if hangAt.IsZero() {
		t.Fatalf("%s never logged that its work hangs", hung.pod)
	}
	t.Logf("%s led at %s, its work hung at %s, its container ended %v later; %s led %v after that",
		hung.pod, hung.start.Format("15:04:05.000"), hangAt.Format("15:04:05.000"), old.end.Sub(hangAt).Round(time.Millisecond),
		next.pod, next.start.Sub(old.end).Round(time.Millisecond))
	if !next.start.After(old.end) {
		t.Errorf("%s led at %s, before the hung leader's container ended at %s", next.pod, next.start.Format("15:04:05.000"), old.end.Format("15:04:05.000"))
	}

	// The container restarts in the same Pod, under the same identity: it must wait for the
	// record its predecessor left like anyone else, and follow the new leader.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := admin().CoreV1().Pods(ns).Get(ctx, hung.pod, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st := containerStatus(p); st != nil && st.RestartCount >= 1 && st.Ready {
			if st.LastTerminationState.Terminated == nil {
				t.Errorf("%s restarted without a recorded termination", hung.pod)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not restarted and Ready again:\n%s", hung.pod, podSummary(ns))
		}
		time.Sleep(500 * time.Millisecond) // polls the API server
	}
	if !followsTheLease(t, ns, hung.pod) {
		t.Errorf("the restarted container of %s did not log that it follows the lease", hung.pod)
	}
	for _, tm := range terms(logs.snapshot(), ex) {
		if tm.pod == hung.pod && tm.start.After(hung.start) {
			t.Errorf("the restarted container of %s led at %s while %s led", hung.pod, tm.start.Format("15:04:05.000"), next.pod)
		}
	}
	for _, o := range overlaps(terms(logs.snapshot(), ex)) {
		t.Errorf("overlap: %s", o)
	}
}

// podsWithArg returns the names of the Pods in ns whose first container is given arg.
func podsWithArg(t *testing.T, ns, arg string) map[string]bool {
	t.Helper()
	pods, err := admin().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && slices.Contains(p.Spec.Containers[0].Args, arg) {
			out[p.Name] = true
		}
	}
	if len(out) == 0 {
		t.Fatalf("no Pod runs with %s:\n%s", arg, podSummary(ns))
	}
	return out
}

func containerStatus(p *corev1.Pod) *corev1.ContainerStatus {
	if len(p.Status.ContainerStatuses) == 0 {
		return nil
	}
	return &p.Status.ContainerStatuses[0]
}

// followsTheLease reports whether the current container of pod logged regent's "following the
// lease" (the lock's own logger, which the collector leaves out).
func followsTheLease(t *testing.T, ns, pod string) bool {
	t.Helper()
	rc, err := admin().CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{}).Stream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	s := bufio.NewScanner(rc)
	for s.Scan() {
		if strings.Contains(s.Text(), `"msg":"following the lease"`) {
			return true
		}
	}
	return false
}
