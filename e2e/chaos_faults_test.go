package e2e

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/e2e/chaos"
	"github.com/regent-k8s/regent/e2e/controlplane"
)

// faultKind is one kind of fault the chaos suite injects.
type faultKind string

const (
	faultKill      faultKind = "sigkill"   // the leader crashes
	faultTerm      faultKind = "sigterm"   // the leader stops gracefully: a handover
	faultStop      faultKind = "sigstop"   // the leader is frozen past its lease, then resumes
	faultPartition faultKind = "partition" // the leader is cut off from the API server past its lease
	faultAPIServer faultKind = "apiserver" // the API server restarts
	faultEtcd      faultKind = "etcd"      // etcd restarts
	faultDelete    faultKind = "delete"    // kubectl delete lease while the leader works
	faultRecreate  faultKind = "recreate"  // the Lease deleted and at once created again, empty
	// faultClear: the leader's record replaced by a free one, as client-go's release writes over
	// whatever record it reads after its own leader lost the Lease, or as an operator's edit would.
	faultClear faultKind = "clear"
	// faultHandover: an operator's handover request (kubectl annotate lease chaos
	// regent.dev/handover-to=<another worker>); client-go leaders ignore it.
	faultHandover faultKind = "handover"
)

var faultKinds = []faultKind{faultKill, faultTerm, faultStop, faultPartition, faultAPIServer, faultEtcd, faultDelete, faultRecreate, faultClear, faultHandover}

// foreignWrite reports whether a fault of kind k ends the leader's record without the leader:
// the record is deleted, or cleared by someone else.
func (k faultKind) foreignWrite() bool {
	return k == faultDelete || k == faultRecreate || k == faultClear
}

// faultResult is what one fault did.
type faultResult struct {
	kind      faultKind
	at        time.Time // when the fault was injected, on the wall clock (to match worker logs)
	atMono    int64     // the same instant on the timeline's clock
	victim    string    // the worker faulted; empty for control-plane restarts
	victimLib string
	// recovery is how long after the fault (for restarts: after the API server accepted a write
	// again) a leader's write was accepted; for worker faults, the first write of a new term.
	recovery time.Duration
	// stale counts the victim term's writes that the sink refused; resumed counts those it
	// accepted after a frozen victim resumed (SIGCONT).
	stale, resumed int
	lost           bool // the victim reported its term lost
	// fenced names the library of a new term whose every write the sink refused after a deletion
	// (its token restarted below the old one); the sink's fence was then reset to go on.
	fenced string
	// kept is set when the leader whose Lease was deleted created it again and kept its term,
	// or when a leader ignored a handover request (client-go's do).
	kept bool
	// named is the worker a handover request named, and namedLib its library; next is the
	// worker that led after the fault.
	named, namedLib, next string
}

func (r faultResult) String() string {
	s := fmt.Sprintf("%s %-9s recovery %6v", r.at.Format("15:04:05.000"), r.kind, r.recovery.Round(time.Millisecond))
	if r.victim != "" {
		s += fmt.Sprintf(" victim %s stale writes refused %d", r.victim, r.stale)
	}
	if r.kind == faultStop {
		s += fmt.Sprintf(" accepted after resuming %d, reported lost %v", r.resumed, r.lost)
	}
	if r.kind == faultPartition || r.kind.foreignWrite() {
		s += fmt.Sprintf(" reported lost %v", r.lost)
	}
	if r.fenced != "" {
		s += fmt.Sprintf(", the next term (%s) was fenced out", r.fenced)
	}
	if r.kind == faultHandover {
		s += fmt.Sprintf(" named %s, next leader %s", r.named, r.next)
	}
	if r.kept && r.kind == faultHandover {
		s += ", the leader ignored the request"
	} else if r.kept {
		s += ", the leader created the Lease again and kept its term"
	}
	return s
}

// faultPlan draws n faults: first every kind once in random order, then kinds at random in
// proportion to their weights.
func faultPlan(rng *rand.Rand, n int, weights map[faultKind]int) []faultKind {
	var plan, pool []faultKind
	for _, k := range faultKinds {
		if weights[k] > 0 {
			plan = append(plan, k)
		}
		for range weights[k] {
			pool = append(pool, k)
		}
	}
	rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	for len(plan) < n {
		plan = append(plan, pool[rng.IntN(len(pool))])
	}
	return plan[:n]
}

// parseWeights reads "sigterm=20,sigkill=1"; kinds not named keep weight 1.
func parseWeights(s string) (map[faultKind]int, error) {
	w := map[faultKind]int{}
	for _, k := range faultKinds {
		w[k] = 1
	}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		name, val, ok := strings.Cut(part, "=")
		n, err := strconv.Atoi(val)
		if _, known := w[faultKind(name)]; !ok || !known || err != nil || n < 0 {
			return nil, fmt.Errorf("fault weight %q: want kind=N with kind one of %v and N >= 0", part, faultKinds)
		}
		w[faultKind(name)] = n
	}
	return w, nil
}

// inject runs one fault against the fleet and waits until it is over: a leader writes again
// and the fleet is whole.
func (f *chaosFleet) inject(rng *rand.Rand, kind faultKind) faultResult {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	before, victim := f.leader()
	res := faultResult{kind: kind, at: time.Now(), atMono: chaos.Now()}
	if kind == faultAPIServer || kind == faultEtcd {
		readyAt := f.restart(ctx, rng, kind)
		wroteAgain := func(_ chaos.TermKey, w chaos.TermWrites) bool { return w.LastAccepted > readyAt }
		w, err := f.awaitPastFence(ctx, &res, wroteAgain, nil, func() bool { return true })
		if err != nil {
			f.t.Fatalf("%s: no leader wrote after the %s restart", f.name, kind)
		}
		res.recovery = time.Duration(w.LastAccepted - readyAt)
		return res
	}
	res.victim, res.victimLib = victim.id, victim.library
	lostBefore := victim.lost.Load()
	faultAt := chaos.Now()
	switch kind {
	case faultKill, faultTerm, faultStop, faultPartition:
		f.strike(victim, kind)
	case faultDelete, faultRecreate:
		f.awaitFollowers(victim)
		f.deleteLease(ctx, chaosLease, kind == faultRecreate)
	case faultClear:
		f.awaitFollowers(victim)
		f.clearLease(ctx, chaosLease)
	case faultHandover:
		f.awaitFollowers(victim)
		named := f.another(rng, victim)
		res.named, res.namedLib = named.id, named.library
		annotateHandover(f.t, f.ns, chaosLease, named.id)
	}
	newTerm := func(k chaos.TermKey, _ chaos.TermWrites) bool { return k != before }
	var settle func() // before the fence is reset: the old holder's writes would set it again
	if kind.foreignWrite() {
		settle = func() { f.awaitTermEnd(victim, before.Seq) }
	}
	// client-go's leader creates the deleted Lease again, or takes the cleared record, at its
	// next renewal and goes on in the same term, unaware: there is then no new leader to wait for.
	keptTerm := func() bool {
		term, open := f.timeline.Open(victim.id)
		kept := kind.foreignWrite() || (kind == faultHandover && victim.library != "regent")
		return kept && open && term.Seq == before.Seq
	}
	w, err := f.awaitPastFence(ctx, &res, newTerm, settle, keptTerm)
	if errors.Is(err, errNoNewLeader) {
		res.kept = true
		res.stale = f.sink.Writes(before).Rejected
		return res
	}
	if err != nil {
		f.t.Fatalf("%s: no new leader after %s of %s", f.name, kind, victim.id)
	}
	res.recovery = time.Duration(w.FirstAccepted - faultAt)
	res.next = f.leading()
	switch kind {
	case faultKill, faultTerm:
		f.reap(victim)
		f.spawn(victim.library) // a replacement, as a Deployment would start
	case faultDelete, faultRecreate, faultClear:
		f.awaitTermEnd(victim, before.Seq) // the old holder learns of the change at its next renewal
		f.awaitLostReport(victim, lostBefore)
	case faultStop, faultPartition:
		// The fault lasts past the lease, and a little longer.
		time.Sleep(time.Duration(faultAt) + fast.LeaseDuration + randomDuration(rng, 500*time.Millisecond, 2*time.Second) - time.Duration(chaos.Now()))
		frozen := f.sink.Writes(before).Accepted // a frozen victim writes nothing
		f.heal(victim, kind)
		f.awaitTermEnd(victim, before.Seq)
		if kind == faultStop {
			res.resumed = f.sink.Writes(before).Accepted - frozen
		}
		// The work's last line and the election's report of the loss come from two goroutines,
		// in either order: a resumed worker whose work ends its term with Check returns at once.
		res.lost = f.awaitLostReport(victim, lostBefore)
	}
	res.stale = f.sink.Writes(before).Rejected
	res.lost = res.lost || victim.lost.Load() > lostBefore
	return res
}

// strike starts a fault of a worker: kind is sigkill, sigterm, sigstop or partition. A frozen
// worker's open term is marked paused; heal ends a sigstop or a partition.
func (f *chaosFleet) strike(w *chaosWorker, kind faultKind) {
	f.t.Helper()
	var err error
	switch kind {
	case faultKill:
		f.kill(w, syscall.SIGKILL)
	case faultTerm:
		f.kill(w, syscall.SIGTERM)
	case faultStop:
		f.timeline.Pause(w.id)
		err = w.proc.Signal(syscall.SIGSTOP)
	case faultPartition:
		err = w.link.Cut()
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

// heal resumes a frozen worker (SIGCONT) or mends its partitioned link.
func (f *chaosFleet) heal(w *chaosWorker, kind faultKind) {
	f.t.Helper()
	heal := func() error { return w.proc.Signal(syscall.SIGCONT) }
	if kind == faultPartition {
		heal = w.link.Heal
	}
	if err := heal(); err != nil {
		f.t.Fatal(err)
	}
}

// awaitLostReport waits a moment for w to report a lost term beyond the count before, and
// reports whether it did: the work's last line and the election's report of the loss come from
// two goroutines, in either order.
func (f *chaosFleet) awaitLostReport(w *chaosWorker, before int32) bool {
	for deadline := time.Now().Add(2 * time.Second); w.lost.Load() == before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // polls the harness's own record of the worker's log
	}
	return w.lost.Load() > before
}

// restart stops the API server or etcd for a random while and starts it again; it returns the
// instant the API server accepted a write again (after etcd restarts, the API server reconnects
// to it only a while after etcd is healthy).
func (f *chaosFleet) restart(ctx context.Context, rng *rand.Rand, kind faultKind) int64 {
	f.t.Helper()
	stop, start := cp.StopAPIServer, cp.StartAPIServer
	if kind == faultEtcd {
		stop, start = cp.StopEtcd, cp.StartEtcd
	}
	stop()
	time.Sleep(randomDuration(rng, 500*time.Millisecond, 4*time.Second))
	if err := start(ctx); err != nil {
		f.t.Fatalf("restart %s: %v", kind, err)
	}
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{GenerateName: "probe-"}}
	configMaps := cp.Client(controlplane.AdminUser).CoreV1().ConfigMaps(f.ns)
	for {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := configMaps.Create(pctx, probe, metav1.CreateOptions{})
		cancel()
		if err == nil {
			return chaos.Now()
		}
		if ctx.Err() != nil {
			f.t.Fatalf("the API server accepted no write after the %s restart: %v", kind, err)
		}
		time.Sleep(20 * time.Millisecond) // polls the API server, not the code under test
	}
}

// deleteLease deletes the fleet's Lease as kubectl delete would, and with recreate creates an
// empty one at once, as kubectl apply of a bare manifest would.
func (f *chaosFleet) deleteLease(ctx context.Context, name string, recreate bool) {
	f.t.Helper()
	leases := cp.Client(controlplane.AdminUser).CoordinationV1().Leases(f.ns)
	if err := leases.Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		f.t.Fatalf("delete the lease: %v", err)
	}
	if recreate {
		if _, err := leases.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			f.t.Fatalf("create the lease again: %v", err)
		}
	}
}

// another returns a live worker other than w, at random.
func (f *chaosFleet) another(rng *rand.Rand, w *chaosWorker) *chaosWorker {
	f.mu.Lock()
	defer f.mu.Unlock()
	var others []*chaosWorker
	for _, o := range f.workers {
		if o != w {
			others = append(others, o)
		}
	}
	slices.SortFunc(others, func(a, b *chaosWorker) int { return strings.Compare(a.id, b.id) }) // the seed decides
	return others[rng.IntN(len(others))]
}

// leading names the worker whose term is open now, if one is.
func (f *chaosFleet) leading() string {
	f.mu.Lock()
	ids := slices.Collect(maps.Keys(f.workers))
	f.mu.Unlock()
	for _, id := range ids {
		if _, open := f.timeline.Open(id); open {
			return id
		}
	}
	return ""
}

// clearLease replaces the leader's record with a free one in the form client-go's release writes:
// empty holder, duration 1 s, acquireTime and renewTime now, the transition count kept.
func (f *chaosFleet) clearLease(ctx context.Context, name string) {
	f.t.Helper()
	leases := cp.Client(controlplane.AdminUser).CoordinationV1().Leases(f.ns)
	for {
		cur, err := leases.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			f.t.Fatalf("get the lease to clear it: %v", err)
		}
		if cur.Spec.HolderIdentity != nil {
			f.noteClear(*cur.Spec.HolderIdentity, chaos.Now())
		}
		now := metav1.NewMicroTime(time.Now())
		one, empty := int32(1), ""
		cur.Spec.HolderIdentity, cur.Spec.LeaseDurationSeconds = &empty, &one
		cur.Spec.AcquireTime, cur.Spec.RenewTime = &now, &now
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) { // a renewal came first: clear that one
			f.t.Fatalf("clear the lease: %v", err)
		}
	}
}

// awaitFollowers waits until every regent worker but the leader has read the Lease. regent's
// guarantee for a deleted Lease is that a waiter which saw the deleted record waits for it; a
// process that first reads the Lease after the deletion cannot know of it (docs/design.md). A
// worker spawned after a kill, or one whose reads failed during a control-plane restart, may not
// have read the Lease yet, and the deletion would then test that documented limit instead.
func (f *chaosFleet) awaitFollowers(leader *chaosWorker) {
	f.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		f.mu.Lock()
		waiting := ""
		for _, w := range f.workers {
			if w != leader && w.library == "regent" && w.expected.Load() == 0 && !w.following.Load() {
				waiting = w.id
			}
		}
		f.mu.Unlock()
		if waiting == "" {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: worker %s never read the Lease", f.name, waiting)
		}
		time.Sleep(10 * time.Millisecond) // polls the harness's own record of the workers' logs
	}
}

// chaosLease is the name of the Lease the chaos workers campaign for (the worker's default).
const chaosLease = "chaos"

// errNoNewLeader is awaitPastFence's answer when a quiet spell passes with no term fenced out
// and giveUp says to stop.
var errNoNewLeader = errors.New("no new leader within a lease duration plus 2 s")

// awaitPastFence waits until cond holds for the sink's term of the highest accepted token. A new
// term whose token is below the fence is refused by the sink, as any fencing store would: after a
// deletion the Lease's count restarts, and a client-go leader that created the Lease again keeps
// its old token, above every later client-go term's. So each time a lease duration plus 2 s
// passes without cond, a live term fenced out is noted in res, settle (if any) runs, the fence is
// reset and the wait goes on; with no term fenced out, it returns errNoNewLeader if giveUp says
// so, and waits on otherwise, until ctx ends.
func (f *chaosFleet) awaitPastFence(ctx context.Context, res *faultResult, cond func(chaos.TermKey, chaos.TermWrites) bool, settle func(), giveUp func() bool) (chaos.TermWrites, error) {
	for ctx.Err() == nil {
		dctx, dcancel := context.WithTimeout(ctx, fast.LeaseDuration+2*time.Second)
		_, w, err := f.sink.Await(dctx, cond)
		dcancel()
		if err == nil {
			return w, nil
		}
		who, lib, ok := f.fencedOutNow()
		if !ok {
			if giveUp() {
				return chaos.TermWrites{}, errNoNewLeader
			}
			continue
		}
		res.fenced = lib
		f.t.Logf("%s: after %s the new term of %s was fenced out; resetting the fence", f.name, res.kind, who)
		if settle != nil {
			settle()
		}
		f.sink.Reset()
	}
	return chaos.TermWrites{}, ctx.Err()
}

// fencedOutNow returns a live worker whose open term has written and had every write refused.
// A client-go worker can lead twice with the same token (the Lease's count after a deletion), so
// the writes are judged by when they came, not by the token alone.
func (f *chaosFleet) fencedOutNow() (who, library string, ok bool) {
	f.mu.Lock()
	workers := make([]*chaosWorker, 0, len(f.workers))
	for _, w := range f.workers {
		workers = append(workers, w)
	}
	f.mu.Unlock()
	for _, w := range workers {
		term, open := f.timeline.Open(w.id)
		if !open {
			continue
		}
		if tw := f.sink.Writes(chaos.TermKey{Who: w.id, Seq: term.Seq}); tw.LastRejected > term.Start && tw.LastAccepted < term.Start {
			return w.id, w.library, true
		}
	}
	return "", "", false
}

// awaitTermEnd waits until the worker's term with token seq, if open, has ended; a later term of
// the same worker (it led again) does not count.
func (f *chaosFleet) awaitTermEnd(w *chaosWorker, seq int64) {
	f.t.Helper()
	deadline := time.Now().Add(guard)
	for {
		if term, open := f.timeline.Open(w.id); !open || term.Seq != seq {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: the term of %s did not end after the fault", f.name, w.id)
		}
		time.Sleep(10 * time.Millisecond) // polls the harness's own record of the worker's log
	}
}

func randomDuration(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}
