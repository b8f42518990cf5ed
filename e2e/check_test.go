package e2e

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// A leader frozen past its lease (SIGSTOP) and resumed (SIGCONT), on the real control plane:
// work that calls leader.Check before each write sends none after the pause, where work that
// does not sends about one per pause before its context is cancelled (refused by the fencing
// sink either way). Three regent workers, pausesPerRun pauses of the leader, once without and
// once with --check.
func TestCheckedWorkWritesNothingAfterAPause(t *testing.T) {
	const pausesPerRun = 4
	bin := chaosBinary(t)
	rng := rand.New(rand.NewPCG(20261123, 1))
	stale := map[bool]int{}
	for _, check := range []bool{false, true} {
		var args []string
		if check {
			args = append(args, "--check")
		}
		f := newChaosFleet(t, fmt.Sprintf("check=%v", check), bin, []string{"regent", "regent", "regent"}, args...)
		for i := range pausesPerRun {
			r := f.inject(rng, faultStop)
			t.Logf("check=%v pause %d: %v", check, i, r)
			if r.resumed > 0 || !r.lost {
				t.Errorf("check=%v: %v: the resumed leader's writes were accepted or its term was not reported lost", check, r)
			}
			stale[check] += r.stale
		}
		for _, in := range f.stop() {
			t.Errorf("check=%v: worker %v", check, in)
		}
	}
	t.Logf("writes sent after %d pauses each: %d without Check, %d with Check", pausesPerRun, stale[false], stale[true])
	// A pause that lands between a Check and the write it allowed still sends that write when the
	// process resumes (only the fence refuses it): a window of well under a millisecond in a 20 ms
	// tick. One such write in a run is the limit; none is the rule.
	if stale[true] > 1 {
		t.Errorf("work that checks sent %d writes after %d pauses, want none (one at most, see above)", stale[true], pausesPerRun)
	}
}
