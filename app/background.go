package app

import (
	"context"
	"errors"
	"fmt"

	"go.uber.org/fx"
	"go.uber.org/zap"
)

// runForLife runs run in the background for the application's life: started from OnStart,
// cancelled and awaited in OnStop. When run returns on its own, the application shuts down
// through sd: exit code 0 if it returned nil, 1 otherwise. what names it in logs and errors.
func runForLife(lc fx.Lifecycle, sd fx.Shutdowner, log *zap.Logger, what string, run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	lc.Append(fx.Hook{
		OnStart: func(context.Context) error {
			go func() {
				defer close(done)
				err := run(ctx)
				if ctx.Err() != nil {
					return // stopping: OnStop asked for it
				}
				code := 0
				if err != nil {
					code = 1
					log.Error(what+" failed; shutting down", zap.Error(err))
				} else {
					log.Info(what + " finished; shutting down")
				}
				if serr := sd.Shutdown(fx.ExitCode(code)); serr != nil && !errors.Is(serr, context.Canceled) {
					log.Error("shutdown", zap.Error(serr))
				}
			}()
			return nil
		},
		OnStop: func(stopCtx context.Context) error {
			cancel()
			select {
			case <-done:
				return nil
			case <-stopCtx.Done():
				return fmt.Errorf("the %s did not return before the stop timeout", what)
			}
		},
	})
}
