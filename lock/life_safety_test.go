package lock

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/kubefake"
)

// laggingPodWatches makes every watch on pods a watcher the test feeds by hand, so that a
// waiter's view of the owner Pod can fall behind the API server's. Lists still read the tracker.
func laggingPodWatches(env *kubefake.Env) <-chan *watch.RaceFreeFakeWatcher {
	opened := make(chan *watch.RaceFreeFakeWatcher, 10)
	env.ReactWatch("pods", func(k8stesting.Action) (bool, watch.Interface, error) {
		w := watch.NewRaceFreeFake()
		opened <- w
		return true, w, nil
	})
	return opened
}

func replacePod(t *testing.T, env *kubefake.Env, old *corev1.Pod, uid types.UID) *corev1.Pod {
	t.Helper()
	if err := env.Tracker.Delete(pods, testNS, old.Name); err != nil {
		t.Fatal(err)
	}
	next := pod(old.Name, uid, corev1.PodRunning, "")
	if err := env.Tracker.Create(pods, next, testNS); err != nil {
		t.Fatal(err)
	}
	return next
}

func TestForLifeJudgesAPodReplacedUnderTheSameNameAsANewOwner(t *testing.T) {
	// app-0 of a StatefulSet holds the lock. It is replaced by a new app-0, which takes the lock
	// over, so the lock object now names app-0 with the new UID. The waiter's view of app-0
	// still shows the old Pod. It must not call the new holder replaced.
	me := pod("me", "uid-me", corev1.PodRunning, "")
	app0 := pod("app-0", "uid-old", corev1.PodRunning, "")
	env := kubefake.NewEnv(me, app0, lockOwnedBy(app0))
	laggingPodWatches(env)
	ctx, cancel := context.WithCancel(context.Background())
	res := lifeAcquireAsync(ctx, newTestLife(t, env, me))
	env.Await(t, "the owner pod listed", func() bool { return countActionsOf(env, "list", "pods") == 1 })

	fresh := replacePod(t, env, app0, "uid-new")
	cm, _ := getConfigMap(env)
	moved := lockOwnedBy(fresh)
	moved.ResourceVersion, moved.UID = cm.ResourceVersion, cm.UID
	if err := env.Tracker.Update(configmaps, moved, testNS); err != nil {
		t.Fatal(err)
	}
	env.Await(t, "the new owner listed by a watch of its own", func() bool { return countActionsOf(env, "list", "pods") == 2 })
	cancel()
	if got := kubefake.Receive(t, res, "Acquire to end"); !errors.Is(got.err, ErrHeld) {
		t.Fatalf("Acquire = %v, want it still waiting for the live holder", got.err)
	}
	if n := countActionsOf(env, "delete", "configmaps"); n != 0 {
		t.Errorf("%d deletes of the live holder's lock", n)
	}
}

func TestForLifeConfirmsAStaleOwnerByAFreshReadBeforeDeleting(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "")
	other := pod("other", "uid-other", corev1.PodRunning, "")
	env := kubefake.NewEnv(me, other, lockOwnedBy(other))
	opened := laggingPodWatches(env)
	ctx, cancel := context.WithCancel(context.Background())
	res := lifeAcquireAsync(ctx, newTestLife(t, env, me))
	w := kubefake.Receive(t, opened, "the owner watch")
	env.Await(t, "the owner pod listed", func() bool { return countActionsOf(env, "list", "pods") == 1 })
	// The watch says the owner is gone, but the API server still has it running.
	gone := other.DeepCopy()
	gone.ResourceVersion = "999"
	w.Delete(gone)
	env.Await(t, "the fresh read", func() bool { return countActionsOf(env, "get", "pods") == 1 })
	cancel()
	if got := kubefake.Receive(t, res, "Acquire to end"); !errors.Is(got.err, ErrHeld) {
		t.Fatalf("Acquire = %v, want it still waiting", got.err)
	}
	if n := countActionsOf(env, "delete", "configmaps"); n != 0 {
		t.Errorf("%d deletes of a running holder's lock", n)
	}
}

func TestForLifeResumesOnlyWhatAFreshReadConfirms(t *testing.T) {
	// The list shows this Pod's lock from an earlier process; by the time the waiter acts on it,
	// it was deleted and another Pod took the lock. Resuming it would make two holders.
	me := pod("me", "uid-me", corev1.PodRunning, "")
	other := pod("other", "uid-other", corev1.PodRunning, "")
	env := kubefake.NewEnv(me, other, lockOwnedBy(me))
	var once atomic.Bool
	env.React("list", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		if !once.CompareAndSwap(false, true) {
			return false, nil, nil
		}
		list, err := env.Tracker.List(configmaps, corev1.SchemeGroupVersion.WithKind("ConfigMap"), testNS)
		if err != nil {
			return true, nil, err
		}
		if err := env.Tracker.Delete(configmaps, testNS, testName); err != nil {
			return true, nil, err
		}
		return true, list, env.Tracker.Create(configmaps, lockOwnedBy(other), testNS)
	})
	ctx, cancel := context.WithCancel(context.Background())
	res := lifeAcquireAsync(ctx, newTestLife(t, env, me))
	env.Await(t, "the other holder's pod watched", func() bool { return countActionsOf(env, "watch", "pods") == 1 })
	cancel()
	if got := kubefake.Receive(t, res, "Acquire to end"); !errors.Is(got.err, ErrHeld) {
		t.Fatalf("Acquire = %v, want it waiting for the other holder", got.err)
	}
}

func TestForLifeTermsOfOnePodInOneProcessTakeTurns(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "")
	env := kubefake.NewEnv(me)
	first, err := newTestLife(t, env, me).Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second := newTestLife(t, env, me) // another value, same Pod and lock
	if _, err := second.TryAcquire(context.Background()); !errors.Is(err, ErrHeld) {
		t.Fatalf("TryAcquire while this process holds the lock = %v, want ErrHeld", err)
	}
	res := lifeAcquireAsync(context.Background(), second)
	select {
	case got := <-res:
		t.Fatalf("a second Acquire returned (%v, %v) while the first term lasts", got.term, got.err)
	default:
	}
	releaseTerm(t, first)
	got := kubefake.Receive(t, res, "the second term")
	if got.err != nil {
		t.Fatal(got.err)
	}
	defer releaseTerm(t, got.term)
	if got.term.Token() == first.Token() {
		t.Errorf("the second term has the first one's token %v", first.Token())
	}
}
