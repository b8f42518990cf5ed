package e2e

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/chaos"
)

// The chaos suite's size. The defaults are the short run of `make test`; `make chaos` runs the
// long one (see docs/benchmarks.md).
var (
	chaosFaults  = flag.Int("chaos.faults", 10, "faults injected into each fleet")
	chaosFleets  = flag.String("chaos.fleets", "regent,client-go,mixed", "fleets to run, in order")
	chaosWeights = flag.String("chaos.weights", "", "relative frequency of fault kinds after each has come once, e.g. sigterm=20 (default 1 each)")
	chaosSeed    = flag.Uint64("chaos.seed", 0, "seed of the fault plan (0: from the clock)")
)

// fleetSpecs are the fleets the suite can run: the libraries of their workers.
var fleetSpecs = map[string][]string{
	"regent":    {"regent", "regent", "regent"},
	"client-go": {"client-go", "client-go", "client-go"},
	"mixed":     {"regent", "client-go", "regent", "client-go"},
}

// TestChaos runs fleets of worker processes on one Lease each (3 s / 2 s / 0.5 s timings) and
// injects faults at random into the leader or the control plane: SIGKILL, SIGTERM, SIGSTOP past
// the lease then SIGCONT, a network partition between the leader and the API server past the
// lease, an API server restart, an etcd restart, and the Lease deleted while the leader works
// (kubectl delete lease), alone or at once created again empty. The same fault plan runs against
// a regent fleet, a client-go fleet and a mixed fleet, one after the other on the same API server.
//
// For regent it checks: no two terms overlap, except that a frozen process's term is judged by
// the fencing sink instead (it accepted nothing from the resumed leader, which reported its term
// lost); a partitioned leader, and a leader whose Lease was deleted, report their terms lost;
// after a deletion the next regent term's writes are accepted by the sink; every fault is
// followed by a leader's write within the lease duration plus 1 s (after the restarted server is
// back, for restarts); no worker exits unless told to, and none leaves goroutines behind. In the
// mixed fleet, no term of a regent worker may overlap a later term, except a client-go term that
// created the Lease after a deletion. client-go's figures are reported beside regent's.
func TestChaos(t *testing.T) {
	weights, err := parseWeights(*chaosWeights)
	if err != nil {
		t.Fatal(err)
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("fault plan seed %d (rerun with -args -chaos.seed=%d)", seed, seed)
	bin := chaosBinary(t)
	var summaries []string
	results := map[string][]faultResult{}
	for _, name := range strings.Split(*chaosFleets, ",") {
		libs, ok := fleetSpecs[name]
		if !ok {
			t.Fatalf("unknown fleet %q", name)
		}
		rng := rand.New(rand.NewPCG(seed, seed))
		plan := faultPlan(rng, *chaosFaults, weights)
		t.Run(name, func(t *testing.T) {
			var summary string
			results[name], summary = runFleet(t, name, bin, libs, rng, plan)
			summaries = append(summaries, summary)
		})
	}
	t.Log("summary:\n" + strings.Join(summaries, "\n"))
	recoveries := func(fleet string, kinds ...faultKind) []time.Duration {
		var d []time.Duration
		for _, r := range results[fleet] {
			if slices.Contains(kinds, r.kind) {
				d = append(d, r.recovery)
			}
		}
		return d
	}
	writePlot(t, "chaos-handover.svg", "Chaos: leader stopped (SIGTERM) → next leader writes",
		recoveries("regent", faultTerm), recoveries("client-go", faultTerm))
	writePlot(t, "chaos-takeover.svg", "Chaos: leader killed, frozen or cut off → next leader writes",
		recoveries("regent", faultKill, faultStop, faultPartition), recoveries("client-go", faultKill, faultStop, faultPartition))
}

// runFleet injects the faults of plan into a new fleet, checks it and returns what each fault
// did and the fleet's summary.
func runFleet(t *testing.T, name, bin string, libs []string, rng *rand.Rand, plan []faultKind) ([]faultResult, string) {
	f := newChaosFleet(t, name, bin, libs)
	var results []faultResult
	start := time.Now()
	for i, kind := range plan {
		r := f.inject(rng, kind)
		results = append(results, r)
		t.Logf("%4ds fault %d: %v", int(time.Since(start).Seconds()), i, r)
	}
	now := chaos.Now()
	incidents := f.stop()
	terms := f.timeline.Terms(now)
	overlaps := f.timeline.Overlaps(now)

	regentOnly := !slices.Contains(libs, "client-go")
	for _, o := range overlaps {
		switch {
		case o.Earlier.Library != "regent":
		case o.Later.Library != "regent" && startedAfterForeignWrite(o, results, f.clearsOf(o.Earlier.Who)):
			// client-go creates a deleted Lease, or takes a cleared record, at once, while the old
			// holder still works: the overlap is the successor's doing, not the regent holder's.
			t.Logf("overlap after the Lease was deleted or cleared, started by client-go: %v", o)
		default:
			t.Errorf("overlap: %v", o)
		}
	}
	for _, r := range results {
		if r.victimLib != "regent" && !(regentOnly && r.victim == "") {
			continue
		}
		if regentOnly && r.recovery > fast.LeaseDuration+time.Second {
			t.Errorf("%v: no leader within the lease duration plus 1 s", r)
		}
		if r.kind == faultStop && (r.resumed > 0 || !r.lost) {
			t.Errorf("%v: the resumed leader's writes were accepted or its term was not reported lost", r)
		}
		if r.kind == faultPartition && !r.lost {
			t.Errorf("%v: the partitioned leader did not report its term lost", r)
		}
		if r.kind.foreignWrite() && !r.lost {
			t.Errorf("%v: the leader whose record was deleted or cleared did not report its term lost", r)
		}
		if r.kept && r.victimLib == "regent" {
			t.Errorf("%v: a regent leader kept its term after its record was deleted or cleared", r)
		}
		if r.kind == faultHandover && r.namedLib == "regent" && r.next != r.named {
			t.Errorf("%v: a regent leader asked to hand over to %s did not", r, r.named)
		}
		if r.fenced == "regent" {
			t.Errorf("%v: a regent term after the deletion was refused by the fencing sink", r)
		}
	}
	for _, in := range incidents {
		if in.library == "regent" {
			t.Errorf("worker %v", in)
		} else {
			t.Logf("worker %v", in)
		}
	}
	return results, summarize(name, results, terms, overlaps, f.sink.Rejected(), len(incidents))
}

// startedAfterForeignWrite reports whether the later term of o began within a lease duration
// (plus a second) after a fault that deleted the Lease or cleared its record, or after a clear of
// the earlier term's record by someone else (clears: when they happened).
func startedAfterForeignWrite(o chaos.Overlap, results []faultResult, clears []int64) bool {
	soon := func(at int64) bool {
		return o.Later.Start >= at && time.Duration(o.Later.Start-at) <= fast.LeaseDuration+time.Second
	}
	for _, r := range results {
		if r.kind.foreignWrite() && soon(r.atMono) {
			return true
		}
	}
	for _, at := range clears {
		if at >= o.Earlier.Start && soon(at) {
			return true
		}
	}
	return false
}

// summarize is one fleet's paragraph of the suite's summary.
func summarize(name string, results []faultResult, terms []chaos.Term, overlaps []chaos.Overlap, rejected, incidents int) string {
	var b strings.Builder
	var longest time.Duration
	for _, o := range overlaps {
		longest = max(longest, o.By)
	}
	fmt.Fprintf(&b, "%s: %d faults, %d terms (%d handovers), %d overlaps (longest %v), %d stale writes refused, %d worker incidents (crashes, failed stops, leaks)\n",
		name, len(results), len(terms), max(len(terms)-1, 0), len(overlaps), longest.Round(time.Millisecond), rejected, incidents)
	for _, kind := range faultKinds {
		var rec []time.Duration
		stale, resumed, lost, fenced, kept := 0, 0, 0, 0, 0
		for _, r := range results {
			if r.kind != kind {
				continue
			}
			rec = append(rec, r.recovery)
			stale += r.stale
			resumed += r.resumed
			if r.lost {
				lost++
			}
			if r.fenced != "" {
				fenced++
			}
			if r.kept {
				kept++
			}
		}
		if len(rec) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  %-9s x%-4d recovery p50 %7.1f ms, max %7.1f ms; stale writes refused %d", kind, len(rec), quantile(rec, 0.5), quantile(rec, 1), stale)
		switch kind {
		case faultStop:
			fmt.Fprintf(&b, ", accepted after resuming %d, reported lost %d/%d", resumed, lost, len(rec))
		case faultPartition:
			fmt.Fprintf(&b, ", reported lost %d/%d", lost, len(rec))
		case faultDelete, faultRecreate, faultClear:
			fmt.Fprintf(&b, ", reported lost %d/%d, next term fenced out %d, term kept by re-creating the Lease %d", lost, len(rec), fenced, kept)
		}
		b.WriteString("\n")
	}
	return strings.TrimRight(b.String(), "\n")
}
