package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/kubefake"
)

// agents is an API server stand-in that answers every request 404 and notes its user agent.
type agents struct {
	mu   sync.Mutex
	seen []string
}

func (a *agents) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.seen = append(a.seen, r.UserAgent())
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
}

func (a *agents) last() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[len(a.seen)-1]
}

func TestTheLocksClientHasARateLimiterAndUserAgentOfItsOwn(t *testing.T) {
	srv := &agents{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	// The workload's limiter is used up: one request a day, and its one token spent.
	busy := flowcontrol.NewTokenBucketRateLimiter(1.0/86400, 1)
	busy.Accept()
	cfg := &rest.Config{Host: ts.URL, RateLimiter: busy, UserAgent: "my-operator"}
	own, err := NewLockClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if own.CoordinationV1().RESTClient().GetRateLimiter() == busy {
		t.Fatal("the locks' client shares the workload's rate limiter")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = own.CoordinationV1().Leases("default").Get(ctx, "lock", metav1.GetOptions{})
	if ctx.Err() != nil {
		t.Fatalf("a lock's request waited behind the workload's rate limiter: %v", err)
	}
	if ua := srv.last(); !strings.HasSuffix(ua, "/"+LockUserAgent) || !strings.HasPrefix(ua, "my-operator") {
		t.Errorf("the locks' user agent is %q, want the workload's with /%s", ua, LockUserAgent)
	}
	if cfg.UserAgent != "my-operator" || cfg.RateLimiter != busy {
		t.Error("NewLockClient changed the workload's config")
	}
}

func TestTheLocksClientGetsTheDefaultRateWhenTheConfigSetsNone(t *testing.T) {
	own, err := NewLockClient(&rest.Config{Host: "https://127.0.0.1:1"})
	if err != nil {
		t.Fatal(err)
	}
	if got := own.CoordinationV1().RESTClient().GetRateLimiter().QPS(); got != DefaultQPS {
		t.Errorf("the locks' client allows %v requests a second, want %d", got, DefaultQPS)
	}
}

func TestTheLockUsesTheLockClientOfTheGraph(t *testing.T) {
	workload, locks := kubefake.NewEnv(), kubefake.NewEnv()
	cfg := testConfig()
	res, err := NewLeaderElection(LeaderElectionParams{Config: cfg, Info: contextinfo.Info{Namespace: "default", PodName: "pod-0"},
		Client: workload.Client, LockClient: LockClient{locks.Client}})
	if err != nil {
		t.Fatal(err)
	}
	term, err := res.Lock.TryAcquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = term.Release(context.Background()) }()
	leases := coordinationv1.SchemeGroupVersion.WithResource("leases")
	if _, err := locks.Tracker.Get(leases, "default", cfg.LockName); err != nil {
		t.Errorf("the lock's Lease is not written through the LockClient: %v", err)
	}
	if _, err := workload.Tracker.Get(leases, "default", cfg.LockName); err == nil {
		t.Error("the lock's Lease was written through the workload's client")
	}
}
