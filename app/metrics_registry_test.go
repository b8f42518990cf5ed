package app

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/regent-k8s/regent/lock"
)

// gathered reports whether reg has a metric family named name.
func gathered(t *testing.T, g prometheus.Gatherer, name string) bool {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return true
		}
	}
	return false
}

func TestMonitoringRegistersWithTheGraphsRegisterer(t *testing.T) {
	// controller-runtime's metrics.Registry is a prometheus.RegistererGatherer: supplied as a
	// Registerer, it must receive regent's metrics.
	reg := prometheus.NewRegistry()
	var m *Metrics
	app := fxtest.New(t, fx.Supply(testConfig()), fx.Supply(fx.Annotate(reg, fx.As(new(prometheus.Registerer)))), Monitoring, fx.Populate(&m))
	app.RequireStart().RequireStop()
	m.Acquired("lease default/x", lock.Token{}, 0)
	if !gathered(t, reg, "regent_is_leader") {
		t.Error("the graph's Registerer has no regent_is_leader")
	}
}

func TestTwoMetricsShareOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewMetrics(reg)
	if err != nil {
		t.Fatalf("a second NewMetrics on the same registry: %v", err)
	}
	a.Acquired("lease default/a", lock.Token{}, 0)
	b.Acquired("lease default/b", lock.Token{}, 0)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "regent_is_leader" && len(mf.GetMetric()) != 2 {
			t.Errorf("regent_is_leader has %d series, want one per lock", len(mf.GetMetric()))
		}
	}
}

func TestARegistererThatCannotBeGatheredNeedsAGatherer(t *testing.T) {
	cfg := testConfig()
	cfg.HealthAddr = "127.0.0.1:0"
	wrapped := prometheus.WrapRegistererWithPrefix("app_", prometheus.NewRegistry()) // not a Gatherer
	_, err := NewMonitoring(MonitoringParams{Lifecycle: fxtest.NewLifecycle(t), Config: cfg, Registerer: wrapped})
	var ce *lock.ConfigError
	if !errors.As(err, &ce) || ce.Field != "Gatherer" {
		t.Fatalf("NewMonitoring = %v, want a ConfigError naming Gatherer", err)
	}
	own := prometheus.NewRegistry()
	if _, err := NewMonitoring(MonitoringParams{Lifecycle: fxtest.NewLifecycle(t), Config: cfg, Registerer: wrapped, Gatherer: own}); err != nil {
		t.Fatalf("with a Gatherer: %v", err)
	}
}
