package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/lock"
)

// BenchmarkLeaseScale: one process holds and renews 1,000 Leases at the default timings.
// Reported over a window of REGENT_BENCH_WINDOW (default 20 s): the process's CPU time as a share
// of one core, its resident memory, the requests it sends per second, and the p99 latency of its
// renewals.
func BenchmarkLeaseScale(b *testing.B) {
	const leases = 1000
	window := 20 * time.Second
	if v, err := time.ParseDuration(os.Getenv("REGENT_BENCH_WINDOW")); err == nil {
		window = v
	}
	ns := namespace(b)
	var requests atomic.Int64
	cfg := rest.CopyConfig(cp.Config(controlplane.AdminUser))
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper { return counting(&requests, rt) })
	client := kubernetes.NewForConfigOrDie(cfg)
	var mu sync.Mutex
	var renewals []time.Duration
	observe := lock.WithRenewObserver(func(r lock.Renewal) {
		if r.Err == nil {
			mu.Lock()
			renewals = append(renewals, r.Latency)
			mu.Unlock()
		}
	})
	terms := make([]*lock.Term, 0, leases)
	defer func() {
		for _, t := range terms {
			_ = t.Release(context.Background())
		}
	}()
	for i := range leases {
		l, err := lock.NewLease(client.CoordinationV1(), ns, fmt.Sprintf("lease-%d", i), lock.WithIdentity("scale"), observe)
		if err != nil {
			b.Fatal(err)
		}
		t, err := l.Acquire(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		terms = append(terms, t)
	}
	time.Sleep(3 * time.Second) // renewals settle into their rhythm
	for b.Loop() {
		mu.Lock()
		renewals = renewals[:0]
		mu.Unlock()
		cpu0, req0, t0 := cpuTime(b), requests.Load(), time.Now()
		time.Sleep(window)
		elapsed := time.Since(t0)
		b.ReportMetric(100*(cpuTime(b)-cpu0).Seconds()/elapsed.Seconds(), "cpu-%-of-a-core")
		b.ReportMetric(float64(requests.Load()-req0)/elapsed.Seconds(), "req/s")
		b.ReportMetric(rssMB(b), "rss-MB")
		mu.Lock()
		b.ReportMetric(quantile(renewals, 0.99), "renew-p99-ms")
		b.ReportMetric(float64(len(renewals))/elapsed.Seconds(), "renewals/s")
		mu.Unlock()
	}
	for _, t := range terms {
		if t.Err() != nil {
			b.Errorf("a term ended during the benchmark: %v", t.Err())
			break
		}
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rssMB reads this process's resident set size from /proc/self/status.
func rssMB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}
