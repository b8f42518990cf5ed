package onnode

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// shards is the sharding example's number of shards (examples/sharded-worker).
const shards = 8

// The sharding example's manifests, unchanged, under exactly the Role they grant: its 8 shards
// spread over its 3 replicas (2 or 3 each). Then what an operator does: kubectl delete pod of a
// member (its shards stop, are released, and are taken by the others within a second, then
// spread again over the replacement), kubectl scale to 4 (exactly the 2 shards needed move), and
// kubectl rollout restart (every shard ends up on the new Pods). At no instant does a shard run
// in two Pods, by their logs on one clock, and no Pod is restarted.
func TestShardingExampleOnTheNode(t *testing.T) {
	ex := shardedWorker
	ns := deploy(t, ex)
	checkRBAC(t, ns, ex)
	logs := collectLogs(t, ns)
	ctx := context.Background()
	held := awaitBalanced(t, logs, 3, nil)
	t.Logf("3 replicas: %v", held)

	// kubectl delete pod: the member leaves; its shards go to the others, then to its replacement.
	victim := slices.Sorted(maps.Keys(held))[0]
	deleted := time.Now()
	if err := admin().CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{victim: true}
	held = awaitBalanced(t, logs, 3, gone)
	var slowest time.Duration
	byShard := shardTerms(logs.snapshot(), ex)
	for shard, ts := range byShard {
		for i, tm := range ts {
			if tm.pod != victim || tm.end.IsZero() || i+1 == len(ts) {
				continue
			}
			gap := ts[i+1].start.Sub(tm.end)
			slowest = max(slowest, gap)
			if gap > time.Second {
				t.Errorf("shard %d: taken %v after %s's work stopped; want a handover within a second", shard, gap.Round(time.Millisecond), victim)
			}
		}
	}
	t.Logf("deleted %s: balanced again over its replacement %v after the delete; slowest handover of its shards %v: %v",
		victim, time.Since(deleted).Round(time.Millisecond), slowest.Round(time.Millisecond), held)
	awaitReady(t, ns, ex.deployment, 2*time.Minute)

	// kubectl scale --replicas=4: 8 shards over 4 members is 2 each; only the 2 shards of the
	// members that held 3 move.
	before := len(allTerms(logs.snapshot(), ex))
	scaled := time.Now()
	if _, err := admin().AppsV1().Deployments(ns).Patch(ctx, ex.deployment, types.MergePatchType, []byte(`{"spec":{"replicas":4}}`), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	held = awaitBalanced(t, logs, 4, gone)
	awaitReady(t, ns, ex.deployment, 2*time.Minute)
	if moved := len(allTerms(logs.snapshot(), ex)) - before; moved != 2 {
		t.Errorf("scaling 3 -> 4 moved %d shards, want the 2 needed", moved)
	}
	t.Logf("scaled to 4: balanced %v after the scale: %v", time.Since(scaled).Round(time.Millisecond), held)

	// kubectl rollout restart: every Pod is replaced; the shards end up on the new ones.
	pods, err := admin().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		gone[p.Name] = true
	}
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":%q}}}}}`, time.Now().Format(time.RFC3339))
	restarted := time.Now()
	if _, err := admin().AppsV1().Deployments(ns).Patch(ctx, ex.deployment, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	awaitReady(t, ns, ex.deployment, 3*time.Minute)
	held = awaitBalanced(t, logs, 4, gone)
	t.Logf("rollout restart: balanced over the new Pods %v after the restart: %v", time.Since(restarted).Round(time.Millisecond), held)

	byShard = shardTerms(logs.snapshot(), ex)
	for shard, ts := range byShard {
		for _, o := range overlaps(ts) {
			t.Errorf("shard %d: %s", shard, o)
		}
	}
	t.Logf("%d terms over %d shards, no shard in two Pods at once", len(allTerms(logs.snapshot(), ex)), len(byShard))
	pods, err = admin().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		for _, c := range p.Status.ContainerStatuses {
			if c.RestartCount > 0 {
				t.Errorf("pod %s was restarted %d times:\n%s", p.Name, c.RestartCount, podSummary(ns))
			}
		}
	}
}

// awaitBalanced waits until every shard runs in exactly one Pod, n Pods none of which is in
// gone run them, and each runs floor or ceil of shards/n; it returns the shards each Pod runs.
func awaitBalanced(t *testing.T, logs *collector, n int, gone map[string]bool) map[string][]int {
	t.Helper()
	const limit = 2 * time.Minute
	deadline := time.Now().Add(limit)
	for {
		held := running(logs.snapshot(), shardedWorker)
		if balanced(held, n, gone) {
			return held
		}
		if time.Now().After(deadline) {
			t.Fatalf("not balanced over %d Pods after %v: %v", n, limit, held)
		}
		time.Sleep(50 * time.Millisecond) // polls the collected logs
	}
}

func balanced(held map[string][]int, n int, gone map[string]bool) bool {
	if len(held) != n {
		return false
	}
	seen := map[int]bool{}
	for pod, ss := range held {
		if gone[pod] || len(ss) < shards/n || len(ss) > (shards+n-1)/n {
			return false
		}
		for _, s := range ss {
			if seen[s] {
				return false
			}
			seen[s] = true
		}
	}
	return len(seen) == shards
}

// running is the shards whose work runs now, by Pod.
func running(lines []logLine, ex example) map[string][]int {
	held := map[string][]int{}
	for shard, ts := range shardTerms(lines, ex) {
		for _, tm := range ts {
			if tm.end.IsZero() {
				held[tm.pod] = append(held[tm.pod], shard)
			}
		}
	}
	for _, ss := range held {
		sort.Ints(ss)
	}
	return held
}

// allTerms is every shard's terms together.
func allTerms(lines []logLine, ex example) []term {
	var out []term
	for _, ts := range shardTerms(lines, ex) {
		out = append(out, ts...)
	}
	return out
}

// shardTerms pairs the start and end lines of each shard's work per Pod (the line's "shard"
// field), in order of start. A Pod's container that ends ends all its open terms.
func shardTerms(lines []logLine, ex example) map[int][]term {
	type key struct {
		pod   string
		shard int
	}
	open := map[key]*term{}
	out := map[int][]term{}
	closeTerm := func(k key, at time.Time) {
		if o := open[k]; o != nil {
			o.end = at
			out[k.shard] = append(out[k.shard], *o)
			delete(open, k)
		}
	}
	for _, l := range lines {
		if l.Msg == containerEnded {
			for k := range open {
				if k.pod == l.Pod {
					closeTerm(k, l.At)
				}
			}
			continue
		}
		var f struct{ Shard *int }
		if (l.Msg != ex.start && l.Msg != ex.end) || json.Unmarshal([]byte(l.Text), &f) != nil || f.Shard == nil {
			continue
		}
		k := key{l.Pod, *f.Shard}
		if l.Msg == ex.end {
			closeTerm(k, l.At)
			continue
		}
		closeTerm(k, l.At) // a start without an end: a restarted container
		open[k] = &term{pod: l.Pod, start: l.At}
	}
	for k, o := range open {
		out[k.shard] = append(out[k.shard], *o)
	}
	for _, ts := range out {
		sort.Slice(ts, func(i, j int) bool { return ts[i].start.Before(ts[j].start) })
	}
	return out
}
