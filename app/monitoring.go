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
)

// Monitoring provides *Health and *Metrics (registered with the graph's prometheus.Registerer,
// or a registry of its own) and serves /healthz, /readyz and /metrics on Config.HealthAddr.
var Monitoring = fx.Module("regent.monitoring",
	fx.Provide(NewMonitoring),
	fx.Invoke(func(*Health) {}), // builds the module, and so starts its server, even if nothing asks for Health
)

// MonitoringParams are NewMonitoring's inputs.
type MonitoringParams struct {
	fx.In
	Lifecycle fx.Lifecycle
	Config    Config
	Log       *zap.Logger          `optional:"true"`
	Registry  *prometheus.Registry `optional:"true"`
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
	reg := p.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
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
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
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
