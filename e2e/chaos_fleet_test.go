package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/chaos"
	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/e2e/examplerun"
	"github.com/regent-k8s/regent/e2e/netfault"
)

// chaosWorker is one candidate process of a chaos fleet, talking to the API server through a link of
// its own that can be cut, and writing to the fleet's fencing sink.
type chaosWorker struct {
	id, library string
	proc        *examplerun.Process
	link        *netfault.Link
	campaigning chan struct{}
	once        sync.Once
	// following is set when a regent worker's Acquire has read the Lease, and cleared when a
	// term of the worker starts.
	following atomic.Bool
	lost      atomic.Int32 // terms the worker reported lost
	// expected is the signal the harness sent to end the process, 0 while none was sent.
	expected atomic.Int32
	leaked   atomic.Pointer[string] // from the worker's "exit" line
	// requests is the count of requests the worker made, as of its last "requests" line;
	// reports counts those lines.
	requests, reports atomic.Int64
}

// chaosFleet runs chaos workers on one Lease with fast timings and referees them: every term goes
// to the timeline, every write to the sink, every unexpected exit to crashes.
type chaosFleet struct {
	t        *testing.T
	name     string
	bin      string
	ns       string
	upstream string // the API server's host:port
	kubecfg  string
	sink     *chaos.Sink  // the sink of writes that name no lock: the fleet's one Lease
	sinks    *chaos.Sinks // every lock's sink
	sinkSrv  *httptest.Server
	args     []string // given to every worker spawned, after the fleet's own
	timeline *chaos.Timeline

	mu        sync.Mutex
	clears    map[string][]int64 // holder -> when someone else cleared its record (Now())
	workers   map[string]*chaosWorker
	spawned   int
	incidents []incident // crashes, failed graceful stops, goroutines left behind
	exits     sync.WaitGroup
}

// incident is a worker that crashed, failed to stop gracefully, or left goroutines behind.
type incident struct {
	who, library, what string
}

func (i incident) String() string { return i.who + ": " + i.what }

func newChaosFleet(t *testing.T, name, bin string, libraries []string, args ...string) *chaosFleet {
	t.Helper()
	kubecfg, err := cp.WriteKubeconfig(controlplane.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	host, err := url.Parse(cp.Host())
	if err != nil {
		t.Fatal(err)
	}
	sinks := chaos.NewSinks()
	f := &chaosFleet{
		t: t, name: name, bin: bin, ns: namespace(t), upstream: host.Host, kubecfg: kubecfg,
		sink: sinks.Of(""), sinks: sinks, sinkSrv: httptest.NewServer(sinks), timeline: chaos.NewTimeline(),
		workers: map[string]*chaosWorker{}, clears: map[string][]int64{}, args: args,
	}
	t.Cleanup(func() { f.stop() }) // also when a fault fails the test before runFleet stops it
	for _, lib := range libraries {
		f.spawn(lib)
	}
	return f
}

// spawn starts a worker of lib with a new identity and waits until it campaigns.
func (f *chaosFleet) spawn(lib string) *chaosWorker {
	f.t.Helper()
	f.mu.Lock()
	id := fmt.Sprintf("%s-%s-%d", f.name, lib, f.spawned)
	f.spawned++
	f.mu.Unlock()
	link, err := netfault.Listen(id, f.upstream)
	if err != nil {
		f.t.Fatal(err)
	}
	w := &chaosWorker{id: id, library: lib, link: link, campaigning: make(chan struct{})}
	args := []string{
		"--library=" + lib, "--namespace=" + f.ns, "--identity=" + id, "--sink=" + f.sinkSrv.URL,
		"--server=https://" + link.Addr(),
		"--lease-duration=" + fast.LeaseDuration.String(), "--renew-deadline=" + fast.RenewDeadline.String(),
		"--retry-period=" + fast.RetryPeriod.String(),
	}
	args = append(args, f.args...)
	if os.Getenv("REGENT_CHAOS_LOGS") != "" {
		args = append(args, "--debug") // kept logs say what each worker observed and wrote
	}
	w.proc, err = examplerun.Start(id, f.bin, args, []string{"KUBECONFIG=" + f.kubecfg}, func(_ *examplerun.Process, l examplerun.Line) { f.onLine(w, l) })
	if err != nil {
		link.Close()
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.workers[id] = w
	f.mu.Unlock()
	f.exits.Add(1)
	go f.watchExit(w)
	select {
	case <-w.campaigning:
	case <-w.proc.Done():
		f.t.Fatalf("worker %s exited before campaigning: %v", id, w.proc.Err())
	case <-time.After(guard):
		f.t.Fatalf("worker %s did not start campaigning", id)
	}
	return w
}

// onLine feeds the referees from a worker's log, and keeps the log in $REGENT_CHAOS_LOGS, if set.
func (f *chaosFleet) onLine(w *chaosWorker, l examplerun.Line) {
	if dir := os.Getenv("REGENT_CHAOS_LOGS"); dir != "" {
		if file, err := os.OpenFile(filepath.Join(dir, w.id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintln(file, l.Text)
			file.Close()
		}
	}
	var fields struct {
		Seq    int64  `json:"seq"`
		Mono   int64  `json:"mono"`
		Lock   string `json:"held"`
		Many   bool   `json:"many"` // one of many terms the worker holds at once (a sharding's shards)
		Leaked string `json:"leaked"`
	}
	switch l.Msg {
	case "campaigning":
		w.once.Do(func() { close(w.campaigning) })
	case "following the lease":
		w.following.Store(true)
	case "term-start":
		w.following.Store(false)
		if json.Unmarshal([]byte(l.Text), &fields) == nil {
			if fields.Many {
				f.timeline.BeginConcurrent(fields.Lock, w.id, w.library, fields.Seq, fields.Mono)
			} else {
				f.timeline.Begin(fields.Lock, w.id, w.library, fields.Seq, fields.Mono)
			}
		}
	case "term-end":
		if json.Unmarshal([]byte(l.Text), &fields) == nil {
			if fields.Many {
				f.timeline.EndLock(w.id, fields.Lock, fields.Mono, "returned")
			} else {
				f.timeline.End(w.id, fields.Mono, "returned")
			}
		}
	case "cleared another holder's record":
		var cleared struct {
			Holder string `json:"holder"`
			Mono   int64  `json:"mono"`
		}
		if json.Unmarshal([]byte(l.Text), &cleared) == nil {
			f.noteClear(cleared.Holder, cleared.Mono)
		}
	case "leadership lost; cancelling the work", "shard lost":
		w.lost.Add(1)
	case "requests":
		var n struct {
			N int64 `json:"n"`
		}
		if json.Unmarshal([]byte(l.Text), &n) == nil {
			w.requests.Store(n.N)
			w.reports.Add(1)
		}
	case "exit":
		if json.Unmarshal([]byte(l.Text), &fields) == nil {
			w.leaked.Store(&fields.Leaked)
		}
	}
}

// noteClear records that someone other than holder replaced holder's record with a free one at
// the instant at (Now()).
func (f *chaosFleet) noteClear(holder string, at int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clears[holder] = append(f.clears[holder], at)
}

// clearsOf returns when holder's record was cleared by someone else.
func (f *chaosFleet) clearsOf(holder string) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]int64(nil), f.clears[holder]...)
}

// requestCounts asks every live worker for the count of requests it has made (SIGUSR1) and
// returns the counts once all have answered.
func (f *chaosFleet) requestCounts() map[string]int64 {
	f.t.Helper()
	f.mu.Lock()
	workers := make([]*chaosWorker, 0, len(f.workers))
	for _, w := range f.workers {
		workers = append(workers, w)
	}
	f.mu.Unlock()
	out := map[string]int64{}
	for _, w := range workers {
		before := w.reports.Load()
		if err := w.proc.Signal(syscall.SIGUSR1); err != nil {
			f.t.Fatal(err)
		}
		for deadline := time.Now().Add(guard); w.reports.Load() == before; {
			if time.Now().After(deadline) {
				f.t.Fatalf("%s did not report its requests", w.id)
			}
			time.Sleep(5 * time.Millisecond) // polls the harness's own record of the worker's log
		}
		out[w.id] = w.requests.Load()
	}
	return out
}

// watchExit closes the term of a worker that exited without ending it, and records an exit
// that the harness did not cause, a graceful stop that failed, or goroutines that a gracefully
// stopped worker left behind, as an incident.
func (f *chaosFleet) watchExit(w *chaosWorker) {
	defer f.exits.Done()
	<-w.proc.Done() // closed once the worker's output, its "exit" line included, has been read
	f.timeline.End(w.id, chaos.Now(), "exited")
	w.link.Close()
	var what string
	switch sig := syscall.Signal(w.expected.Load()); {
	case sig == 0:
		what = fmt.Sprintf("exited on its own: %v", w.proc.Err())
	case sig != syscall.SIGTERM:
	case w.proc.Err() != nil:
		what = fmt.Sprintf("failed to stop gracefully: %v", w.proc.Err())
	case w.leaked.Load() == nil:
		what = "stopped without its exit report"
	case *w.leaked.Load() != "":
		what = "left goroutines behind: " + *w.leaked.Load()
	}
	if what != "" {
		f.mu.Lock()
		f.incidents = append(f.incidents, incident{who: w.id, library: w.library, what: what})
		f.mu.Unlock()
	}
}

// kill sends sig (SIGKILL or SIGTERM) to w and stops counting it as a member of the fleet;
// reap waits for it to exit.
func (f *chaosFleet) kill(w *chaosWorker, sig syscall.Signal) {
	f.t.Helper()
	w.expected.Store(int32(sig))
	f.mu.Lock()
	delete(f.workers, w.id)
	f.mu.Unlock()
	if sig == syscall.SIGKILL {
		f.timeline.End(w.id, chaos.Now(), "killed") // a killed process stops at once
	}
	if err := w.proc.Signal(sig); err != nil {
		f.t.Fatalf("signal %s: %v", w.id, err)
	}
}

func (f *chaosFleet) reap(w *chaosWorker) {
	f.t.Helper()
	select {
	case <-w.proc.Done():
	case <-time.After(guard):
		f.t.Fatalf("%s did not exit", w.id)
	}
}

// worker returns the live worker id, or nil.
func (f *chaosFleet) worker(id string) *chaosWorker {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.workers[id]
}

// leader waits until a live worker writes to the sink with the highest token and returns its
// term.
func (f *chaosFleet) leader() (chaos.TermKey, *chaosWorker) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	k, _, err := f.sink.Await(ctx, func(k chaos.TermKey, _ chaos.TermWrites) bool { return f.worker(k.Who) != nil })
	if err != nil {
		f.t.Fatalf("%s: no leader within %v", f.name, guard)
	}
	return k, f.worker(k.Who)
}

// stop ends every worker gracefully and returns the fleet's incidents. Calling it again does
// no harm.
func (f *chaosFleet) stop() []incident {
	f.mu.Lock()
	workers := make([]*chaosWorker, 0, len(f.workers))
	for _, w := range f.workers {
		workers = append(workers, w)
	}
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.expected.Store(int32(syscall.SIGTERM))
			_ = w.proc.Stop(guard)
		}()
	}
	wg.Wait()
	f.exits.Wait()
	f.sinkSrv.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.incidents
}

// binary builds the chaos worker once per test run.
func chaosBinary(t *testing.T) string {
	t.Helper()
	bin, err := examplerun.BuildPackage(context.Background(), filepath.Join(examplerun.RepoRoot(), "e2e"), "./cmd/chaosworker", filepath.Join(t.TempDir(), "chaosworker"))
	if err != nil {
		t.Fatal(err)
	}
	return bin
}
