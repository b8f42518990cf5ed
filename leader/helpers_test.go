package leader

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

var leases = coordinationv1.SchemeGroupVersion.WithResource("leases")

func newElection(t *testing.T, env *kubefake.Env, identity string, opts ...Option) *Election {
	t.Helper()
	l, err := lock.NewLease(env.Client.CoordinationV1(), "default", "lock",
		lock.WithIdentity(identity), lock.WithClock(env.Clock), lock.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(l, append([]Option{WithClock(env.Clock), WithLogger(zaptest.NewLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func holder(t *testing.T, env *kubefake.Env) string {
	t.Helper()
	obj, err := env.Tracker.Get(leases, "default", "lock")
	if err != nil {
		t.Fatal(err)
	}
	if h := obj.(*coordinationv1.Lease).Spec.HolderIdentity; h != nil {
		return *h
	}
	return ""
}

func updates(env *kubefake.Env) int {
	n := 0
	for _, a := range env.Client.Actions() {
		if a.GetVerb() == "update" && a.GetResource() == leases {
			n++
		}
	}
	return n
}

// events records a Recorder's calls.
type events struct {
	mu                       sync.Mutex
	acquired, lost, overruns int
	ended                    int
}

func (r *events) Acquired(string, lock.Token, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acquired++
}

func (r *events) Ended(_ string, _ lock.Token, lost bool, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended++
	if lost {
		r.lost++
	}
}

func (r *events) Overran(string, lock.Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overruns++
}

func (r *events) counts() (acquired, ended, lost, overruns int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acquired, r.ended, r.lost, r.overruns
}

// leadAsync starts e.Lead in the background; the leadership arrives on the channel (nil, with
// the test failed, if Lead failed).
func leadAsync(t *testing.T, e *Election) <-chan *Leadership {
	led := make(chan *Leadership, 1)
	go func() {
		l, err := e.Lead(context.Background())
		if err != nil {
			t.Error(err)
		}
		led <- l
	}()
	return led
}
