package lock

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/kubefake"
)

var (
	configmaps = corev1.SchemeGroupVersion.WithResource("configmaps")
	pods       = corev1.SchemeGroupVersion.WithResource("pods")
)

func pod(name string, uid types.UID, phase corev1.PodPhase, node string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS, UID: uid},
		Spec:       corev1.PodSpec{NodeName: node},
		Status:     corev1.PodStatus{Phase: phase},
	}
}

func lockOwnedBy(p *corev1.Pod) *corev1.ConfigMap {
	yes := true
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: testName, Namespace: testNS,
		Annotations:     map[string]string{HolderAnnotation: p.Name + "_x"},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: p.Name, UID: p.UID, Controller: &yes}},
	}}
}

func newTestLife(t *testing.T, env *kubefake.Env, self *corev1.Pod, opts ...Option) *ForLife {
	t.Helper()
	l, err := NewConfigMapForLife(env.Client.CoreV1(), self, testName,
		append([]Option{WithClock(env.Clock), WithLogger(zaptest.NewLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func getConfigMap(env *kubefake.Env) (*corev1.ConfigMap, bool) {
	obj, err := env.Tracker.Get(configmaps, testNS, testName)
	if err != nil {
		return nil, false
	}
	return obj.(*corev1.ConfigMap), true
}

type lifeAcquired struct {
	term *Term
	err  error
}

func lifeAcquireAsync(ctx context.Context, l *ForLife) <-chan lifeAcquired {
	ch := make(chan lifeAcquired, 1)
	go func() {
		term, err := l.Acquire(ctx)
		ch <- lifeAcquired{term, err}
	}()
	return ch
}

func TestForLifeCreatesALockOwnedByItsPod(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "n1")
	env := kubefake.NewEnv(me)
	l := newTestLife(t, env, me, WithBlockOwnerDeletion())
	term, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cm, ok := getConfigMap(env)
	if !ok {
		t.Fatal("no lock object")
	}
	refs := cm.OwnerReferences
	if len(refs) != 1 || refs[0].Kind != "Pod" || refs[0].APIVersion != "v1" || refs[0].Name != "me" || refs[0].UID != "uid-me" ||
		refs[0].Controller == nil || !*refs[0].Controller || refs[0].BlockOwnerDeletion == nil || !*refs[0].BlockOwnerDeletion {
		t.Errorf("owner references = %+v", refs)
	}
	if cm.Annotations[HolderAnnotation] != l.Identity() || term.Token().ID != string(cm.UID) || term.Token().Ordered() {
		t.Errorf("holder %q token %+v, want identity %q and the object's uid, unordered", cm.Annotations[HolderAnnotation], term.Token(), l.Identity())
	}
	if !term.ExclusiveUntil().IsZero() {
		t.Error("a leader-for-life term cannot bound when others may take over")
	}
	releaseTerm(t, term)
	if _, ok := getConfigMap(env); ok {
		t.Error("Release left the lock object")
	}
}

func TestForLifeResumesTheTermOfItsOwnPod(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "")
	existing := lockOwnedBy(me)
	env := kubefake.NewEnv(me, existing)
	l := newTestLife(t, env, me)
	term, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer releaseTerm(t, term)
	cm, _ := getConfigMap(env)
	if term.Token().ID != string(cm.UID) || countActionsOf(env, "create", "configmaps") != 0 {
		t.Errorf("token %v, %d creates; want the existing object resumed", term.Token(), countActionsOf(env, "create", "configmaps"))
	}
}

func TestForLifeTakesOverFromStoppedHolders(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "n1")
	other := pod("other", "uid-other", corev1.PodRunning, "n2")
	notReady := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionUnknown}}}}
	evicted := other.DeepCopy()
	evicted.Status.Phase, evicted.Status.Reason = corev1.PodFailed, "Evicted"
	succeeded := other.DeepCopy()
	succeeded.Status.Phase = corev1.PodSucceeded
	replaced := other.DeepCopy()
	replaced.UID = "uid-other-2"
	tests := []struct {
		name string
		objs []runtime.Object
		opts []Option
	}{
		{name: "owner pod gone", objs: []runtime.Object{me}},
		{name: "owner pod evicted", objs: []runtime.Object{me, evicted}},
		{name: "owner pod succeeded", objs: []runtime.Object{me, succeeded}},
		{name: "owner pod replaced", objs: []runtime.Object{me, replaced}},
		{name: "owner on a NotReady node, opted in", objs: []runtime.Object{me, other, notReady}, opts: []Option{WithUnsafeTakeoverFromNotReadyNodes()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := kubefake.NewEnv(append(tt.objs, lockOwnedBy(other))...)
			l := newTestLife(t, env, me, tt.opts...)
			got := kubefake.Receive(t, lifeAcquireAsync(context.Background(), l), "the takeover")
			if got.err != nil {
				t.Fatal(got.err)
			}
			defer releaseTerm(t, got.term)
			cm, _ := getConfigMap(env)
			if podOwner(cm).UID != "uid-me" {
				t.Errorf("lock owned by %v, want this pod", podOwner(cm))
			}
		})
	}
}

func TestForLifeWaitsForARunningHolder(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "n1")
	other := pod("other", "uid-other", corev1.PodRunning, "n2")
	notReady := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n2"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse}}}}
	env := kubefake.NewEnv(me, other, notReady, lockOwnedBy(other))
	l := newTestLife(t, env, me) // a NotReady node alone is not enough without the opt-in
	res := lifeAcquireAsync(context.Background(), l)
	env.Await(t, "the watch on the owner pod", func() bool {
		return countActionsOf(env, "watch", "pods") == 1 && countActionsOf(env, "list", "pods") == 1
	})

	// The holder is evicted: the waiter sees it on the pod's watch and takes over.
	evicted := other.DeepCopy()
	evicted.Status.Phase, evicted.Status.Reason = corev1.PodFailed, "Evicted"
	if err := env.Tracker.Update(pods, evicted, testNS); err != nil {
		t.Fatal(err)
	}
	got := kubefake.Receive(t, res, "the takeover")
	if got.err != nil {
		t.Fatal(got.err)
	}
	releaseTerm(t, got.term)
}

func TestForLifeCreatesAtOnceWhenTheLockIsDeleted(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "")
	other := pod("other", "uid-other", corev1.PodRunning, "")
	env := kubefake.NewEnv(me, other, lockOwnedBy(other))
	l := newTestLife(t, env, me)
	res := lifeAcquireAsync(context.Background(), l)
	env.Await(t, "the watch on the owner pod", func() bool { return countActionsOf(env, "watch", "pods") == 1 })
	if err := env.Tracker.Delete(configmaps, testNS, testName); err != nil { // released, or collected
		t.Fatal(err)
	}
	got := kubefake.Receive(t, res, "the acquisition")
	if got.err != nil {
		t.Fatal(got.err)
	}
	releaseTerm(t, got.term)
}

func TestForLifeForeignDeleteLosesTheTerm(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "")
	env := kubefake.NewEnv(me)
	l := newTestLife(t, env, me)
	term, err := l.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	env.Await(t, "the term's watch", func() bool { return countActionsOf(env, "watch", "configmaps") == 2 })
	if err := env.Tracker.Delete(configmaps, testNS, testName); err != nil {
		t.Fatal(err)
	}
	kubefake.Receive(t, term.Lost(), "the term to be lost")
	if !errors.Is(term.Err(), ErrLost) {
		t.Errorf("Err = %v", term.Err())
	}
	releaseTerm(t, term)
}

func TestForLifeKeepOnReleaseLeavesTheObjectForGarbageCollection(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "")
	env := kubefake.NewEnv(me)
	term, err := newTestLife(t, env, me, WithKeepOnRelease()).Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	releaseTerm(t, term)
	if _, ok := getConfigMap(env); !ok {
		t.Error("the lock object was deleted")
	}
}

func TestForLifeRefusesToRunOutsideAPod(t *testing.T) {
	env := kubefake.NewEnv()
	_, err := NewConfigMapForLife(env.Client.CoreV1(), nil, testName)
	if !errors.Is(err, contextinfo.ErrPodNameMissing) || !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("NewConfigMapForLife(nil pod) = %v, want ErrPodNameMissing", err)
	}
}

func TestForLifeReportsForbiddenPodWatch(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "")
	other := pod("other", "uid-other", corev1.PodRunning, "")
	env := kubefake.NewEnv(me, other, lockOwnedBy(other))
	env.React("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(pods.GroupResource(), "other", errors.New(`cannot list resource "pods"`))
	})
	got := kubefake.Receive(t, lifeAcquireAsync(context.Background(), newTestLife(t, env, me)), "the failure")
	if !apierrors.IsForbidden(got.err) {
		t.Fatalf("Acquire = %v, want Forbidden", got.err)
	}
}

func countActionsOf(env *kubefake.Env, verb, resource string) int {
	n := 0
	for _, a := range env.Client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == resource {
			n++
		}
	}
	return n
}

func TestForLifeSeesADeletionRightAfterItsRead(t *testing.T) {
	me := pod("me", "uid-me", corev1.PodRunning, "")
	env := kubefake.NewEnv(me)
	var reads atomic.Int32
	env.React("list", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		// Read 1 is the waiter's, which finds nothing and creates. Read 2 is the term's own: the
		// object is deleted before the read's answer arrives.
		if reads.Add(1) != 2 {
			return false, nil, nil
		}
		list, err := env.Tracker.List(configmaps, corev1.SchemeGroupVersion.WithKind("ConfigMap"), testNS)
		if err == nil {
			err = env.Tracker.Delete(configmaps, testNS, testName)
		}
		return true, list, err
	})
	term, err := newTestLife(t, env, me).Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	kubefake.Receive(t, term.Lost(), "the term to be lost")
	releaseTerm(t, term)
}
