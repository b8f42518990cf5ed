package app

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/kubernetes"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

func shardedApp(t *testing.T, env *kubefake.Env, cfg Config, opts ...fx.Option) *fxtest.App {
	info := contextinfo.Info{Namespace: "default", PodName: "pod-0"}
	return fxtest.New(t, append([]fx.Option{
		fx.Supply(cfg, info, zaptest.NewLogger(t)),
		fx.Provide(func() kubernetes.Interface { return env.Client }),
	}, opts...)...)
}

func TestShardedWorkloadRunsEveryShardAndCountsThem(t *testing.T) {
	env := kubefake.NewEnv()
	m, err := NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	running := map[int]bool{}
	work := func(ctx context.Context, shard int) error {
		mu.Lock()
		running[shard] = true
		mu.Unlock()
		env.Notify()
		<-ctx.Done()
		mu.Lock()
		delete(running, shard)
		mu.Unlock()
		return nil
	}
	var sharding *lock.Sharding
	app := shardedApp(t, env, testConfig(), fx.Supply(m), ShardedWorkloadOf(3, func() ShardWork { return work }), fx.Populate(&sharding))
	app.RequireStart()
	env.Await(t, "the 3 shards' work", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(running) == 3
	})
	env.Await(t, "the metrics", func() bool {
		for i := range 3 {
			if testutil.ToFloat64(m.shardHeld.WithLabelValues(sharding.String(), strconv.Itoa(i))) != 1 {
				return false
			}
		}
		return true
	})
	app.RequireStop()
	if len(running) != 0 {
		t.Fatalf("work still running after stop: %v", running)
	}
	if got := testutil.ToFloat64(m.shardChanges.WithLabelValues(sharding.String(), "0", "taken")); got != 1 {
		t.Fatalf("shard 0 taken %v times", got)
	}
}

func TestShardedWorkloadShutsDownWhenAShardFails(t *testing.T) {
	env := kubefake.NewEnv()
	app := shardedApp(t, env, testConfig(), ShardedWorkloadOf(2, func() ShardWork {
		return func(ctx context.Context, shard int) error { return errors.New("broken") }
	}))
	app.RequireStart()
	if sig := kubefake.Receive(t, app.Wait(), "the shutdown"); sig.ExitCode != 1 {
		t.Fatalf("exit code %d, want 1", sig.ExitCode)
	}
	app.RequireStop()
}

func TestShardedWorkloadNeedsALeaseKind(t *testing.T) {
	cfg := testConfig()
	cfg.LockKind = KindConfigMap
	_, err := NewSharding(ShardingParams{Config: cfg, Client: kubefake.NewEnv().Client}, 2)
	var fe *FlagError
	if !errors.As(err, &fe) || fe.Flag != "lock-kind" {
		t.Fatalf("got %v, want a FlagError naming lock-kind", err)
	}
	_, err = NewSharding(ShardingParams{Config: testConfig(), Info: contextinfo.Info{Namespace: "default"}, Client: kubefake.NewEnv().Client}, 0)
	var ce *lock.ConfigError
	if !errors.As(err, &ce) || ce.Field != "shards" {
		t.Fatalf("got %v, want a ConfigError naming shards", err)
	}
}
