package lock

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/regent-k8s/regent/kubefake"
)

// nilCtx is a nil context, passed on purpose.
var nilCtx context.Context

func TestZeroValuesAreRefusedWithoutPanicking(t *testing.T) {
	env := kubefake.NewEnv()
	self := pod("me", "uid-me", corev1.PodRunning, "")
	lease := newTestLease(t, env, me)
	life := newTestLife(t, env, self)
	var zero Term
	tests := []struct {
		name string
		call func() error
	}{
		{"NewLease nil client", func() error { _, err := NewLease(nil, testNS, testName); return err }},
		{"NewLease nil option", func() error {
			_, err := NewLease(env.Client.CoordinationV1(), testNS, testName, nil, WithLogger(nil))
			return wantNil(err)
		}},
		{"NewConfigMapForLife nil client", func() error { _, err := NewConfigMapForLife(nil, self, testName); return err }},
		{"NewConfigMapForLife nil pod", func() error { _, err := NewConfigMapForLife(env.Client.CoreV1(), nil, testName); return err }},
		{"NewLeaderLockForLife nil clients", func() error { _, err := NewLeaderLockForLife(nil, nil, self, testName); return err }},
		{"Lease.Acquire nil ctx", func() error { _, err := lease.Acquire(nilCtx); return err }},
		{"Lease.TryAcquire nil ctx", func() error { _, err := lease.TryAcquire(nilCtx); return err }},
		{"Lease.Observe nil ctx", func() error { return lease.Observe(nilCtx, func(Observation) {}) }},
		{"Lease.Observe nil fn", func() error { return lease.Observe(context.Background(), nil) }},
		{"ForLife.Acquire nil ctx", func() error { _, err := life.Acquire(nilCtx); return err }},
		{"ForLife.TryAcquire nil ctx", func() error { _, err := life.TryAcquire(nilCtx); return err }},
		{"ForLife.Observe nil fn", func() error { return life.Observe(context.Background(), nil) }},
		{"zero Term Release", func() error { return zero.Release(context.Background()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrInvalidConfig) && !errors.Is(err, errNoError) {
				t.Errorf("got %v, want an error matching ErrInvalidConfig", err)
			}
		})
	}
	if !closed(zero.Done()) || zero.Err() != nil || !zero.ExclusiveUntil().IsZero() {
		t.Error("a zero Term should read as ended, with no error and no exclusive time")
	}
}

// errNoError marks a call that must succeed.
var errNoError = errors.New("no error")

func wantNil(err error) error {
	if err == nil {
		return errNoError
	}
	return err
}
