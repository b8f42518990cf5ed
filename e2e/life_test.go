package e2e

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// lifeKind builds a leader-for-life lock of one kind for a candidate in pod.
type lifeKind struct {
	name  string
	build func(cfg *rest.Config, pod *corev1.Pod, lockName string, opts ...lock.Option) (*lock.ForLife, error)
}

var lifeKinds = []lifeKind{
	{name: "configmap", build: func(cfg *rest.Config, pod *corev1.Pod, lockName string, opts ...lock.Option) (*lock.ForLife, error) {
		return lock.NewConfigMapForLife(kubernetes.NewForConfigOrDie(cfg).CoreV1(), pod, lockName, opts...)
	}},
	{name: "leaderlock", build: func(cfg *rest.Config, pod *corev1.Pod, lockName string, opts ...lock.Option) (*lock.ForLife, error) {
		return lock.NewLeaderLockForLife(dynamic.NewForConfigOrDie(cfg), kubernetes.NewForConfigOrDie(cfg), pod, lockName, opts...)
	}},
}

// newPod creates a Pod object; no kubelet runs, so it is an object only, as the lock needs.
func newPod(t testing.TB, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := cp.Client(controlplane.AdminUser).CoreV1().Pods(ns).Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "regent-example"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var crdOnce sync.Once

// installCRD installs the LeaderLock CRD from config/crd and waits until it is served.
func installCRD(t *testing.T) {
	t.Helper()
	crdOnce.Do(func() {
		data, err := os.ReadFile("../config/crd/leaderlocks.regent.dev.yaml")
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &obj.Object); err != nil {
			t.Fatal(err)
		}
		crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
		dyn := dynamic.NewForConfigOrDie(cp.Config(controlplane.AdminUser))
		if _, err := dyn.Resource(crds).Create(context.Background(), obj, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		disc := cp.Client(controlplane.AdminUser).Discovery()
		err = wait.PollUntilContextTimeout(context.Background(), 50*time.Millisecond, guard, true, func(context.Context) (bool, error) {
			_, err := disc.ServerResourcesForGroupVersion("regent.dev/v1")
			return err == nil, nil
		})
		if err != nil {
			t.Fatalf("the LeaderLock CRD is not served: %v", err)
		}
	})
}

// lifeCandidate is a candidate in its own Pod.
type lifeCandidate struct {
	pod      *corev1.Pod
	election *leader.Election
}

func newLifeCandidate(t testing.TB, kind lifeKind, user string, pod *corev1.Pod, lockName string, opts ...lock.Option) *lifeCandidate {
	t.Helper()
	log := zap.NewNop()
	if _, isBenchmark := t.(*testing.B); !isBenchmark {
		log = zaptest.NewLogger(t).Named(pod.Name)
	}
	l, err := kind.build(cp.Config(user), pod, lockName, append([]lock.Option{lock.WithLogger(log)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	e, err := leader.New(l, leader.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return &lifeCandidate{pod: pod, election: e}
}

// leadInBackground runs the candidate's work as leader until the test ends; started receives the
// token when it leads and result what RunAsLeader returned.
func (c *lifeCandidate) leadInBackground(t *testing.T, parent context.Context) (started chan lock.Token, result chan error) {
	ctx, cancel := context.WithCancel(parent)
	started, result = make(chan lock.Token, 1), make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		result <- c.election.RunAsLeader(ctx, func(wctx context.Context) error {
			token, _ := leader.TokenFrom(wctx)
			started <- token
			<-wctx.Done()
			return nil
		})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return started, result
}

// A cluster without the LeaderLock CRD: a control plane of its own, since the shared one gets the
// CRD installed by other tests.
func TestLeaderForLifeCRDMissing(t *testing.T) {
	ctx := context.Background()
	bare, err := controlplane.Start(ctx, controlplane.Options{NoControllerManager: true})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Stop()
	admin := bare.Client(controlplane.AdminUser)
	pod, err := admin.CoreV1().Pods("default").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "regent-example"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := lock.NewLeaderLockForLife(dynamic.NewForConfigOrDie(bare.Config(controlplane.AdminUser)), admin, pod, "lock")
	if err != nil {
		t.Fatal(err)
	}
	e, err := leader.New(l)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = e.RunAsLeader(wctx, func(context.Context) error { return nil })
	if !errors.Is(err, lock.ErrCRDNotInstalled) {
		t.Fatalf("RunAsLeader = %v, want ErrCRDNotInstalled", err)
	}
	t.Log(err)
}

func TestLeaderForLife(t *testing.T) {
	installCRD(t)
	for _, kind := range lifeKinds {
		t.Run(kind.name, func(t *testing.T) {
			admin := cp.Client(controlplane.AdminUser)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			t.Run("deleting the leader's pod lets the garbage collector free the lock", func(t *testing.T) {
				ns := namespace(t)
				a := newLifeCandidate(t, kind, controlplane.AdminUser, newPod(t, ns, "a"), "lock")
				b := newLifeCandidate(t, kind, controlplane.AdminUser, newPod(t, ns, "b"), "lock")
				aStarted, _ := a.leadInBackground(t, ctx)
				receiveT(t, aStarted, "a to lead")
				bStarted, _ := b.leadInBackground(t, ctx)
				quietly(t, bStarted, 500*time.Millisecond, "b led while a's pod runs")
				if err := admin.CoreV1().Pods(ns).Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
				receiveT(t, bStarted, "b to lead after a's pod was deleted")
			})

			t.Run("an evicted leader is taken over", func(t *testing.T) {
				ns := namespace(t)
				a := newLifeCandidate(t, kind, controlplane.AdminUser, newPod(t, ns, "a"), "lock")
				b := newLifeCandidate(t, kind, controlplane.AdminUser, newPod(t, ns, "b"), "lock")
				aStarted, _ := a.leadInBackground(t, ctx)
				receiveT(t, aStarted, "a to lead")
				bStarted, _ := b.leadInBackground(t, ctx)
				quietly(t, bStarted, 500*time.Millisecond, "b led while a's pod runs")
				evicted := a.pod.DeepCopy()
				evicted.Status.Phase, evicted.Status.Reason = corev1.PodFailed, "Evicted"
				if _, err := admin.CoreV1().Pods(ns).UpdateStatus(ctx, evicted, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				receiveT(t, bStarted, "b to lead after a was evicted")
			})

			t.Run("a foreign delete of the lock cancels the work and reports lost leadership", func(t *testing.T) {
				ns := namespace(t)
				a := newLifeCandidate(t, kind, controlplane.AdminUser, newPod(t, ns, "a"), "lock")
				aStarted, aResult := a.leadInBackground(t, ctx)
				receiveT(t, aStarted, "a to lead")
				var err error
				if kind.name == "configmap" {
					err = admin.CoreV1().ConfigMaps(ns).Delete(ctx, "lock", metav1.DeleteOptions{})
				} else {
					err = dynamic.NewForConfigOrDie(cp.Config(controlplane.AdminUser)).Resource(lock.LeaderLockResource).Namespace(ns).Delete(ctx, "lock", metav1.DeleteOptions{})
				}
				if err != nil {
					t.Fatal(err)
				}
				if err := receiveT(t, aResult, "RunAsLeader to return"); !errors.Is(err, leader.ErrLost) {
					t.Fatalf("RunAsLeader = %v, want lost leadership", err)
				}
			})

			t.Run("a process restarted in the same pod resumes the term", func(t *testing.T) {
				ns := namespace(t)
				pod := newPod(t, ns, "a")
				first := newLifeCandidate(t, kind, controlplane.AdminUser, pod, "lock", lock.WithKeepOnRelease())
				l, err := first.election.Lead(ctx)
				if err != nil {
					t.Fatal(err)
				}
				token := l.Token()
				if err := l.Release(ctx); err != nil { // kept for the pod's life
					t.Fatal(err)
				}
				again := newLifeCandidate(t, kind, controlplane.AdminUser, pod, "lock")
				started, _ := again.leadInBackground(t, ctx)
				if got := receiveT(t, started, "the restarted process to lead"); got != token {
					t.Errorf("token after restart %v, want the resumed term's %v", got, token)
				}
			})
		})
	}
}
