package app

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

func TestHealthJudgesRenewalsOnlyForLocksThatRenew(t *testing.T) {
	self := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "app-0", Namespace: "default", UID: "uid-0"}}
	tests := []struct {
		kind         LockKind
		wantFailures bool // a leader that never renews is unhealthy only for a Lease
	}{
		{kind: KindLease, wantFailures: true},
		{kind: KindConfigMap},
		{kind: KindLeaderLock},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			env := kubefake.NewEnv(self)
			clk := clocktesting.NewFakePassiveClock(kubefake.Epoch)
			h := NewHealth()
			h.clock = clk
			cfg := testConfig()
			cfg.LockKind = tt.kind
			_, err := NewLeaderElection(LeaderElectionParams{
				Config: cfg, Info: contextinfo.Info{Namespace: "default", PodName: self.Name, Pod: self},
				Client: env.Client, Dynamic: dynamicfake.NewSimpleDynamicClient(runtime.NewScheme()), Health: h,
			})
			if err != nil {
				t.Fatal(err)
			}
			h.Acquired("lock", lock.Token{}, 0)
			// Ten minutes of leading with no renewal, checked every 5 s as a liveness probe would.
			failures := 0
			for step := time.Duration(0); step <= 10*time.Minute; step += 5 * time.Second {
				clk.SetTime(kubefake.Epoch.Add(step))
				if h.Check() != nil {
					failures++
				}
			}
			if got := failures > 0; got != tt.wantFailures {
				t.Errorf("%d failed checks over ten minutes of leading without renewals; want failures: %v", failures, tt.wantFailures)
			}
		})
	}
}

func TestHealthJudgesTheApplicationsOwnChecks(t *testing.T) {
	h := NewHealth()
	var stuck error
	if err := h.AddCheck("work progress", func() error { return stuck }); err != nil {
		t.Fatal(err)
	}
	if err := h.Check(); err != nil {
		t.Fatalf("Check with a passing check = %v", err)
	}
	stuck = errors.New("no tick for 15s")
	if err := h.Check(); err == nil || !strings.Contains(err.Error(), "work progress: no tick for 15s") {
		t.Fatalf("Check with a failing check = %v, want it named", err)
	}
	srv := httptest.NewServer(h.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("/healthz = %d with a failing check, want 500", resp.StatusCode)
	}
	for _, bad := range []struct {
		name  string
		check func() error
		field string
	}{{"", func() error { return nil }, "name"}, {"x", nil, "check"}} {
		var ce *lock.ConfigError
		if err := h.AddCheck(bad.name, bad.check); !errors.As(err, &ce) || ce.Field != bad.field {
			t.Errorf("AddCheck(%q, nil=%v) = %v, want a ConfigError for %s", bad.name, bad.check == nil, err, bad.field)
		}
	}
}
