package lock

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/kubefake"
)

const semName = "pool"

func newTestSemaphore(t *testing.T, env *kubefake.Env, identity string, n int, opts ...Option) *Semaphore {
	t.Helper()
	all := append([]Option{WithIdentity(identity), WithClock(env.Clock), WithLogger(zaptest.NewLogger(t))}, opts...)
	s, err := NewSemaphore(env.Client.CoordinationV1(), testNS, semName, n, all...)
	if err != nil {
		t.Fatalf("NewSemaphore: %v", err)
	}
	return s
}

func getObject(t *testing.T, env *kubefake.Env, name string) *coordinationv1.Lease {
	t.Helper()
	obj, err := env.Tracker.Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), testNS, name)
	if err != nil {
		t.Fatalf("get lease %s: %v", name, err)
	}
	return obj.(*coordinationv1.Lease)
}

// slotObject is slot i of the test semaphore as a holder that renewed at renew wrote it.
func slotObject(i int, holder string, transitions int32, renew time.Time) *coordinationv1.Lease {
	l := leaseObject(holder, transitions, renew)
	l.Name = semName + "-" + strconv.Itoa(i)
	l.Labels = map[string]string{SemaphoreLabel: semName}
	return l
}

func sizeObject(size int) *coordinationv1.Lease {
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: semName,
		Labels:      map[string]string{SemaphoreLabel: semName},
		Annotations: map[string]string{SemaphoreSizeAnnotation: strconv.Itoa(size)}}}
}

// holdersOf returns the holder of each slot below n as stored.
func holdersOf(t *testing.T, env *kubefake.Env, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		obj, err := env.Tracker.Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), testNS, semName+"-"+strconv.Itoa(i))
		if err != nil {
			out = append(out, "")
			continue
		}
		out = append(out, recordOf(obj.(*coordinationv1.Lease)).holder)
	}
	return out
}

func TestSemaphoreLetsNHoldAndTheNextWaitWithoutRequests(t *testing.T) {
	env := kubefake.NewEnv()
	ctx := context.Background()
	a, b, c := newTestSemaphore(t, env, "a_1", 2), newTestSemaphore(t, env, "b_1", 2), newTestSemaphore(t, env, "c_1", 2)
	ta, err := a.Acquire(ctx)
	if err != nil {
		t.Fatalf("a: %v", err)
	}
	tb, err := b.Acquire(ctx)
	if err != nil {
		t.Fatalf("b: %v", err)
	}
	defer releaseTerm(t, tb)
	if ta.Lock() == tb.Lock() {
		t.Fatalf("a and b hold the same slot %s", ta.Lock())
	}
	size := getObject(t, env, semName)
	if size.Annotations[SemaphoreSizeAnnotation] != "2" || size.Labels[SemaphoreLabel] != semName {
		t.Errorf("size record = %v %v, want size 2 and the semaphore's label", size.Annotations, size.Labels)
	}
	for i := range 2 {
		if got := getObject(t, env, semName+"-"+strconv.Itoa(i)).Labels[SemaphoreLabel]; got != semName {
			t.Errorf("slot %d labelled %q, want %q", i, got, semName)
		}
	}

	// c waits: one read of the size, one list and one watch, then nothing while both are held.
	// Each term runs a renewal and a deadline timer; a term's are armed just after Acquire returns.
	const holding = 4
	env.Await(t, "both terms' renewal and deadline timers", func() bool { return env.Clock.Waiters() == holding })
	before := len(env.Client.Actions())
	res := acquireAsync(ctx, c)
	env.Await(t, "c's expiry timers for both held slots", func() bool { return env.Clock.Waiters() == holding+2 })
	var verbs []string
	for _, act := range env.Client.Actions()[before:] {
		verbs = append(verbs, act.GetVerb())
	}
	if want := []string{"get", "watch", "list"}; !slices.Equal(verbs, want) {
		t.Errorf("a waiter's requests = %v, want %v", verbs, want)
	}

	releaseTerm(t, ta)
	got := kubefake.Receive(t, res, "c's acquisition")
	if got.err != nil {
		t.Fatalf("c: %v", got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Lock() != ta.Lock() {
		t.Errorf("c took %s, want the released %s", got.term.Lock(), ta.Lock())
	}
	if got.term.Token().Seq != ta.Token().Seq+1 {
		t.Errorf("c's token %d, want one above the released term's %d in the same slot", got.term.Token().Seq, ta.Token().Seq)
	}
}

func TestSemaphoreTakesACrashedHoldersSlotAtExpiry(t *testing.T) {
	env := kubefake.NewEnv(sizeObject(1), slotObject(0, rival, 3, kubefake.Epoch))
	s := newTestSemaphore(t, env, me, 1)
	res := acquireAsync(context.Background(), s)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	env.Clock.Step(15*time.Second - time.Millisecond)
	if h := holdersOf(t, env, 1); h[0] != rival {
		t.Fatalf("slot taken before it expired: %v", h)
	}
	env.Clock.Step(time.Millisecond)
	got := kubefake.Receive(t, res, "acquisition")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Token().Seq != 4 {
		t.Errorf("token %d, want 4", got.term.Token().Seq)
	}
}

func TestSemaphoreFollowsTheRecordedSize(t *testing.T) {
	// The record says 1; a candidate given 3 follows it and waits.
	env := kubefake.NewEnv(sizeObject(1), slotObject(0, rival, 3, kubefake.Epoch))
	s := newTestSemaphore(t, env, me, 3)
	ctx, cancel := context.WithCancel(context.Background())
	res := acquireAsync(ctx, s)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	cancel()
	got := kubefake.Receive(t, res, "the end of the wait")
	var held *HeldError
	if !errors.As(got.err, &held) || held.Holder != rival || !errors.Is(got.err, context.Canceled) {
		t.Fatalf("Acquire = %v, want a *HeldError naming %q and wrapping the cancellation", got.err, rival)
	}
	if countActions(env, "create") != 0 {
		t.Errorf("a candidate created a slot beyond the recorded size")
	}
}

func TestSemaphoreResize(t *testing.T) {
	env := kubefake.NewEnv()
	ctx := context.Background()
	a, b, c := newTestSemaphore(t, env, "a_1", 2), newTestSemaphore(t, env, "b_1", 2), newTestSemaphore(t, env, "c_1", 2)
	ta, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseTerm(t, ta)
	tb, err := b.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Each term runs a renewal and a deadline timer; a term's are armed just after Acquire returns.
	const holding = 4
	env.Await(t, "both terms' renewal and deadline timers", func() bool { return env.Clock.Waiters() == holding })
	res := acquireAsync(ctx, c)
	env.Await(t, "c's expiry timers for both held slots", func() bool { return env.Clock.Waiters() == holding+2 })

	// Lowering the size to 1 ends the term of slot 1, whoever holds it; the slot is never taken
	// again, not even once released.
	high, low := tb, ta
	if ta.Lock() > tb.Lock() {
		high, low = ta, tb
	}
	if err := a.Resize(ctx, 1); err != nil {
		t.Fatal(err)
	}
	kubefake.Receive(t, high.Lost(), "the loss of the removed slot's term")
	var lost *LostError
	if !errors.As(high.Err(), &lost) {
		t.Fatalf("removed slot's term ended with %v, want a *LostError", high.Err())
	}
	if closed(low.Done()) {
		t.Fatalf("the term of slot 0 ended: %v", low.Err())
	}
	releaseTerm(t, high)
	env.Await(t, "the released slot seen by c", func() bool {
		l := c.slot(1)
		l.mu.Lock()
		defer l.mu.Unlock()
		// high's renewal timers are gone; c waits for slot 0's expiry alone.
		return l.last != nil && l.last.record.holder == "" && env.Clock.Waiters() == holding-1
	})
	if h := holdersOf(t, env, 2); h[1] != "" {
		t.Fatalf("slot 1 taken by %q after the size was lowered to 1", h[1])
	}
	select {
	case got := <-res:
		t.Fatalf("c acquired %v (%v) after the size was lowered to 1", got.term.Lock(), got.err)
	default:
	}

	// Raising it again lets c take slot 1 at once.
	if err := b.Resize(ctx, 2); err != nil {
		t.Fatal(err)
	}
	got := kubefake.Receive(t, res, "c's acquisition")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Lock() != high.Lock() {
		t.Errorf("c took %s, want the slot added again, %s", got.term.Lock(), high.Lock())
	}
}

func TestSemaphoreTryAcquire(t *testing.T) {
	env := kubefake.NewEnv(sizeObject(2), slotObject(0, rival, 3, kubefake.Epoch))
	ctx := context.Background()
	s := newTestSemaphore(t, env, me, 2)
	term, err := s.TryAcquire(ctx)
	if err != nil {
		t.Fatalf("TryAcquire with a free slot: %v", err)
	}
	defer releaseTerm(t, term)
	if term.Lock() != "lease default/pool-1" {
		t.Errorf("took %s, want the free slot pool-1", term.Lock())
	}
	_, err = newTestSemaphore(t, env, "other_1", 2).TryAcquire(ctx)
	var held *HeldError
	if !errors.As(err, &held) || held.Holder != me+","+rival {
		t.Errorf("TryAcquire with every slot held = %v, want a *HeldError naming %s,%s", err, me, rival)
	}
}

func TestSemaphoreObserve(t *testing.T) {
	env := kubefake.NewEnv(sizeObject(2), slotObject(1, rival, 3, kubefake.Epoch))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := newTestSemaphore(t, env, me, 2)
	seen := make(chan Observation, 10)
	done := make(chan error, 1)
	go func() { done <- s.Observe(ctx, func(o Observation) { seen <- o }) }()
	first := kubefake.Receive(t, seen, "the first observation")
	if !slices.Equal(first.Holders, []string{"", rival}) || first.Holder != rival {
		t.Errorf("first observation = %q %v, want %q [\"\" %s]", first.Holder, first.Holders, rival, rival)
	}
	term, err := s.TryAcquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseTerm(t, term)
	next := kubefake.Receive(t, seen, "the next observation")
	if !slices.Equal(next.Holders, []string{me, rival}) || next.Holder != me+","+rival {
		t.Errorf("next observation = %q %v, want both slots held", next.Holder, next.Holders)
	}
	cancel()
	if err := kubefake.Receive(t, done, "Observe's return"); err != nil {
		t.Errorf("Observe = %v", err)
	}
}

func TestNewSemaphoreRefusesBadInput(t *testing.T) {
	env := kubefake.NewEnv()
	long := "a123456789012345678901234567890123456789012345678901234567890123" // 64 characters
	for _, tt := range []struct {
		name, lockName, field string
		n                     int
	}{
		{"size 0", semName, "n", 0},
		{"size too large", semName, "n", MaxSemaphoreSize + 1},
		{"name too long for a label", long, "name", 1},
		{"name not a DNS name", "Pool", "name", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSemaphore(env.Client.CoordinationV1(), testNS, tt.lockName, tt.n, WithIdentity(me))
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != tt.field {
				t.Errorf("NewSemaphore = %v, want a *ConfigError on %s", err, tt.field)
			}
		})
	}
	_, err := NewSemaphore(env.Client.CoordinationV1(), testNS, semName, 1, WithKeepOnRelease())
	if !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("a leader-for-life option = %v, want refused", err)
	}
	s := newTestSemaphore(t, env, me, 1)
	if err := s.Resize(context.Background(), -1); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Resize(-1) = %v, want refused", err)
	}
}

func TestSemaphoreAcquireRetriesAFailedReadOfTheSize(t *testing.T) {
	// The API server restarts while a candidate starts: its first read of the size fails.
	env := kubefake.NewEnv()
	failed := 0
	failLeases(env, "get", func() bool { failed++; return failed == 1 }, apierrors.NewServiceUnavailable("restarting"))
	s := newTestSemaphore(t, env, me, 2)
	res := acquireAsync(context.Background(), s)
	env.Await(t, "the retry timer", func() bool { return env.Clock.Waiters() == 1 })
	env.Clock.Step(time.Second)
	got := kubefake.Receive(t, res, "acquisition")
	if got.err != nil {
		t.Fatalf("Acquire = %v, want the read retried", got.err)
	}
	releaseTerm(t, got.term)

	// A refusal is not retried.
	failLeases(env, "get", func() bool { return true }, apierrors.NewForbidden(coordinationv1.Resource("leases"), semName, errors.New("no")))
	if _, err := s.Acquire(context.Background()); !errors.Is(err, ErrAPI) {
		t.Errorf("Acquire when forbidden = %v, want an *APIError", err)
	}
}

func TestSemaphoreSlotDeletedWhileHeldBindsLikeItsRecord(t *testing.T) {
	// kubectl delete lease pool-0 while its holder works: a waiter that saw the record waits
	// until it would have expired before creating the slot again, as for a Lease lock.
	env := kubefake.NewEnv(sizeObject(1), slotObject(0, rival, 3, kubefake.Epoch))
	s := newTestSemaphore(t, env, me, 1)
	res := acquireAsync(context.Background(), s)
	env.Await(t, "the expiry timer", func() bool { return env.Clock.Waiters() == 1 })
	armed := env.Clock.TimersCreated()
	if err := env.Tracker.Delete(coordinationv1.SchemeGroupVersion.WithResource("leases"), testNS, semName+"-0"); err != nil {
		t.Fatal(err)
	}
	env.Await(t, "the wait for the deleted record", func() bool {
		return env.Clock.TimersCreated() > armed && env.Clock.Waiters() == 1
	})
	env.Clock.Step(15*time.Second - time.Millisecond)
	if countActions(env, "create") != 0 {
		t.Fatal("the deleted slot was created again before its record would have expired")
	}
	env.Clock.Step(time.Millisecond)
	got := kubefake.Receive(t, res, "acquisition")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Token().Seq != 4 {
		t.Errorf("token %d, want 4: one above the deleted record's, so that tokens keep growing", got.term.Token().Seq)
	}
}

func TestSemaphoreRefusesAnInvalidSizeAndKeepsTheLastValidOne(t *testing.T) {
	for _, tt := range []struct {
		name  string
		value *string // nil: the annotation removed
	}{
		{"negative", ptrTo("-1")}, {"garbage", ptrTo("five")}, {"empty", ptrTo("")},
		{"above the maximum", ptrTo("1001")}, {"removed", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := kubefake.NewEnv()
			ctx := context.Background()
			core, logs := observer.New(zap.ErrorLevel)
			log := zap.New(core)
			a, b := newTestSemaphore(t, env, "a_1", 2, WithLogger(log)), newTestSemaphore(t, env, "b_1", 2, WithLogger(log))
			c := newTestSemaphore(t, env, "c_1", 2, WithLogger(log))
			ta, err := a.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer releaseTerm(t, ta)
			tb, err := b.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer releaseTerm(t, tb)
			res := acquireAsync(ctx, c)
			env.Await(t, "c's expiry timers for both held slots", func() bool { return env.Clock.Waiters() == 6 })

			rec := getObject(t, env, semName).DeepCopy()
			if tt.value == nil {
				delete(rec.Annotations, SemaphoreSizeAnnotation)
			} else {
				rec.Annotations[SemaphoreSizeAnnotation] = *tt.value
			}
			putLease(t, env, rec)
			env.Await(t, "c to refuse the size loudly", func() bool {
				return logs.FilterMessageSnippet("keeping the last valid size, 2").Len() > 0
			})
			if closed(ta.Done()) || closed(tb.Done()) {
				t.Fatalf("a holder lost its slot to an invalid size: %v, %v", ta.Err(), tb.Err())
			}
			noTerm(t, res, "a waiter after an invalid size")

			// Mended to 3: c takes the slot added.
			rec = getObject(t, env, semName).DeepCopy()
			if rec.Annotations == nil {
				rec.Annotations = map[string]string{}
			}
			rec.Annotations[SemaphoreSizeAnnotation] = "3"
			putLease(t, env, rec)
			got := kubefake.Receive(t, res, "c's acquisition once the size was mended to 3")
			if got.err != nil {
				t.Fatal(got.err)
			}
			releaseTerm(t, got.term)
		})
	}
}

func ptrTo[T any](v T) *T { return &v }
