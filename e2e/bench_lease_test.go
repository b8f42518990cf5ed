package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/lock"
)

// The Lease benchmarks run regent and client-go's leaderelection side by side, in the same run
// against the same API server, at client-go's default timings (15 s / 10 s / 2 s). Each reports
// its own figures; the client-go sub-benchmark also reports regent's as a ratio to it.

var libraries = []library{regentLib, clientGoLib}

// sampleStore keeps one benchmark's samples per library, for ratios and plots.
type sampleStore struct {
	mu sync.Mutex
	m  map[string][]time.Duration
}

var samples = &sampleStore{m: map[string][]time.Duration{}}

func (s *sampleStore) put(key string, d []time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = d
}

func (s *sampleStore) get(key string) []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[key]
}

func reportLatencies(b *testing.B, key, unit string, lib library, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	samples.put(key+"/"+string(lib), d)
	b.ReportMetric(quantile(d, 0.5), "p50-"+unit)
	b.ReportMetric(quantile(d, 0.99), "p99-"+unit)
	b.ReportMetric(quantile(d, 1), "max-"+unit)
	if lib == clientGoLib {
		if r := samples.get(key + "/" + string(regentLib)); len(r) > 0 {
			b.ReportMetric(quantile(r, 0.5)/quantile(d, 0.5), "regent:client-go-p50")
			b.ReportMetric(quantile(r, 0.99)/quantile(d, 0.99), "regent:client-go-p99")
		}
	}
}

// BenchmarkLeaseHandover: the leader's work stops gracefully and it releases; measured is the
// time until the next leader's work starts. One handover per iteration.
func BenchmarkLeaseHandover(b *testing.B) {
	for _, n := range []int{3, 50} {
		for _, lib := range libraries {
			b.Run(fmt.Sprintf("candidates=%d/%s", n, lib), func(b *testing.B) {
				f := newFleet(b, lib, n, lock.DefaultTimings)
				defer f.close()
				cur := f.next(b)
				var d []time.Duration
				for b.Loop() {
					t0 := time.Now()
					cur.stop()
					cur = f.next(b)
					d = append(d, cur.at.Sub(t0))
				}
				reportLatencies(b, fmt.Sprintf("handover/%d", n), "ms", lib, d)
				if n == 3 && lib == clientGoLib {
					writePlot(b, "handover.svg", "Graceful handover, 3 candidates: release → next leader's work",
						samples.get("handover/3/regent"), samples.get("handover/3/client-go"))
				}
			})
		}
	}
}

// BenchmarkLeaseFailover: the leader is cut off from the API server (a crash, as far as the
// others can tell); measured is how long after its lease could expire (its last renewal as
// observed + the lease duration) the next leader's work starts. One failover per iteration.
func BenchmarkLeaseFailover(b *testing.B) {
	for _, lib := range libraries {
		b.Run(fmt.Sprintf("candidates=3/%s", lib), func(b *testing.B) {
			f := newFleet(b, lib, 3, lock.DefaultTimings)
			defer f.close()
			r := watchRenewals(b, f.ns, f.name)
			defer r.stop()
			cur := f.next(b)
			var excess []time.Duration
			for b.Loop() {
				f.cutters[cur.who].cut.Store(true)
				crashed := cur
				cur = f.next(b)
				for cur.who == crashed.who { // a cut-off candidate cannot lead; skip stale events
					cur = f.next(b)
				}
				expiry := r.lastOf(f.identity(crashed.who)).Add(lock.DefaultTimings.LeaseDuration)
				excess = append(excess, cur.at.Sub(expiry))
				f.cutters[crashed.who].cut.Store(false)
				crashed.stop()
			}
			reportLatencies(b, "failover", "excess-ms", lib, excess)
			if lib == clientGoLib {
				writePlot(b, "failover.svg", "Crash failover, 3 candidates: lease expiry → next leader's work",
					samples.get("failover/regent"), samples.get("failover/client-go"))
			}
		})
	}
}

// BenchmarkLeaseRequestRate: requests per second in steady state (a leader and n-1 waiters),
// counted on the candidates' transports and by the API server (apiserver_request_total for
// leases). The measuring window is REGENT_BENCH_WINDOW (default 20 s).
func BenchmarkLeaseRequestRate(b *testing.B) {
	window := 20 * time.Second
	if v, err := time.ParseDuration(os.Getenv("REGENT_BENCH_WINDOW")); err == nil {
		window = v
	}
	for _, n := range []int{3, 50, 100} {
		for _, lib := range libraries {
			b.Run(fmt.Sprintf("candidates=%d/%s", n, lib), func(b *testing.B) {
				f := newFleet(b, lib, n, lock.DefaultTimings)
				defer f.close()
				f.next(b)
				time.Sleep(5 * time.Second) // past the waiters' first requests
				var client, server float64
				for b.Loop() {
					c0, s0 := f.requests.Load(), leaseRequests(b)
					time.Sleep(window)
					client += float64(f.requests.Load()-c0) / window.Seconds()
					server += (leaseRequests(b) - s0) / window.Seconds()
				}
				b.ReportMetric(client/float64(b.N), "client-req/s")
				b.ReportMetric(server/float64(b.N), "apiserver-req/s")
			})
		}
	}
}

// leaseRequests sums apiserver_request_total over the leases resource, from /metrics.
func leaseRequests(b testing.TB) float64 {
	var sum float64
	for _, line := range apiserverMetrics(b) {
		if !strings.HasPrefix(line, "apiserver_request_total{") || !strings.Contains(line, `resource="leases"`) {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			sum += v
		}
	}
	return sum
}

// apiserverMetrics reads the API server's /metrics, a line each.
func apiserverMetrics(b testing.TB) []string {
	raw, err := cp.Client(controlplane.AdminUser).CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return strings.Split(string(raw), "\n")
}

// writePlot draws the two latency distributions (empirical CDFs on a log time axis) as an SVG in
// $REGENT_BENCH_OUT, if set.
func writePlot(tb testing.TB, file, title string, regent, clientGo []time.Duration) {
	dir := os.Getenv("REGENT_BENCH_OUT")
	if dir == "" || len(regent) == 0 || len(clientGo) == 0 {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(cdfSVG(title, map[string][]time.Duration{"regent": regent, "client-go": clientGo})), 0o644); err != nil {
		tb.Error(err)
	}
}
