package lock

import (
	"testing"
	"time"

	"github.com/regent-k8s/regent/kubefake"
)

func TestRenewalsAreBroughtForwardToSharedSlots(t *testing.T) {
	env := kubefake.NewEnv()
	l := newTestLease(t, env, me) // RetryPeriod 2 s: slots of 100 ms, starting on whole seconds
	lt := &leaseTerm{l: l}
	period := l.Timings().RetryPeriod
	tests := []struct {
		name string
		sent time.Duration // after Epoch, a whole second
		now  time.Duration
		want time.Duration // wait from now
	}{
		{"sent on a slot's start", 0, 0, period},
		{"sent inside a slot", 30 * time.Millisecond, 30 * time.Millisecond, period - 30*time.Millisecond},
		{"sent at a slot's end", 99 * time.Millisecond, 99 * time.Millisecond, period - 99*time.Millisecond},
		{"measured later", 30 * time.Millisecond, 500 * time.Millisecond, period - 500*time.Millisecond},
		{"already due", 0, 3 * time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env.Clock.SetTime(kubefake.Epoch.Add(tt.now))
			got := lt.renewIn(kubefake.Epoch.Add(tt.sent))
			if got != tt.want {
				t.Errorf("renewIn = %v, want %v", got, tt.want)
			}
			if next := tt.now + got; next > tt.sent+period && got > 0 {
				t.Errorf("next renewal %v after the send, later than the retry period %v", next-tt.sent, period)
			}
		})
	}

	// Two terms whose renewals fall due in the same slot renew at the same instant.
	env.Clock.SetTime(kubefake.Epoch.Add(5 * time.Second))
	a := lt.renewIn(kubefake.Epoch.Add(5*time.Second + 10*time.Millisecond - period))
	b := lt.renewIn(kubefake.Epoch.Add(5*time.Second + 70*time.Millisecond - period))
	if a != b || a != 0 {
		t.Errorf("renewals due 10 ms and 70 ms into one slot wait %v and %v, want both 0 (the slot's start)", a, b)
	}
}
