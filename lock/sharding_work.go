package lock

import (
	"context"

	"go.uber.org/zap"
)

// shardWork is the work of one held shard.
type shardWork struct {
	term   *Term
	cancel context.CancelCauseFunc // stops the work, with ErrMoved or ErrLeaving as the cause
	moving bool                    // the shard is being given up to balance the members
}

// shardExit says that a shard's work has returned and the shard has been released.
type shardExit struct {
	shard   int
	cause   error // why the work's context ended
	failure error // what the work returned while its context was live
}

// start runs the work of shard i, just taken with term, in a goroutine of its own: when the
// work's context ends (moved, leaving, or the term lost) and the work has returned, it releases
// the shard and reports on finished.
func (r *shardingRun) start(i int, term *Term) {
	wctx, cancel := context.WithCancelCause(context.WithValue(term.Context(), shardTermKey{}, term))
	r.running[i] = &shardWork{term: term, cancel: cancel}
	r.s.noteHeld(i, term.Token())
	log := r.s.o.log.With(zap.Int("shard", i))
	go func() {
		err := r.work(wctx, i)
		var failure error
		switch {
		case wctx.Err() != nil:
		case err != nil:
			failure = err
			cancel(err)
		default:
			log.Info("the shard's work returned; the shard stays held until it moves or Run ends")
			<-wctx.Done()
		}
		cause := context.Cause(wctx)
		if rerr := term.Release(context.Background()); rerr != nil {
			log.Info("could not release the shard; it expires", zap.Error(rerr))
		}
		r.finished <- shardExit{shard: i, cause: cause, failure: failure}
	}()
}

type shardTermKey struct{}

// ShardTerm returns the term under which a shard's work runs, from the ctx that Sharding.Run
// passes to the work: its Token fences the shard's writes, and its Lock names the shard's Lease.
func ShardTerm(ctx context.Context) (*Term, bool) {
	if ctx == nil {
		return nil, false
	}
	t, ok := ctx.Value(shardTermKey{}).(*Term)
	return t, ok
}
