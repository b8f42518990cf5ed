package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"
	"go.uber.org/zap"

	"github.com/regent-k8s/regent/lock"
)

// Monitoring provides *Health and *Metrics and serves /healthz, /readyz and /metrics on
// Config.HealthAddr. The metrics are registered with the graph's prometheus.Registerer (say
// controller-runtime's metrics.Registry, supplied with fx.Supply(fx.Annotate(metrics.Registry,
// fx.As(new(prometheus.Registerer))))), else its *prometheus.Registry, else a registry of their
// own; /metrics serves the graph's prometheus.Gatherer, else that registry.
var Monitoring = fx.Module("regent.monitoring",
	fx.Provide(NewMonitoring),
	fx.Invoke(func(*Health) {}), // builds the module, and so starts its server, even if nothing asks for Health
)

// MonitoringParams are NewMonitoring's inputs.
type MonitoringParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    Config
	Log       *zap.Logger `optional:"true"`
	// Registerer receives the metrics; Gatherer is served on /metrics. Either may be left out:
	// a Registerer that is also a Gatherer serves itself.
	Registerer prometheus.Registerer `optional:"true"`
	Gatherer   prometheus.Gatherer   `optional:"true"`
	// Registry, a registry of the application's, serves as both when the two are absent.
	Registry *prometheus.Registry `optional:"true"`
}

// MonitoringResult is what NewMonitoring provides.
type MonitoringResult struct {
	fx.Out
	Health  *Health
	Metrics *Metrics
}

// NewMonitoring builds Health and Metrics and, when Config.HealthAddr is set, an HTTP server
// started in OnStart and shut down in OnStop.
func NewMonitoring(p MonitoringParams) (MonitoringResult, error) {
	reg, gather := p.Registerer, p.Gatherer
	if reg == nil {
		if p.Registry != nil {
			reg = p.Registry
		} else {
			own := prometheus.NewRegistry()
			reg = own
			if gather == nil {
				gather = own
			}
		}
	}
	if gather == nil {
		if g, ok := reg.(prometheus.Gatherer); ok {
			gather = g
		} else if p.Config.HealthAddr != "" {
			return MonitoringResult{}, &lock.ConfigError{Field: "Gatherer", Value: nil,
				Reason: "the graph's prometheus.Registerer cannot be gathered; provide a prometheus.Gatherer to serve /metrics"}
		}
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return MonitoringResult{}, fmt.Errorf("register metrics: %w", err)
	}
	h := NewHealth()
	if p.Config.HealthAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("/healthz", h.Handler())
		mux.Handle("/readyz", h.Handler())
		mux.Handle("/metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{}))
		srv := &http.Server{Addr: p.Config.HealthAddr, Handler: mux}
		served := make(chan struct{})
		log := p.Log
		if log == nil {
			log = zap.NewNop()
		}
		p.Lifecycle.Append(fx.Hook{
			OnStart: func(context.Context) error {
				ln, err := net.Listen("tcp", srv.Addr)
				if err != nil {
					return fmt.Errorf("--health-addr %s: %w", srv.Addr, err)
				}
				go func() {
					defer close(served)
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						log.Error("health server stopped", zap.Error(err))
					}
				}()
				return nil
			},
			OnStop: func(ctx context.Context) error {
				err := srv.Shutdown(ctx)
				<-served
				return err
			},
		})
	}
	return MonitoringResult{Health: h, Metrics: m}, nil
}
