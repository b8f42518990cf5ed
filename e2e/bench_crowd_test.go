package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/regent-k8s/regent/lock"
)

// crowdSize is the number of candidates of BenchmarkLeaseCrowd.
const crowdSize = 1000

// BenchmarkLeaseCrowd: one Lease and 1,000 candidates in this process, sharing one clientset,
// regent beside client-go's leaderelection. First a rest window with a leader and 999 waiters:
// requests per second from all candidates, and the API server's CPU. Then crowdWarmup handovers
// whose writes are reported apart, then one graceful handover per iteration (the leader's work
// returns and it releases): the time until another candidate's work starts, the writes the
// candidates send from the release until 500 ms after that start (the release itself included;
// the new leader's first renewal comes a RetryPeriod later), and the API server's CPU per
// handover beyond its rate at rest.
func BenchmarkLeaseCrowd(b *testing.B) {
	for _, lib := range libraries {
		b.Run(fmt.Sprintf("candidates=%d/%s", crowdSize, lib), func(b *testing.B) {
			f := newFleetOf(b, lib, crowdSize, lock.DefaultTimings, true)
			defer f.close()
			cur := f.next(b)
			time.Sleep(2 * lock.DefaultTimings.RetryPeriod) // past every candidate's first requests

			const restWindow = 10 * time.Second
			req0, cpu0, t0 := f.requests.Load(), apiserverCPU(b), time.Now()
			time.Sleep(restWindow)
			rest := time.Since(t0)
			restCPU := (apiserverCPU(b) - cpu0) / rest.Seconds() // cores
			restRequests := float64(f.requests.Load()-req0) / rest.Seconds()

			// The first handovers of a crowd that starts together: regent's waiters all begin at
			// contention level 0 and widen their windows race by race.
			var warmup []float64
			for range crowdWarmup {
				_, w, _ := handOver(b, f, &cur)
				warmup = append(warmup, w)
			}
			var latency []time.Duration
			var writes, requests []float64
			loopCPU, loopStart := apiserverCPU(b), time.Now()
			for b.Loop() {
				d, w, r := handOver(b, f, &cur)
				latency, writes, requests = append(latency, d), append(writes, w), append(requests, r)
			}
			excess := apiserverCPU(b) - loopCPU - restCPU*time.Since(loopStart).Seconds()
			reportLatencies(b, "crowd", "ms", lib, latency) // b.Loop resets the metrics reported before it
			b.ReportMetric(restRequests, "rest-req/s")
			b.ReportMetric(100*restCPU, "rest-apiserver-%cpu")
			b.ReportMetric(median(writes), "p50-writes/handover")
			b.ReportMetric(slices.Max(writes), "max-writes/handover")
			b.ReportMetric(median(requests), "p50-requests/handover")
			b.ReportMetric(1000*excess/float64(len(latency)), "apiserver-cpu-ms/handover")
			b.ReportMetric(slices.Max(warmup), "warmup-max-writes/handover")
			b.ReportMetric(median(warmup), "warmup-p50-writes/handover")
			b.Logf("%s: writes per handover, the %d of the warm-up: %v; then: %v", lib, crowdWarmup, warmup, writes)
			if lib == clientGoLib {
				writePlot(b, "crowd.svg", "Graceful handover, 1,000 candidates on one Lease: release → next leader's work",
					samples.get("crowd/regent"), samples.get("crowd/client-go"))
			}
		})
	}
}

// crowdWarmup is how many handovers BenchmarkLeaseCrowd makes before it measures.
const crowdWarmup = 20

// handOver ends the current leader's term and waits for the next leader's work: it returns the
// time that took, and the writes and requests the fleet sent from the release until 500 ms after
// the next work started (late writes land; the new leader's first renewal is a RetryPeriod away).
func handOver(b *testing.B, f *fleet, cur *term) (time.Duration, float64, float64) {
	w0, r0, t0 := f.writes.Load(), f.requests.Load(), time.Now()
	cur.stop()
	*cur = f.next(b)
	d := cur.at.Sub(t0)
	time.Sleep(500 * time.Millisecond)
	return d, float64(f.writes.Load() - w0), float64(f.requests.Load() - r0)
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}

// apiserverCPU is the API server's CPU time so far, in seconds (process_cpu_seconds_total).
func apiserverCPU(b testing.TB) float64 {
	for _, line := range apiserverMetrics(b) {
		if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			cpu, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatal(err)
			}
			return cpu
		}
	}
	b.Fatal("the API server's /metrics has no process_cpu_seconds_total")
	return 0
}
