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
	return &fencingSink{newTerm: make(chan string, 100), accepted: map[string]int{}, rejected: map[string]int{}}
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
// its old token. The fencing sink rejects them; regent's resumed leader must end its term before
// it writes more than once or twice. Anchor: client-go's resumed leader kept working for about
// 10 s inside its successor's term (about 500 stale ticks of 20 ms).
func TestChaosSIGSTOP(t *testing.T) {
	const workers, rounds = 3, 5
	ctx := context.Background()
	bin, err := examplerun.BuildPackage(ctx, filepath.Join(examplerun.RepoRoot(), "e2e"), "./cmd/chaosworker", filepath.Join(t.TempDir(), "chaosworker"))
	if err != nil {
		t.Fatal(err)
	}
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
		who := fmt.Sprintf("w%d", i)
		p, err := examplerun.Start(who, bin, []string{"--namespace=" + ns, "--identity=" + who, "--sink=" + srv.URL}, []string{"KUBECONFIG=" + kubeconfig},
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
		time.Sleep(2 * time.Second) // the resumed process runs again
		stale := sink.rejectedFor(current) - before
		lostMu.Lock()
		reported := lost[current] - lostBefore
		lostMu.Unlock()
		t.Logf("round %d: paused %s; %s took over %v after the pause began; stale writes after resuming: %d; losses reported by %s: %d",
			round, current, successor, takeover.Round(time.Millisecond), stale, current, reported)
		if successor == current {
			t.Fatalf("round %d: the paused process led again", round)
		}
		if takeover > fast.LeaseDuration+time.Second {
			t.Errorf("round %d: no leader within the lease duration plus 1 s (%v)", round, takeover)
		}
		if stale > 2 {
			t.Errorf("round %d: the resumed leader attempted %d stale writes", round, stale)
		}
		if reported == 0 {
			t.Errorf("round %d: the resumed leader did not report its term lost", round)
		}
		current = successor
	}
}
