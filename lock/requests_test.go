package lock

import (
	"context"
	"errors"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/regent-k8s/regent/kubefake"
)

// A request sent on a connection that died silently hangs until its context ends. These clients
// hang one kind of request that way and report when it gave up.

type hangingLeases struct {
	coordinationv1client.LeaseInterface
	ended chan error
}

func (h hangingLeases) Create(ctx context.Context, _ *coordinationv1.Lease, _ metav1.CreateOptions) (*coordinationv1.Lease, error) {
	<-ctx.Done()
	h.ended <- ctx.Err()
	return nil, ctx.Err()
}

type hangingLeasesGetter struct {
	coordinationv1client.LeasesGetter
	ended chan error
}

func (g hangingLeasesGetter) Leases(ns string) coordinationv1client.LeaseInterface {
	return hangingLeases{LeaseInterface: g.LeasesGetter.Leases(ns), ended: g.ended}
}

type hangingConfigMaps struct {
	corev1client.ConfigMapInterface
	ended chan error
}

func (h hangingConfigMaps) Create(ctx context.Context, _ *corev1.ConfigMap, _ metav1.CreateOptions) (*corev1.ConfigMap, error) {
	<-ctx.Done()
	h.ended <- ctx.Err()
	return nil, ctx.Err()
}

type hangingPods struct {
	corev1client.PodInterface
	ended chan error
}

func (h hangingPods) Get(ctx context.Context, _ string, _ metav1.GetOptions) (*corev1.Pod, error) {
	<-ctx.Done()
	h.ended <- ctx.Err()
	return nil, ctx.Err()
}

type hangingCore struct {
	corev1client.CoreV1Interface
	configMaps, pods chan error // nil: that kind does not hang
}

func (c hangingCore) ConfigMaps(ns string) corev1client.ConfigMapInterface {
	if c.configMaps == nil {
		return c.CoreV1Interface.ConfigMaps(ns)
	}
	return hangingConfigMaps{ConfigMapInterface: c.CoreV1Interface.ConfigMaps(ns), ended: c.configMaps}
}

func (c hangingCore) Pods(ns string) corev1client.PodInterface {
	if c.pods == nil {
		return c.CoreV1Interface.Pods(ns)
	}
	return hangingPods{PodInterface: c.CoreV1Interface.Pods(ns), ended: c.pods}
}

// withRequestTimeout shortens the leader-for-life locks' request bound, so the test need not wait 10 s.
func withRequestTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.requestTimeout = d })
}

func TestHangingRequestsAreBounded(t *testing.T) {
	short := Timings{LeaseDuration: 2 * time.Second, RenewDeadline: 200 * time.Millisecond, RetryPeriod: 100 * time.Millisecond}
	me := pod("me", "uid-me", corev1.PodRunning, "")
	other := pod("other", "uid-other", corev1.PodFailed, "")
	tests := []struct {
		name    string
		acquire func(env *kubefake.Env, ended chan error) (func(context.Context) (*Term, error), error)
	}{
		{name: "a Lease waiter's create", acquire: func(env *kubefake.Env, ended chan error) (func(context.Context) (*Term, error), error) {
			l, err := NewLease(hangingLeasesGetter{LeasesGetter: env.Client.CoordinationV1(), ended: ended}, testNS, testName,
				WithIdentity(me.Name), WithClock(env.Clock), WithTimings(short))
			if err != nil {
				return nil, err
			}
			return l.Acquire, nil
		}},
		{name: "a leader-for-life create", acquire: func(env *kubefake.Env, ended chan error) (func(context.Context) (*Term, error), error) {
			l, err := NewConfigMapForLife(hangingCore{CoreV1Interface: env.Client.CoreV1(), configMaps: ended}, me, testName,
				WithClock(env.Clock), withRequestTimeout(100*time.Millisecond))
			if err != nil {
				return nil, err
			}
			return l.Acquire, nil
		}},
		{name: "a read of the owner pod", acquire: func(env *kubefake.Env, ended chan error) (func(context.Context) (*Term, error), error) {
			if err := env.Tracker.Add(other); err != nil {
				return nil, err
			}
			if err := env.Tracker.Add(lockOwnedBy(other)); err != nil {
				return nil, err
			}
			l, err := NewConfigMapForLife(hangingCore{CoreV1Interface: env.Client.CoreV1(), pods: ended}, me, testName,
				WithClock(env.Clock), withRequestTimeout(100*time.Millisecond))
			if err != nil {
				return nil, err
			}
			return l.Acquire, nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := kubefake.NewEnv(me)
			ended := make(chan error, 10)
			acquire, err := tt.acquire(env, ended)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { _, err := acquire(ctx); done <- err }()
			if err := kubefake.Receive(t, ended, "the hanging request to give up"); !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("the hanging request ended with %v, want its own deadline", err)
			}
			cancel()
			if err := kubefake.Receive(t, done, "Acquire to return"); !errors.Is(err, ErrHeld) {
				t.Errorf("Acquire = %v, want it to have kept waiting until cancelled", err)
			}
		})
	}
}
