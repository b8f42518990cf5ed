//go:build chaos

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
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

// TestChaosSIGSTOP pauses the leader (SIGSTOP) for longer than the lease, lets another candidate
// take over, resumes it (SIGCONT), and counts the writes the resumed process still attempts with
// its old token; the fencing sink refuses them. It runs regent and client-go workers under the
// same faults, one after the other against the same API server. regent must have a new leader
// within the lease duration plus 1 s and its resumed leader must end its term before it writes
// more than twice; client-go's figures are reported beside it.
func TestChaosSIGSTOP(t *testing.T) {
	ctx := context.Background()
	bin, err := examplerun.BuildPackage(ctx, filepath.Join(examplerun.RepoRoot(), "e2e"), "./cmd/chaosworker", filepath.Join(t.TempDir(), "chaosworker"))
	if err != nil {
		t.Fatal(err)
	}
	stale := map[library][]int{}
	for _, lib := range libraries {
		t.Run(string(lib), func(t *testing.T) { stale[lib] = pauseRounds(t, bin, lib) })
	}
	t.Logf("stale writes per SIGSTOP fault after resuming: regent %v, client-go %v", stale[regentLib], stale[clientGoLib])
}

// pauseRounds runs three workers of lib and pauses the leader five times; it returns the stale
// writes attempted after each resume.
func pauseRounds(t *testing.T, bin string, lib library) []int {
	const workers, rounds = 3, 5
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
	for i := range workers {
		who := fmt.Sprintf("%s-%d", lib, i)
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
		defer p.Stop(5 * time.Second)
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
	var staleWrites []int
	current := nextTerm()
	for round := range rounds {
		victim := procs[current]
		before := sink.rejectedFor(current)
		lostMu.Lock()
		lostBefore := lost[current]
		lostMu.Unlock()
		if err := victim.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stoppedAt := time.Now()
		successor := nextTerm()
		takeover := time.Since(stoppedAt)
		time.Sleep(fast.LeaseDuration + 2*time.Second - time.Since(stoppedAt)) // the pause lasts past the lease
		if err := victim.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		time.Sleep(fast.LeaseDuration) // the resumed process runs again, past its renew deadline
		stale := sink.rejectedFor(current) - before
		staleWrites = append(staleWrites, stale)
		lostMu.Lock()
		reported := lost[current] - lostBefore
		lostMu.Unlock()
		t.Logf("round %d: paused %s; %s took over %v after the pause began; stale writes after resuming: %d; losses reported: %d",
			round, current, successor, takeover.Round(time.Millisecond), stale, reported)
		if successor == current {
			t.Fatalf("round %d: the paused process led again", round)
		}
		if lib == regentLib && takeover > fast.LeaseDuration+time.Second { // client-go's is reported only
			t.Errorf("round %d: no leader within the lease duration plus 1 s (%v)", round, takeover)
		}
		if reported == 0 {
			t.Errorf("round %d: the resumed leader did not report its term lost", round)
		}
		if lib == regentLib && stale > 2 {
			t.Errorf("round %d: the resumed leader attempted %d stale writes", round, stale)
		}
		current = successor
	}
	return staleWrites
}
