package app

import (
	"github.com/go-logr/zapr"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"
	"go.uber.org/zap"
	"k8s.io/klog/v2"
)

// Logging sends fx's own events and client-go's klog output to the graph's *zap.Logger. It
// does not provide the logger: supply yours, or add ProductionLogger.
var Logging = fx.Options(
	fx.WithLogger(func(log *zap.Logger) fxevent.Logger {
		return &fxevent.ZapLogger{Logger: log.Named("fx")}
	}),
	fx.Invoke(func(log *zap.Logger) { klog.SetLogger(zapr.NewLogger(log.Named("klog"))) }),
)

// ProductionLogger provides zap's production logger, for applications that have none.
var ProductionLogger = fx.Provide(func() (*zap.Logger, error) { return zap.NewProduction() })
