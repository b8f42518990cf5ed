package e2e

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/chaos"
	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/lock"
)

var (
	semaphoreFaults = flag.Int("semaphore.faults", 9, "faults injected into the semaphore fleet")
	semaphoreSeed   = flag.Uint64("semaphore.seed", 0, "seed of the semaphore fleet's fault plan (0: from the clock)")
)

const (
	semaphoreSize       = 3
	semaphoreCandidates = 10
	faultResize         = faultKind("resize") // the semaphore resized to one slot fewer, then back
)

var semaphoreFaultKinds = []faultKind{faultKill, faultTerm, faultStop, faultPartition, faultAPIServer, faultEtcd, faultResize, faultDelete, faultClear}

// TestSemaphoreChaos runs 10 worker processes on a semaphore of 3 (3 s / 2 s / 0.5 s timings, as
// the Lease chaos suite) and measures it at rest, then injects faults at random: a holder killed,
// stopped gracefully, frozen past its lease or cut off from the API server past it; the API
// server or etcd restarted; the semaphore resized to 2 and back to 3; a held slot's Lease
// deleted, or its record cleared, as with kubectl (every waiter having read it first). It checks
// that no two terms of one slot overlap and that no more than 3 terms run at any instant (on one
// monotonic clock; a frozen holder's term is judged by its slot's fencing sink instead, which must
// accept nothing from it once it resumes); that frozen, cut-off, removed, deleted and cleared
// holders report their terms lost; that no removed slot is taken while the size is lowered; that
// the semaphore is full again within the lease duration plus 1 s after a holder's fault; and that
// waiters make no requests at rest.
func TestSemaphoreChaos(t *testing.T) {
	seed := *semaphoreSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("fault plan seed %d (rerun with -args -semaphore.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed))
	libs := slices.Repeat([]string{"regent"}, semaphoreCandidates)
	f := newChaosFleet(t, "sem", chaosBinary(t), libs, fmt.Sprintf("--semaphore=%d", semaphoreSize))
	f.awaitHolders(semaphoreSize, 0, chaos.TermKey{})

	// At rest: the holders renew, every RetryPeriod each; the waiters make no request once they
	// follow the semaphore (a read of the size, a watch and a list when they start).
	f.awaitFollowing()
	window := 5 * time.Second
	holdersBefore, countsBefore := f.holders(), f.requestCounts()
	time.Sleep(window) // the measuring window
	holdersAfter, countsAfter := f.holders(), f.requestCounts()
	if !slices.Equal(holdersBefore, holdersAfter) {
		t.Fatalf("the holders changed at rest: %v, then %v", holdersBefore, holdersAfter)
	}
	var byHolders, byWaiters int64
	for id, n := range countsAfter {
		d := n - countsBefore[id]
		if slices.ContainsFunc(holdersAfter, func(tm chaos.Term) bool { return tm.Who == id }) {
			byHolders += d
		} else {
			byWaiters += d
			if d != 0 {
				t.Errorf("the waiter %s made %d requests in %v at rest, want none", id, d, window)
			}
		}
	}
	t.Logf("at rest for %v: the %d holders made %d requests (%.1f per holder per RetryPeriod), the %d waiters %d",
		window, len(holdersAfter), byHolders, float64(byHolders)/float64(len(holdersAfter))/(window.Seconds()/fast.RetryPeriod.Seconds()),
		len(countsAfter)-len(holdersAfter), byWaiters)

	var plan []faultKind
	for len(plan) < *semaphoreFaults {
		plan = append(plan, semaphoreFaultKinds[rng.IntN(len(semaphoreFaultKinds))])
	}
	if *semaphoreFaults >= len(semaphoreFaultKinds) { // every kind at least once
		plan = append(slices.Clone(semaphoreFaultKinds), plan[len(semaphoreFaultKinds):]...)
		rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	}
	recoveries := map[faultKind][]time.Duration{}
	start := time.Now()
	for i, kind := range plan {
		rec, what := f.injectSemaphore(rng, kind)
		recoveries[kind] = append(recoveries[kind], rec)
		t.Logf("%4ds fault %d: %-9s full again after %v%s", int(time.Since(start).Seconds()), i, kind, rec.Round(time.Millisecond), what)
	}

	now := chaos.Now()
	incidents := f.stop()
	for _, o := range f.timeline.Overlaps(now) {
		t.Errorf("overlap on %s: %v", o.Earlier.Lock, o)
	}
	most, at := f.timeline.MostAtOnce(now)
	if most > semaphoreSize {
		t.Errorf("%d terms ran at once (first at %d), more than the semaphore's %d", most, at, semaphoreSize)
	}
	for _, in := range incidents {
		t.Errorf("worker %v", in)
	}
	var b strings.Builder
	terms := f.timeline.Terms(now)
	fmt.Fprintf(&b, "semaphore of %d, %d candidates: %d faults, %d terms, at most %d at once, %d overlaps of a slot, %d stale writes refused, %d worker incidents",
		semaphoreSize, semaphoreCandidates, len(plan), len(terms), most, len(f.timeline.Overlaps(now)), f.sinks.Rejected(), len(incidents))
	for _, kind := range semaphoreFaultKinds {
		if d := recoveries[kind]; len(d) > 0 {
			fmt.Fprintf(&b, "\n  %-9s x%-3d full again p50 %7.1f ms, max %7.1f ms", kind, len(d), quantile(d, 0.5), quantile(d, 1))
		}
	}
	t.Log("summary:\n" + b.String())
}

// awaitFollowing waits until every live worker that holds no slot has read the semaphore.
func (f *chaosFleet) awaitFollowing() {
	f.t.Helper()
	for deadline := time.Now().Add(guard); ; {
		waiting := 0
		f.mu.Lock()
		for _, w := range f.workers {
			if _, holds := f.timeline.Open(w.id); !holds && !w.following.Load() {
				waiting++
			}
		}
		f.mu.Unlock()
		if waiting == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: %d waiters did not read the semaphore", f.name, waiting)
		}
		time.Sleep(10 * time.Millisecond) // polls the harness's own record of the workers' logs
	}
}

// holders are the open terms that are not paused, by worker.
func (f *chaosFleet) holders() []chaos.Term {
	var out []chaos.Term
	for _, tm := range f.timeline.OpenTerms() {
		if !tm.Paused {
			out = append(out, tm)
		}
	}
	slices.SortFunc(out, func(a, b chaos.Term) int { return strings.Compare(a.Who, b.Who) })
	return out
}

// awaitHolders waits until n unpaused terms other than except's are open, and returns the
// instant the last of them began, or after if that is later (on the timeline's clock). More than
// n open terms at one poll are not judged here: the workers' logs arrive through separate pipes,
// and the timeline's monotonic instants are judged at the end (MostAtOnce).
func (f *chaosFleet) awaitHolders(n int, after int64, except chaos.TermKey) int64 {
	f.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		var open []chaos.Term
		for _, tm := range f.holders() {
			if (chaos.TermKey{Who: tm.Who, Seq: tm.Seq}) != except {
				open = append(open, tm)
			}
		}
		if len(open) == n {
			latest := after
			for _, tm := range open {
				latest = max(latest, tm.Start)
			}
			return latest
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: %d holders %v after the fault, want %d", f.name, len(open), open, n)
		}
		time.Sleep(10 * time.Millisecond) // polls the harness's own record of the workers' logs
	}
}

// injectSemaphore runs one fault against the semaphore fleet and waits until the semaphore is
// full again; it returns how long after the fault that was, and what else it saw.
func (f *chaosFleet) injectSemaphore(rng *rand.Rand, kind faultKind) (time.Duration, string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	f.awaitHolders(semaphoreSize, 0, chaos.TermKey{})
	faultAt := chaos.Now()
	switch kind {
	case faultAPIServer, faultEtcd:
		readyAt := f.restart(ctx, rng, kind)
		return time.Duration(f.awaitHolders(semaphoreSize, readyAt, chaos.TermKey{}) - readyAt), ""
	case faultResize:
		return f.resizeDownAndUp(ctx)
	}
	if kind.foreignWrite() {
		f.awaitFollowing() // a waiter that never read the slot cannot know its record binds
	}
	open := f.holders()
	held := open[rng.IntN(len(open))]
	victim := f.worker(held.Who)
	lostBefore := victim.lost.Load()
	key := chaos.TermKey{Who: held.Who, Seq: held.Seq}
	sink := f.sinks.Of(held.Lock)
	slot := strings.TrimPrefix(held.Lock, "lease "+f.ns+"/")
	switch kind {
	case faultDelete:
		f.deleteLease(ctx, slot, false)
	case faultClear:
		f.clearLease(ctx, slot)
	default:
		f.strike(victim, kind)
	}
	// The slot is taken again; the victim's term, if it lasts, is no longer counted.
	full := f.awaitHolders(semaphoreSize, faultAt, key)
	what := ""
	switch kind {
	case faultKill, faultTerm:
		f.reap(victim)
		f.spawn(victim.library) // a replacement, as a Deployment would start
	case faultDelete, faultClear:
		// The holder learns of it at its next renewal; whoever takes the slot waits until the
		// record would have expired (the overlap check at the end judges that).
		f.awaitTermEnd(victim, held.Seq)
		if !f.awaitLostReport(victim, lostBefore) {
			f.t.Errorf("%s: the holder %s of the %s slot %s did not report its term lost", f.name, victim.id, kind, slot)
		}
		what = fmt.Sprintf(" (victim %s on %s)", victim.id, slot)
	case faultStop, faultPartition:
		time.Sleep(time.Duration(faultAt) + fast.LeaseDuration + randomDuration(rng, 500*time.Millisecond, 2*time.Second) - time.Duration(chaos.Now()))
		frozen := sink.Writes(key).Accepted
		f.heal(victim, kind)
		f.awaitTermEnd(victim, held.Seq)
		resumed := sink.Writes(key).Accepted - frozen
		lost := f.awaitLostReport(victim, lostBefore)
		what = fmt.Sprintf(" (victim %s on %s: writes accepted after it resumed %d, reported lost %v)", victim.id, held.Lock, resumed, lost)
		if kind == faultStop && resumed > 0 {
			f.t.Errorf("%s: %d writes of the resumed holder %s were accepted on %s", f.name, resumed, victim.id, held.Lock)
		}
		if !lost {
			f.t.Errorf("%s: the %s holder %s did not report its term lost", f.name, kind, victim.id)
		}
	}
	return time.Duration(full - faultAt), what
}

// resizeDownAndUp lowers the semaphore's size by one, checks that the removed slot's holder
// reports its term lost and that no one takes that slot while the size is lowered, then raises
// the size again and returns how long the semaphore took to be full again.
func (f *chaosFleet) resizeDownAndUp(ctx context.Context) (time.Duration, string) {
	f.t.Helper()
	sem, err := lock.NewSemaphore(cp.Client(controlplane.AdminUser).CoordinationV1(), f.ns, chaosLease, semaphoreSize, lock.WithIdentity("chaos-harness"))
	if err != nil {
		f.t.Fatal(err)
	}
	removed := fmt.Sprintf("lease %s/%s", f.ns, sem.SlotName(semaphoreSize-1))
	var victim *chaosWorker
	var lostBefore int32
	var seq int64
	for _, tm := range f.holders() {
		if tm.Lock == removed {
			victim, seq = f.worker(tm.Who), tm.Seq
			lostBefore = victim.lost.Load()
		}
	}
	if err := sem.Resize(ctx, semaphoreSize-1); err != nil {
		f.t.Fatal(err)
	}
	loweredAt := chaos.Now()
	if victim != nil {
		f.awaitTermEnd(victim, seq)
		if !f.awaitLostReport(victim, lostBefore) {
			f.t.Errorf("%s: the holder %s of the removed slot did not report its term lost", f.name, victim.id)
		}
	}
	f.awaitHolders(semaphoreSize-1, loweredAt, chaos.TermKey{})
	time.Sleep(fast.LeaseDuration) // a while lowered: long enough for a wrongly taken slot to show
	for _, tm := range f.timeline.Terms(chaos.Now()) {
		if tm.Lock == removed && tm.Start > loweredAt {
			f.t.Errorf("%s: %v took the removed slot %s while the size was lowered", f.name, tm, removed)
		}
	}
	if err := sem.Resize(ctx, semaphoreSize); err != nil {
		f.t.Fatal(err)
	}
	raisedAt := chaos.Now()
	full := f.awaitHolders(semaphoreSize, raisedAt, chaos.TermKey{})
	who := "nobody"
	if victim != nil {
		who = victim.id
	}
	return time.Duration(full - raisedAt), fmt.Sprintf(" (after raising it again; the removed slot's holder was %s)", who)
}
