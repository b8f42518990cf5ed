package lock

import (
	"context"
	"sync"

	"go.uber.org/zap"
)

// observe runs a watcher and hands each observation to fn, in order, until ctx ends or the watcher
// reports a permanent failure.
func observe[T object](ctx context.Context, w *objectWatcher[T], fn func(observation[T]), lockName string) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan observation[T])
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(wctx, ch)
	}()
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case o := <-ch:
			if o.err != nil {
				return withLock(o.err, lockName)
			}
			fn(o)
		}
	}
}

// withLock fills in the lock's name on an *APIError.
func withLock(err error, lockName string) error {
	if ae, ok := err.(*APIError); ok && ae.Lock == "" {
		ae.Lock = lockName
	}
	return err
}

func zapLock(namespace, name string) zap.Field {
	return zap.String("lock", namespace+"/"+name)
}
