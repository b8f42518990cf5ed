package leader

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

// recordingMarker notes what the lock's record said at each call.
type recordingMarker struct {
	t   *testing.T
	env *kubefake.Env

	mu        sync.Mutex
	calls     []string
	holderAt  map[string]string
	markEnded bool // Mark returned before Unmark began
	unmarkCtx bool // Unmark's context had a deadline
	block     bool // Mark blocks until its context ends
}

func (m *recordingMarker) note(call string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, call)
	m.holderAt[call] = holder(m.t, m.env)
}

func (m *recordingMarker) Mark(ctx context.Context, _ *lock.Term) error {
	m.note("mark")
	if m.block {
		<-ctx.Done()
		m.mu.Lock()
		m.markEnded = true
		m.mu.Unlock()
		return ctx.Err()
	}
	m.mu.Lock()
	m.markEnded = true
	m.mu.Unlock()
	return nil
}

func (m *recordingMarker) Unmark(ctx context.Context, _ *lock.Term) error {
	m.mu.Lock()
	if !m.markEnded {
		m.calls = append(m.calls, "unmark before mark returned")
	}
	_, m.unmarkCtx = ctx.Deadline()
	m.mu.Unlock()
	m.note("unmark")
	return errors.New("the API server is away")
}

func TestAMarkerMarksTheTermAndUnmarksItAfterTheWorkBeforeTheRelease(t *testing.T) {
	for _, block := range []bool{false, true} {
		env := kubefake.NewEnv()
		m := &recordingMarker{t: t, env: env, holderAt: map[string]string{}, block: block}
		e := newElection(t, env, "a_1", WithMarker(m))
		err := e.RunAsLeader(context.Background(), func(context.Context) error { return nil })
		if err != nil {
			t.Fatalf("block=%v: RunAsLeader: %v (a failed Unmark must not fail it)", block, err)
		}
		m.mu.Lock()
		calls, at, unmarkBounded := m.calls, m.holderAt, m.unmarkCtx
		m.mu.Unlock()
		if len(calls) != 2 || calls[0] != "mark" || calls[1] != "unmark" {
			t.Fatalf("block=%v: calls %v, want [mark unmark] (Unmark only after Mark returned)", block, calls)
		}
		if at["mark"] != "a_1" || at["unmark"] != "a_1" {
			t.Fatalf("block=%v: the record named %q at Mark and %q at Unmark, want a_1 at both (Unmark before the release)", block, at["mark"], at["unmark"])
		}
		if h := holder(t, env); h != "" {
			t.Fatalf("block=%v: after RunAsLeader the record names %q, want it released", block, h)
		}
		if !unmarkBounded {
			t.Fatalf("block=%v: Unmark's context has no deadline; a hanging API server would hold up the release", block)
		}
	}
}

func TestUnmarkLeavesTheReleaseTimeToRun(t *testing.T) {
	env := kubefake.NewEnv()
	var left time.Duration
	m := markerFuncs{unmark: func(ctx context.Context) error {
		d, _ := ctx.Deadline()
		left = time.Until(d)
		<-ctx.Done()
		return ctx.Err()
	}}
	e := newElection(t, env, "a_1", WithMarker(m), WithReleaseTimeout(time.Second))
	if err := e.RunAsLeader(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("RunAsLeader: %v", err)
	}
	if left <= 0 || left > 500*time.Millisecond {
		t.Fatalf("Unmark had %v, want at most half the 1 s release timeout", left)
	}
	if h := holder(t, env); h != "" {
		t.Fatalf("a hanging Unmark kept the release from happening: the record names %q", h)
	}
}

type markerFuncs struct{ unmark func(context.Context) error }

func (markerFuncs) Mark(context.Context, *lock.Term) error { return nil }
func (m markerFuncs) Unmark(ctx context.Context, _ *lock.Term) error {
	return m.unmark(ctx)
}
