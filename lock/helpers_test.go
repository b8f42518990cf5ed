package lock

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/kubefake"
)

const (
	testNS   = "default"
	testName = "lock"
	me       = "me_1"
	rival    = "rival_2"
)

func newTestLease(t *testing.T, env *kubefake.Env, identity string, opts ...Option) *Lease {
	t.Helper()
	all := append([]Option{WithIdentity(identity), WithClock(env.Clock), WithLogger(zaptest.NewLogger(t))}, opts...)
	l, err := NewLease(env.Client.CoordinationV1(), testNS, testName, all...)
	if err != nil {
		t.Fatalf("NewLease: %v", err)
	}
	return l
}

// leaseObject is a Lease as a holder that renewed at renew wrote it.
func leaseObject(holder string, transitions int32, renew time.Time) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: testName}}
	leaseRecord{holder: holder, durationSeconds: 15, acquireTime: renew, renewTime: renew, transitions: transitions}.writeTo(l)
	return l
}

func getLease(t *testing.T, env *kubefake.Env) *coordinationv1.Lease {
	t.Helper()
	obj, err := env.Tracker.Get(coordinationv1.SchemeGroupVersion.WithResource("leases"), testNS, testName)
	if err != nil {
		t.Fatalf("get lease: %v", err)
	}
	return obj.(*coordinationv1.Lease)
}

// putLease writes a Lease as another client would, unconditionally.
func putLease(t *testing.T, env *kubefake.Env, l *coordinationv1.Lease) {
	t.Helper()
	l = l.DeepCopy()
	l.ResourceVersion = ""
	if err := env.Tracker.Update(coordinationv1.SchemeGroupVersion.WithResource("leases"), l, testNS); err != nil {
		t.Fatalf("put lease: %v", err)
	}
}

type acquired struct {
	term *Term
	err  error
}

func acquireAsync(ctx context.Context, l Lock) <-chan acquired {
	ch := make(chan acquired, 1)
	go func() {
		term, err := l.Acquire(ctx)
		ch <- acquired{term, err}
	}()
	return ch
}

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// countActions counts the requests of one verb on leases made so far.
func countActions(env *kubefake.Env, verb string) int {
	n := 0
	for _, a := range env.Client.Actions() {
		if a.GetVerb() == verb && a.GetResource().Resource == "leases" {
			n++
		}
	}
	return n
}

// failLeases makes requests of verb on leases fail with err while fail returns true.
func failLeases(env *kubefake.Env, verb string, fail func() bool, err error) {
	env.React(verb, "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if fail() {
			return true, nil, err
		}
		return false, nil, nil
	})
}

func releaseTerm(t *testing.T, term *Term) {
	t.Helper()
	if err := term.Release(context.Background()); err != nil {
		t.Fatalf("Release: %v", err)
	}
}
