package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/regent-k8s/regent/kubefake"
)

func TestTryAcquireTakesARecordExpiredByTheClocksOnlyWithASkewBound(t *testing.T) {
	// The rival renewed at the epoch with a 15 s record and then crashed. With a 2 s bound on
	// clock skew, the record has expired once 17 s have passed on this clock, not before; without
	// a bound, TryAcquire never judges expiry.
	const skew = 2 * time.Second
	env := kubefake.NewEnv(leaseObject(rival, 5, kubefake.Epoch))
	plain := newTestLease(t, env, me)
	bounded := newTestLease(t, env, me, WithMaxClockSkew(skew))
	env.Clock.Step(15*time.Second + skew)
	if _, err := bounded.TryAcquire(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("TryAcquire at exactly duration+skew = %v, want ErrHeld", err)
	}
	env.Clock.Step(time.Millisecond)
	if _, err := plain.TryAcquire(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("TryAcquire without a skew bound = %v, want ErrHeld: it judges no expiry", err)
	}
	term, err := bounded.TryAcquire(context.Background())
	if err != nil {
		t.Fatalf("TryAcquire past duration+skew: %v", err)
	}
	defer releaseTerm(t, term)
	if term.Token().Seq != 6 {
		t.Errorf("token %d, want 6", term.Token().Seq)
	}
	if _, err := NewLease(env.Client.CoordinationV1(), testNS, testName, WithMaxClockSkew(-time.Second)); err == nil {
		t.Error("a negative skew bound was accepted")
	}
}
