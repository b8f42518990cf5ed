package lock

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/regent-k8s/regent/kubefake"
)

const shardingName = "work"

func newTestSharding(t *testing.T, env *kubefake.Env, identity string, k int) *Sharding {
	t.Helper()
	s, err := NewSharding(env.Client.CoordinationV1(), testNS, shardingName, k,
		WithIdentity(identity), WithClock(env.Clock), WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatalf("NewSharding: %v", err)
	}
	return s
}

// shardLedger records which member runs each shard's work, and fails the test when a shard's
// work starts while another member's still runs.
type shardLedger struct {
	t       *testing.T
	signal  *kubefake.Signal
	mu      sync.Mutex
	running map[int]string
	starts  int
	causes  map[int]error // the cause of the last stop of each shard's work
}

func newShardLedger(t *testing.T, env *kubefake.Env) *shardLedger {
	return &shardLedger{t: t, signal: env.Signal, running: map[int]string{}, causes: map[int]error{}}
}

// work is who's work function: it runs until its ctx ends.
func (l *shardLedger) work(who string) func(context.Context, int) error {
	return func(ctx context.Context, shard int) error {
		l.mu.Lock()
		if other, ok := l.running[shard]; ok {
			l.mu.Unlock()
			l.t.Errorf("shard %d started in %s while it runs in %s", shard, who, other)
			return nil
		}
		if term, ok := ShardTerm(ctx); !ok || term.Lock() != "lease default/"+shardingName+"-"+strconv.Itoa(shard) {
			l.t.Errorf("shard %d's work has no term of its Lease in its ctx: %v", shard, term)
		}
		l.running[shard] = who
		l.starts++
		l.mu.Unlock()
		l.signal.Notify()
		<-ctx.Done()
		l.mu.Lock()
		delete(l.running, shard)
		l.causes[shard] = context.Cause(ctx)
		l.mu.Unlock()
		l.signal.Notify()
		return ctx.Err()
	}
}

// counts returns how many shards each member runs.
func (l *shardLedger) counts() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := map[string]int{}
	for _, who := range l.running {
		c[who]++
	}
	return c
}

func (l *shardLedger) startCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.starts
}

func runAsync(ctx context.Context, s *Sharding, work func(context.Context, int) error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.Run(ctx, work) }()
	return ch
}

// storedHolders returns the holder of each shard as stored.
func storedHolders(t *testing.T, env *kubefake.Env, k int) map[int]string {
	t.Helper()
	out := map[int]string{}
	for i := range k {
		obj, err := env.Tracker.Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), testNS, shardingName+"-"+strconv.Itoa(i))
		if err == nil {
			out[i] = recordOf(obj.(*coordinationv1.Lease)).holder
		}
	}
	return out
}

func TestShardingOneMemberRunsEveryShard(t *testing.T) {
	env := kubefake.NewEnv()
	ctx, cancel := context.WithCancel(context.Background())
	a := newTestSharding(t, env, "a_1", 8)
	ledger := newShardLedger(t, env)
	changes := a.Changes(ctx)
	done := runAsync(ctx, a, ledger.work("a"))
	env.Await(t, "a runs all 8 shards", func() bool { return ledger.counts()["a"] == 8 })
	if got := a.Held(); !slices.Equal(got, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
		t.Fatalf("Held = %v", got)
	}
	seen := map[int]bool{}
	for range 8 {
		c := kubefake.Receive(t, changes, "a change")
		if !c.Held || seen[c.Shard] || !c.Token.Ordered() {
			t.Fatalf("change %+v (seen %v)", c, seen)
		}
		seen[c.Shard] = true
	}
	member := getObject(t, env, a.MemberName("a_1"))
	if recordOf(member).holder != "a_1" || member.Labels[ShardingLabel] != shardingName || member.Annotations[ShardsAnnotation] != "8" {
		t.Fatalf("membership Lease = %+v", member.ObjectMeta)
	}

	cancel()
	if err := kubefake.Receive(t, done, "Run's end"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	for i, h := range storedHolders(t, env, 8) {
		if h != "" {
			t.Fatalf("shard %d still held by %q after Run returned", i, h)
		}
	}
	if _, err := env.Tracker.Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), testNS, a.MemberName("a_1")); err == nil {
		t.Fatal("the membership Lease is left behind after Run returned")
	}
	if len(a.Held()) != 0 {
		t.Fatalf("Held after Run = %v", a.Held())
	}
	for i, cause := range ledger.causes {
		if !errors.Is(cause, ErrLeaving) {
			t.Fatalf("shard %d stopped with %v, want ErrLeaving", i, cause)
		}
	}
}

func TestShardingJoinMovesOnlyTheNecessaryShardsAndLeaveGivesThemBack(t *testing.T) {
	env := kubefake.NewEnv()
	ctx := context.Background()
	const k = 8
	ledger := newShardLedger(t, env)
	a, b := newTestSharding(t, env, "a_1", k), newTestSharding(t, env, "b_1", k)
	actx, stopA := context.WithCancel(ctx)
	defer stopA()
	aDone := runAsync(actx, a, ledger.work("a"))
	env.Await(t, "a runs all shards", func() bool { return ledger.counts()["a"] == k })

	bctx, stopB := context.WithCancel(ctx)
	bDone := runAsync(bctx, b, ledger.work("b"))
	// A moved shard's work stops before its release, which Held then reflects.
	env.Await(t, "a and b run 4 each, and a has released the others", func() bool {
		c := ledger.counts()
		return c["a"] == 4 && c["b"] == 4 && len(a.Held()) == 4
	})
	if n := ledger.startCount(); n != k+4 {
		t.Fatalf("%d starts of work, want %d: only 4 shards should move", n, k+4)
	}
	// a gave up its highest-numbered shards.
	if got := a.Held(); !slices.Equal(got, []int{0, 1, 2, 3}) {
		t.Fatalf("a holds %v", got)
	}
	for i := 4; i < k; i++ {
		if !errors.Is(ledger.causes[i], ErrMoved) {
			t.Fatalf("shard %d's work stopped with %v, want ErrMoved", i, ledger.causes[i])
		}
	}

	stopB()
	if err := kubefake.Receive(t, bDone, "b's Run"); err != nil {
		t.Fatalf("b's Run: %v", err)
	}
	env.Await(t, "a runs all shards again", func() bool { return ledger.counts()["a"] == k })
	if n := ledger.startCount(); n != k+8 {
		t.Fatalf("%d starts of work, want %d", n, k+8)
	}
	stopA()
	if err := kubefake.Receive(t, aDone, "a's Run"); err != nil {
		t.Fatalf("a's Run: %v", err)
	}
}

func TestShardingTakesACrashedMembersShardsWhenTheyExpire(t *testing.T) {
	// z crashed holding shards 0 and 1 and its membership: nobody renews them.
	now := kubefake.Epoch
	env := kubefake.NewEnv()
	for _, obj := range []*coordinationv1.Lease{shardObject(0, "z_1", now), shardObject(1, "z_1", now)} {
		if err := env.Tracker.Add(obj); err != nil {
			t.Fatal(err)
		}
	}
	a := newTestSharding(t, env, "a_1", 4)
	crashed := shardObject(0, "z_1", now)
	crashed.Name = a.MemberName("z_1")
	if err := env.Tracker.Add(crashed); err != nil {
		t.Fatal(err)
	}
	ledger := newShardLedger(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runAsync(ctx, a, ledger.work("a"))
	// While z counts as live, a's share is 2: it takes the two free shards only.
	env.Await(t, "a runs shards 2 and 3", func() bool { return slices.Equal(a.Held(), []int{2, 3}) })
	// Nothing changes until the records expire, a LeaseDuration after a observed them.
	env.Await(t, "a's timers for the expiries", func() bool { return env.Clock.Waiters() > 0 })
	for range 8 {
		env.Clock.Step(2 * time.Second) // a's own renewals keep its terms alive
		if len(a.Held()) == 4 {
			break
		}
		env.Await(t, "a settles", func() bool { return env.Clock.Waiters() > 0 })
	}
	env.Await(t, "a runs every shard", func() bool { return len(a.Held()) == 4 })
	if h := storedHolders(t, env, 4); h[0] != "a_1" || h[1] != "a_1" {
		t.Fatalf("stored holders %v", h)
	}
	cancel()
	if err := kubefake.Receive(t, done, "Run's end"); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// shardObject is shard i of the test sharding as holder wrote it at renew.
func shardObject(i int, holder string, renew time.Time) *coordinationv1.Lease {
	l := leaseObject(holder, 1, renew)
	l.Name = shardingName + "-" + strconv.Itoa(i)
	l.Labels = map[string]string{ShardingLabel: shardingName}
	return l
}

func TestShardingFailedWorkEndsRunAndReleasesEverything(t *testing.T) {
	env := kubefake.NewEnv()
	a := newTestSharding(t, env, "a_1", 3)
	boom := errors.New("boom")
	ledger := newShardLedger(t, env)
	run := ledger.work("a")
	done := runAsync(context.Background(), a, func(ctx context.Context, shard int) error {
		if shard == 1 {
			return boom
		}
		return run(ctx, shard)
	})
	err := kubefake.Receive(t, done, "Run's end")
	var se *ShardError
	if !errors.As(err, &se) || se.Shard != 1 || !errors.Is(err, boom) {
		t.Fatalf("Run = %v, want a *ShardError of shard 1 wrapping boom", err)
	}
	for i, h := range storedHolders(t, env, 3) {
		if h != "" {
			t.Fatalf("shard %d still held by %q", i, h)
		}
	}
	if len(ledger.counts()) != 0 {
		t.Fatalf("work still running: %v", ledger.counts())
	}
}

func TestShardingRunsALostShardAgain(t *testing.T) {
	env := kubefake.NewEnv()
	a := newTestSharding(t, env, "a_1", 2)
	ledger := newShardLedger(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := runAsync(ctx, a, ledger.work("a"))
	// The membership's and both shards' terms each run a renewal and a deadline timer, armed just
	// after their work starts: the clock steps only once all six wait.
	env.Await(t, "a runs both shards", func() bool { return ledger.counts()["a"] == 2 && env.Clock.Waiters() == 6 })
	// Someone takes shard 0 by writing over it; a's next renewal finds it taken.
	taken := getObject(t, env, shardingName+"-0").DeepCopy()
	rec := recordOf(taken)
	rec.holder = "intruder"
	rec.writeTo(taken)
	putLease(t, env, taken)
	env.Clock.Step(2 * time.Second)
	env.Await(t, "shard 0's work stopped as lost", func() bool {
		ledger.mu.Lock()
		defer ledger.mu.Unlock()
		return errors.Is(ledger.causes[0], ErrLost)
	})
	// The intruder lets go: a runs shard 0 again, under a newer token.
	freed := getObject(t, env, shardingName+"-0").DeepCopy()
	rec = recordOf(freed)
	rec.holder = ""
	rec.writeTo(freed)
	putLease(t, env, freed)
	env.Await(t, "a runs shard 0 again", func() bool { return ledger.counts()["a"] == 2 })
	cancel()
	if err := kubefake.Receive(t, done, "Run's end"); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestShardingRefusesBadInput(t *testing.T) {
	env := kubefake.NewEnv()
	cs := env.Client.CoordinationV1()
	for _, tc := range []struct {
		field string
		make  func() (*Sharding, error)
	}{
		{"client", func() (*Sharding, error) { return NewSharding(nil, testNS, "x", 1) }},
		{"namespace", func() (*Sharding, error) { return NewSharding(cs, "", "x", 1) }},
		{"name", func() (*Sharding, error) { return NewSharding(cs, testNS, "Not_A_Name", 1) }},
		{"shards", func() (*Sharding, error) { return NewSharding(cs, testNS, "x", 0) }},
		{"shards", func() (*Sharding, error) { return NewSharding(cs, testNS, "x", MaxShards+1) }},
	} {
		_, err := tc.make()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Fatalf("got %v, want a *ConfigError naming %s", err, tc.field)
		}
	}
	s := newTestSharding(t, env, "a_1", 1)
	if err := s.Run(nilCtx, func(context.Context, int) error { return nil }); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Run(nil ctx) = %v", err)
	}
	if err := s.Run(context.Background(), nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Run(nil work) = %v", err)
	}
}

func TestShardingRunsOnceAtATimePerValue(t *testing.T) {
	env := kubefake.NewEnv()
	a := newTestSharding(t, env, "a_1", 1)
	ledger := newShardLedger(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(ctx, a, ledger.work("a"))
	env.Await(t, "a runs its shard", func() bool { return ledger.counts()["a"] == 1 })
	if err := a.Run(ctx, ledger.work("a")); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("a second Run = %v, want a *ConfigError", err)
	}
	cancel()
	if err := kubefake.Receive(t, done, "Run's end"); err != nil {
		t.Fatalf("Run: %v", err)
	}
}
