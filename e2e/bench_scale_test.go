package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/lock"
)

// scaleLeases is how many Leases one process holds in BenchmarkLeaseScale.
const scaleLeases = 1000

// BenchmarkLeaseScale: one process holds and renews 1,000 Leases at the default timings, with
// regent and then with client-go's leaderelection (one LeaderElector per Lease), all sharing one
// clientset. Reported over a window of REGENT_BENCH_WINDOW (default 20 s): the CPU time the
// process spent, as a share of one core; the requests it sent per second; the p99 latency of
// its renewals (every PUT); the live heap after a garbage collection; and the process's resident
// memory (a high-water mark across both runs, so client-go's figure includes regent's peak).
// client-go's run reports the ratios regent : client-go.
func BenchmarkLeaseScale(b *testing.B) {
	window := 20 * time.Second
	if v, err := time.ParseDuration(os.Getenv("REGENT_BENCH_WINDOW")); err == nil {
		window = v
	}
	results := map[library]scaleResult{}
	for _, lib := range libraries {
		b.Run(string(lib), func(b *testing.B) {
			for b.Loop() {
				r := measureScale(b, lib, window)
				results[lib] = r
				b.ReportMetric(r.cpu, "cpu-%-of-a-core")
				b.ReportMetric(r.reqPerSec, "req/s")
				b.ReportMetric(r.renewP99, "renew-p99-ms")
				b.ReportMetric(r.heapMB, "heap-MB")
				b.ReportMetric(rssMB(b), "rss-MB")
			}
			if reg, ok := results[regentLib]; ok && lib == clientGoLib {
				b.ReportMetric(reg.cpu/results[lib].cpu, "regent:client-go-cpu")
				b.ReportMetric(reg.heapMB/results[lib].heapMB, "regent:client-go-heap")
			}
		})
	}
}

type scaleResult struct {
	cpu, reqPerSec, renewP99, heapMB float64
}

// measureScale takes scaleLeases Leases with lib, lets renewals settle, and measures a window.
func measureScale(b *testing.B, lib library, window time.Duration) scaleResult {
	b.StopTimer()
	defer b.StartTimer()
	ns := namespace(b)
	var requests atomic.Int64
	var mu sync.Mutex
	var puts []time.Duration
	cfg := rest.CopyConfig(cp.Config(controlplane.AdminUser))
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(r *http.Request) (*http.Response, error) {
			requests.Add(1)
			start := time.Now()
			resp, err := rt.RoundTrip(r)
			if r.Method == http.MethodPut && err == nil {
				mu.Lock()
				puts = append(puts, time.Since(start))
				mu.Unlock()
			}
			return resp, err
		})
	})
	client := kubernetes.NewForConfigOrDie(cfg)
	stop := holdLeases(b, lib, client, ns)
	defer stop()

	time.Sleep(3 * time.Second) // renewals settle into their rhythm
	mu.Lock()
	puts = puts[:0]
	mu.Unlock()
	cpu0, req0, t0 := cpuTime(b), requests.Load(), time.Now()
	time.Sleep(window)
	elapsed := time.Since(t0)
	r := scaleResult{
		cpu:       100 * (cpuTime(b) - cpu0).Seconds() / elapsed.Seconds(),
		reqPerSec: float64(requests.Load()-req0) / elapsed.Seconds(),
	}
	mu.Lock()
	r.renewP99 = quantile(puts, 0.99)
	mu.Unlock()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.heapMB = float64(ms.HeapAlloc) / (1 << 20)
	return r
}

// holdLeases acquires scaleLeases Leases in ns with lib and returns the function that lets them
// go. It fails the benchmark if a term ended before that.
func holdLeases(b *testing.B, lib library, client kubernetes.Interface, ns string) (stop func()) {
	b.Helper()
	if lib == regentLib {
		terms := make([]*lock.Term, 0, scaleLeases)
		for i := range scaleLeases {
			l, err := lock.NewLease(client.CoordinationV1(), ns, fmt.Sprintf("lease-%d", i), lock.WithIdentity("scale"))
			if err != nil {
				b.Fatal(err)
			}
			t, err := l.Acquire(context.Background())
			if err != nil {
				b.Fatal(err)
			}
			terms = append(terms, t)
		}
		return func() {
			for _, t := range terms {
				if t.Err() != nil {
					b.Errorf("a term ended during the benchmark: %v", t.Err())
				}
				_ = t.Release(context.Background())
			}
		}
	}
	klog.SetLogger(logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var leading, ended atomic.Int32
	all := make(chan struct{})
	for i := range scaleLeases {
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock: &resourcelock.LeaseLock{
				LeaseMeta:  metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("lease-%d", i)},
				Client:     client.CoordinationV1(),
				LockConfig: resourcelock.ResourceLockConfig{Identity: "scale"},
			},
			LeaseDuration:   lock.DefaultTimings.LeaseDuration,
			RenewDeadline:   lock.DefaultTimings.RenewDeadline,
			RetryPeriod:     lock.DefaultTimings.RetryPeriod,
			ReleaseOnCancel: true,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(context.Context) {
					if leading.Add(1) == scaleLeases {
						close(all)
					}
				},
				OnStoppedLeading: func() {
					if ctx.Err() == nil {
						ended.Add(1)
					}
				},
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			le.Run(ctx)
		}()
	}
	select {
	case <-all:
	case <-time.After(2 * time.Minute):
		cancel()
		wg.Wait()
		b.Fatalf("client-go: %d of %d Leases taken after two minutes", leading.Load(), scaleLeases)
	}
	return func() {
		if n := ended.Load(); n > 0 {
			b.Errorf("client-go: %d terms ended during the benchmark", n)
		}
		cancel()
		wg.Wait()
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
