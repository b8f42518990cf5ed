package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// fast timings keep the suite short; whole seconds for the lease duration, as the Lease needs.
var fast = lock.Timings{LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: 500 * time.Millisecond}

// guard bounds waits in the suite; reaching it fails the test.
const guard = time.Minute

var nsCounter atomic.Int64

// namespace creates a fresh namespace for one test.
func namespace(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, nsCounter.Add(1))
	_, err := cp.Client(controlplane.AdminUser).CoreV1().Namespaces().Create(context.Background(),
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// cutter is an HTTP transport that can be cut off, as a network partition or a crashed process
// would: every request fails at once.
type cutter struct{ cut atomic.Bool }

func (c *cutter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		if c.cut.Load() {
			return nil, errors.New("cut off from the API server")
		}
		return rt.RoundTrip(req)
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// candidate is one process's view: its own client, transport and election.
type candidate struct {
	name     string
	cut      *cutter
	client   kubernetes.Interface
	lease    *lock.Lease
	election *leader.Election
}

func newCandidate(t *testing.T, user, ns, lockName, name string, timings lock.Timings) *candidate {
	t.Helper()
	c := &cutter{}
	cfg := rest.CopyConfig(cp.Config(user))
	cfg.Wrap(c.wrap)
	client := kubernetes.NewForConfigOrDie(cfg)
	log := zaptest.NewLogger(t).Named(name)
	l, err := lock.NewLease(client.CoordinationV1(), ns, lockName,
		lock.WithIdentity(name), lock.WithTimings(timings), lock.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	e, err := leader.New(l, leader.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	return &candidate{name: name, cut: c, client: client, lease: l, election: e}
}

// interval is one term as its work saw it, on this process's monotonic clock.
type interval struct {
	who        string
	token      lock.Token
	start, end time.Time
}

// terms records when each candidate's work runs and checks that no two runs overlap.
type terms struct {
	mu       sync.Mutex
	active   map[string]interval
	done     []interval
	overlaps []string
	started  chan interval
}

func newTerms() *terms {
	return &terms{active: map[string]interval{}, started: make(chan interval, 100)}
}

func (r *terms) begin(who string, token lock.Token) {
	r.mu.Lock()
	now := time.Now()
	for other := range r.active {
		r.overlaps = append(r.overlaps, fmt.Sprintf("%s started while %s was still working", who, other))
	}
	iv := interval{who: who, token: token, start: now}
	r.active[who] = iv
	r.mu.Unlock()
	r.started <- iv
}

func (r *terms) finish(who string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	iv := r.active[who]
	iv.end = time.Now()
	delete(r.active, who)
	r.done = append(r.done, iv)
}

func (r *terms) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.overlaps {
		t.Error("overlap: " + o)
	}
}

func (r *terms) next(t *testing.T) interval {
	t.Helper()
	select {
	case iv := <-r.started:
		return iv
	case <-time.After(guard):
		t.Fatal("timed out waiting for a leader")
		panic("unreachable")
	}
}

// quietly asserts that nothing arrives on ch for d: used only where the behaviour under test is
// that something does not happen during a stretch of real time.
func quietly[T any](t *testing.T, ch <-chan T, d time.Duration, what string) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("%s: got %v", what, v)
	case <-time.After(d):
	}
}
