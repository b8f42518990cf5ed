package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/chaos"
)

var (
	shardingFaults = flag.Int("sharding.faults", 6, "faults injected into the sharding fleet")
	shardingSeed   = flag.Uint64("sharding.seed", 0, "seed of the sharding fleet's fault plan (0: from the clock)")
)

// TestShardingBalance measures a sharding of 64 shards (3 s / 2 s / 0.5 s timings) as members
// come and go: 1 member, then 3 more at once, then 2 of the 4 stopped gracefully. After each
// change it waits until every shard runs in exactly one live member and each holds 64/n, and
// reports how long that took, how many shards moved (terms begun after the change; the least
// possible is 48 for the join and 32 for the leave), and, at the end, the requests the members
// make at rest against the goal of one renewal per held Lease per RetryPeriod. No two terms of
// one shard may overlap, and no stale write may be accepted.
func TestShardingBalance(t *testing.T) {
	const k = 64
	f := newChaosFleet(t, "shard", chaosBinary(t), []string{"regent"}, fmt.Sprintf("--sharding=%d", k))
	f.awaitBalanced(k, 1, 0)

	// The least possible moves: 48 if the 3 joined at one instant, 32+21+16 = 69 if each joined
	// only once the shards had settled after the one before; starting processes, they join
	// a few milliseconds apart, in between.
	spawnAt := chaos.Now()
	for range 3 {
		f.spawn("regent")
	}
	joinAt := chaos.Now() // the last of the 3 has started to take part
	balancedAt := f.awaitBalanced(k, 4, joinAt)
	joinMoves := f.termsBegunAfter(spawnAt)
	t.Logf("join 1 -> 4: balanced %v after the last of the 3 started (%v after the first), %d shards moved (48 if all joined at once, 69 one after another)",
		time.Duration(balancedAt-joinAt).Round(time.Millisecond), time.Duration(balancedAt-spawnAt).Round(time.Millisecond), joinMoves)
	if joinMoves < 48 || joinMoves > 69 {
		t.Errorf("the join moved %d shards, want 48 to 69", joinMoves)
	}

	leaveAt := chaos.Now()
	var leavers []*chaosWorker
	for _, id := range f.memberIDs()[:2] {
		w := f.worker(id)
		leavers = append(leavers, w)
		f.kill(w, syscall.SIGTERM)
	}
	balancedAt = f.awaitBalanced(k, 2, leaveAt)
	leaveMoves := f.termsBegunAfter(leaveAt)
	// 32 if the 2 left at one instant, 16+22 = 38 if one after the other.
	t.Logf("leave 4 -> 2: balanced %v after SIGTERM, %d shards moved (32 if both left at once, 38 one after the other)",
		time.Duration(balancedAt-leaveAt).Round(time.Millisecond), leaveMoves)
	if leaveMoves < 32 || leaveMoves > 38 {
		t.Errorf("the leave moved %d shards, want 32 to 38", leaveMoves)
	}
	for _, w := range leavers {
		f.reap(w)
	}

	window := 5 * time.Second
	before := f.requestCounts()
	time.Sleep(window) // the measuring window
	after := f.requestCounts()
	var total int64
	for id, n := range after {
		total += n - before[id]
	}
	periods := window.Seconds() / fast.RetryPeriod.Seconds()
	goal := float64(k+2) * periods // a renewal of each held shard and of each membership, per RetryPeriod
	t.Logf("at rest for %v: the 2 members made %d requests, %.1f per second; the goal (one renewal per held Lease, 64 shards and 2 memberships, per RetryPeriod) is %.0f",
		window, total, float64(total)/window.Seconds(), goal)
	if float64(total) > goal*1.1 {
		t.Errorf("%d requests at rest, more than the goal %.0f by over 10%%", total, goal)
	}

	now := chaos.Now()
	incidents := f.stop()
	for _, o := range f.timeline.Overlaps(now) {
		t.Errorf("overlap on %s: %v", o.Earlier.Lock, o)
	}
	for _, in := range incidents {
		t.Errorf("worker %v", in)
	}
	if n := f.sinks.Rejected(); n != 0 {
		t.Errorf("%d stale writes were refused by the shards' fencing sinks", n)
	}
	t.Logf("summary: %d terms, %d overlaps of a shard, %d stale writes refused, %d worker incidents",
		len(f.timeline.Terms(now)), len(f.timeline.Overlaps(now)), f.sinks.Rejected(), len(incidents))
}

// TestShardingChaos runs 5 members of a sharding of 16 shards and injects faults at random: a
// member killed, stopped gracefully, frozen past its lease or cut off from the API server past
// it; the API server or etcd restarted. After each fault it waits until the shards are balanced
// over the live members again. No two terms of one shard may overlap (a frozen member's terms
// are judged by the shards' fencing sinks instead, which must accept nothing from it once it
// resumes), and a frozen or cut-off member must report its shards lost.
func TestShardingChaos(t *testing.T) {
	const k, members = 16, 5
	seed := *shardingSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("fault plan seed %d (rerun with -args -sharding.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	f := newChaosFleet(t, "shardchaos", chaosBinary(t), slices.Repeat([]string{"regent"}, members), fmt.Sprintf("--sharding=%d", k))
	f.awaitBalanced(k, members, 0)

	kinds := []faultKind{faultKill, faultTerm, faultStop, faultPartition, faultAPIServer, faultEtcd}
	var plan []faultKind
	for len(plan) < *shardingFaults {
		plan = append(plan, kinds[rng.IntN(len(kinds))])
	}
	if len(plan) >= len(kinds) { // every kind at least once
		plan = append(slices.Clone(kinds), plan[len(kinds):]...)
		rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	}
	recoveries := map[faultKind][]time.Duration{}
	start := time.Now()
	for i, kind := range plan {
		rec, what := f.injectSharding(rng, kind, k, members)
		recoveries[kind] = append(recoveries[kind], rec)
		t.Logf("%4ds fault %d: %-9s balanced again after %v%s", int(time.Since(start).Seconds()), i, kind, rec.Round(time.Millisecond), what)
	}

	now := chaos.Now()
	incidents := f.stop()
	for _, o := range f.timeline.Overlaps(now) {
		t.Errorf("overlap on %s: %v", o.Earlier.Lock, o)
	}
	for _, in := range incidents {
		t.Errorf("worker %v", in)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "sharding of %d, %d members: %d faults, %d terms, %d overlaps of a shard, %d stale writes refused, %d worker incidents",
		k, members, len(plan), len(f.timeline.Terms(now)), len(f.timeline.Overlaps(now)), f.sinks.Rejected(), len(incidents))
	for _, kind := range kinds {
		if d := recoveries[kind]; len(d) > 0 {
			fmt.Fprintf(&b, "\n  %-9s x%-3d balanced again p50 %7.1f ms, max %7.1f ms", kind, len(d), quantile(d, 0.5), quantile(d, 1))
		}
	}
	t.Log("summary:\n" + b.String())
}

// injectSharding runs one fault against the sharding fleet and waits until the shards are
// balanced again; it returns how long after the fault (or after the API server was back) that
// was, and what else it saw.
func (f *chaosFleet) injectSharding(rng *rand.Rand, kind faultKind, k, members int) (time.Duration, string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	f.awaitBalanced(k, members, 0)
	if kind == faultAPIServer || kind == faultEtcd {
		readyAt := f.restart(ctx, rng, kind)
		return time.Duration(f.awaitBalanced(k, members, readyAt) - readyAt), ""
	}
	ids := f.memberIDs()
	victim := f.worker(ids[rng.IntN(len(ids))])
	faultAt := chaos.Now()
	lostBefore := victim.lost.Load()
	var frozen []chaos.Term
	for _, tm := range f.timeline.OpenTerms() {
		if tm.Who == victim.id {
			frozen = append(frozen, tm)
		}
	}
	f.strike(victim, kind)
	switch kind {
	case faultKill, faultTerm:
		balanced := f.awaitBalanced(k, members-1, faultAt)
		f.reap(victim)
		f.spawn(victim.library) // a replacement, as a Deployment would start
		f.awaitBalanced(k, members, 0)
		return time.Duration(balanced - faultAt), ""
	}
	// Frozen or cut off: the others take its shards once they expire, without it.
	balanced := f.awaitBalancedWithout(k, members-1, faultAt, victim.id)
	time.Sleep(time.Duration(faultAt) + fast.LeaseDuration + randomDuration(rng, 500*time.Millisecond, 2*time.Second) - time.Duration(chaos.Now()))
	accepted := func() (n int) {
		for _, tm := range frozen {
			n += f.sinks.Of(tm.Lock).Writes(chaos.TermKey{Who: tm.Who, Seq: tm.Seq}).Accepted
		}
		return n
	}
	before := accepted()
	f.heal(victim, kind)
	f.awaitBalanced(k, members, 0) // it rejoins and takes its share back
	resumed := accepted() - before
	lost := f.awaitLostReport(victim, lostBefore)
	if kind == faultStop && resumed > 0 {
		f.t.Errorf("%s: %d writes of the resumed member %s were accepted", f.name, resumed, victim.id)
	}
	if !lost {
		f.t.Errorf("%s: the %s member %s did not report its shards lost", f.name, kind, victim.id)
	}
	return time.Duration(balanced - faultAt), fmt.Sprintf(" (victim %s held %d shards: writes accepted after it resumed %d, reported lost %v)",
		victim.id, len(frozen), resumed, lost)
}

// memberIDs are the live workers, sorted.
func (f *chaosFleet) memberIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for id := range f.workers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// awaitBalanced waits until every one of the k shards runs in exactly one of n live members,
// each running floor(k/n) or ceil(k/n), and returns the instant the last of the open terms began,
// or after if that is later (on the timeline's clock).
func (f *chaosFleet) awaitBalanced(k, n int, after int64) int64 {
	return f.awaitBalancedWithout(k, n, after, "")
}

// awaitBalancedWithout is awaitBalanced with the terms of the member except left out.
func (f *chaosFleet) awaitBalancedWithout(k, n int, after int64, except string) int64 {
	f.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		perShard, perMember := map[string]int{}, map[string]int{}
		latest := after
		for _, tm := range f.timeline.OpenTerms() {
			if tm.Paused || tm.Who == except {
				continue
			}
			perShard[tm.Lock]++
			perMember[tm.Who]++
			latest = max(latest, tm.Start)
		}
		ok := len(perShard) == k && len(perMember) == n
		for _, c := range perShard {
			ok = ok && c == 1
		}
		for _, c := range perMember {
			ok = ok && (c == k/n || c == (k+n-1)/n)
		}
		if ok {
			return latest
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: not balanced over %d members within %v: shards per member %v, %d shards held", f.name, n, guard, perMember, len(perShard))
		}
		time.Sleep(10 * time.Millisecond) // polls the harness's own record of the workers' logs
	}
}

// termsBegunAfter counts the terms that began after the instant at.
func (f *chaosFleet) termsBegunAfter(at int64) int {
	n := 0
	for _, tm := range f.timeline.Terms(chaos.Now()) {
		if tm.Start > at {
			n++
		}
	}
	return n
}
