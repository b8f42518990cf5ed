//go:build chaos

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/e2e/examplerun"
)

// fencingSink is a store that refuses writes whose token is lower than the highest it accepted.
type fencingSink struct {
	mu       sync.Mutex
	highest  int64
	leader   string
	newTerm  chan string // who, on each new highest token
	accepted map[string]int
	rejected map[string]int
}

func newFencingSink() *fencingSink {
	// -1: a client-go Lease's first term has transition count 0.
	return &fencingSink{highest: -1, newTerm: make(chan string, 100), accepted: map[string]int{}, rejected: map[string]int{}}
}

func (s *fencingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseInt(r.URL.Query().Get("seq"), 10, 64)
	who := r.URL.Query().Get("who")
	if err != nil || who == "" {
		http.Error(w, "bad write", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case seq < s.highest:
		s.rejected[who]++
		w.WriteHeader(http.StatusConflict)
		return
	case seq > s.highest:
		s.highest, s.leader = seq, who
		s.newTerm <- who
	}
	s.accepted[who]++
}

func (s *fencingSink) rejectedFor(who string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rejected[who]
}

// TestChaosFaults runs three workers and injects faults into the leader in turn: SIGSTOP for
// longer than the lease then SIGCONT, SIGKILL (a crash), and SIGTERM (a graceful stop); a killed
// or stopped worker is replaced by a new process with a new identity. It counts the writes the
// faulted leader still attempts with its old token after the fault (the fencing sink refuses
// them) and how long the next leader took. regent and client-go workers run under the same
// faults, one after the other against the same API server. For regent it checks that a new leader
// came within the lease duration plus 1 s, that a resumed leader reported its term lost, and that
// no fault left more than two stale writes; client-go's figures are reported beside it.
func TestChaosFaults(t *testing.T) {
	ctx := context.Background()
	bin, err := examplerun.BuildPackage(ctx, filepath.Join(examplerun.RepoRoot(), "e2e"), "./cmd/chaosworker", filepath.Join(t.TempDir(), "chaosworker"))
	if err != nil {
		t.Fatal(err)
	}
	summary := map[library]string{}
	for _, lib := range libraries {
		t.Run(string(lib), func(t *testing.T) { summary[lib] = faultRounds(t, bin, lib) })
	}
	for _, lib := range libraries {
		t.Logf("%s: %s", lib, summary[lib])
	}
}

var faults = []syscall.Signal{syscall.SIGSTOP, syscall.SIGKILL, syscall.SIGTERM}

// faultRounds injects each fault twice into the leader of three workers of lib and returns a
// summary of stale writes and takeover times per fault.
func faultRounds(t *testing.T, bin string, lib library) string {
	const workers, perFault = 3, 2
	sink := newFencingSink()
	srv := httptest.NewServer(sink)
	defer srv.Close()
	ns := namespace(t)
	kubeconfig, err := cp.WriteKubeconfig(controlplane.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	var lostMu sync.Mutex
	lost := map[string]int{}
	procs := map[string]*examplerun.Process{}
	start := func(who string) {
		p, err := examplerun.Start(who, bin, []string{"--library=" + string(lib), "--namespace=" + ns, "--identity=" + who, "--sink=" + srv.URL},
			[]string{"KUBECONFIG=" + kubeconfig},
			func(p *examplerun.Process, l examplerun.Line) {
				if l.Msg == "leadership lost; cancelling the work" {
					lostMu.Lock()
					lost[p.Name]++
					lostMu.Unlock()
				}
			})
		if err != nil {
			t.Fatal(err)
		}
		procs[who] = p
	}
	defer func() {
		for _, p := range procs {
			_ = p.Stop(5 * time.Second)
		}
	}()
	for i := range workers {
		start(fmt.Sprintf("%s-%d", lib, i))
	}
	nextTerm := func() string {
		select {
		case who := <-sink.newTerm:
			return who
		case <-time.After(guard):
			t.Fatal("no new term")
			return ""
		}
	}
	stale := map[syscall.Signal][]int{}
	takeovers := map[syscall.Signal][]time.Duration{}
	current := nextTerm()
	for round := range len(faults) * perFault {
		fault := faults[round%len(faults)]
		victim := procs[current]
		before := sink.rejectedFor(current)
		lostMu.Lock()
		lostBefore := lost[current]
		lostMu.Unlock()
		if err := victim.Signal(fault); err != nil {
			t.Fatal(err)
		}
		faultAt := time.Now()
		successor := nextTerm()
		takeover := time.Since(faultAt)
		switch fault {
		case syscall.SIGSTOP:
			time.Sleep(fast.LeaseDuration + 2*time.Second - time.Since(faultAt)) // the pause lasts past the lease
			if err := victim.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			time.Sleep(fast.LeaseDuration) // the resumed process runs again, past its renew deadline
		default:
			<-victim.Done()
			delete(procs, current)
			start(fmt.Sprintf("%s-r%d", lib, round)) // a replacement, as a Deployment would start
			time.Sleep(time.Second)
		}
		n := sink.rejectedFor(current) - before
		stale[fault] = append(stale[fault], n)
		takeovers[fault] = append(takeovers[fault], takeover.Round(time.Millisecond))
		lostMu.Lock()
		reported := lost[current] - lostBefore
		lostMu.Unlock()
		t.Logf("round %d: %v to %s; %s led %v later; stale writes after the fault: %d", round, fault, current, successor, takeover.Round(time.Millisecond), n)
		if successor == current {
			t.Fatalf("round %d: the faulted process led again", round)
		}
		if lib != regentLib {
			current = successor
			continue
		}
		if fault != syscall.SIGTERM && takeover > fast.LeaseDuration+time.Second {
			t.Errorf("round %d: no leader within the lease duration plus 1 s after %v (%v)", round, fault, takeover)
		}
		if fault == syscall.SIGSTOP && reported == 0 {
			t.Errorf("round %d: the resumed leader did not report its term lost", round)
		}
		if n > 2 {
			t.Errorf("round %d: %d stale writes after %v", round, n, fault)
		}
		current = successor
	}
	var parts []string
	for _, f := range faults {
		parts = append(parts, fmt.Sprintf("%v: stale writes %v, next leader after %v", f, stale[f], takeovers[f]))
	}
	return strings.Join(parts, "; ")
}
