package lock

import (
	"testing"
	"time"

	"github.com/regent-k8s/regent/kubefake"
)

func TestBackoffDoublesWithJitterAndNeverExceedsMax(t *testing.T) {
	b := newBackoff(kubefake.NewClock(kubefake.NewSignal(), kubefake.Epoch), 100*time.Millisecond, 2*time.Second)
	want := []time.Duration{100, 200, 400, 800, 1600, 2000, 2000, 2000}
	for i := range 100 {
		base := want[min(i, len(want)-1)] * time.Millisecond
		got := b.step()
		if got < base*9/10 || got > min(base*11/10, 2*time.Second) {
			t.Fatalf("step %d = %v, want %v ±10%% and at most 2s", i, got, base)
		}
	}
	b.reset()
	if got := b.step(); got > 110*time.Millisecond {
		t.Fatalf("first step after reset = %v, want about 100ms", got)
	}
}
