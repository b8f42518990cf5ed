package app

import (
	"errors"
	"testing"

	"go.uber.org/fx"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/lock"
)

func TestZeroValuesAreRefusedWhenTheGraphIsBuilt(t *testing.T) {
	tests := []struct {
		name string
		call func() error
	}{
		{"GuardedWorkload nil work", func() error { return fx.New(fx.NopLogger, GuardedWorkload(nil)).Err() }},
		{"NewMetrics nil registerer", func() error { _, err := NewMetrics(nil); return err }},
		{"NewLeaderElection nil client", func() error {
			_, err := NewLeaderElection(LeaderElectionParams{Config: testConfig(), Info: contextinfo.Info{Namespace: "default"}})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, lock.ErrInvalidConfig) {
				t.Errorf("got %v, want an error matching lock.ErrInvalidConfig", err)
			}
		})
	}
}
