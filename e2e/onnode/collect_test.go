package onnode

import (
	"bufio"
	"context"
	"encoding/json"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// collector follows the logs of every container of every Pod in a namespace as they come, as
// kubectl logs -f would, so that the lines of Pods deleted meanwhile are kept.
type collector struct {
	mu      sync.Mutex
	lines   []logLine       // the examples' own lines
	library []logLine       // regent's lines (a logger name)
	seen    map[string]bool // pod/container-id already followed
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func collectLogs(t *testing.T, ns string) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{seen: map[string]bool{}, cancel: cancel}
	w, err := admin().CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer w.Stop()
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok && ev.Type != watch.Deleted {
				c.follow(ctx, ns, p)
			}
		}
	}()
	t.Cleanup(c.stop)
	return c
}

// follow starts following each running container of p not followed yet.
func (c *collector) follow(ctx context.Context, ns string, p *corev1.Pod) {
	for _, st := range p.Status.ContainerStatuses {
		if st.State.Running == nil || st.ContainerID == "" {
			continue
		}
		key := p.Name + "/" + st.ContainerID
		c.mu.Lock()
		seen := c.seen[key]
		c.seen[key] = true
		c.mu.Unlock()
		if seen {
			continue
		}
		c.wg.Add(1)
		go func(pod string) {
			defer c.wg.Done()
			rc, err := admin().CoreV1().Pods(ns).GetLogs(pod, &corev1.PodLogOptions{Follow: true}).Stream(ctx)
			if err != nil {
				return
			}
			defer rc.Close()
			s := bufio.NewScanner(rc)
			for s.Scan() {
				var l logLine
				if json.Unmarshal(s.Bytes(), &l) != nil || l.Msg == "" {
					continue
				}
				l.Pod, l.Text = pod, s.Text()
				sec, frac := math.Modf(l.TS)
				l.At = time.Unix(int64(sec), int64(frac*1e9))
				c.mu.Lock()
				if l.Logger != "" { // regent's own lines, kept apart from the example's
					c.library = append(c.library, l)
				} else {
					c.lines = append(c.lines, l)
				}
				c.mu.Unlock()
			}
			if ctx.Err() == nil { // the container ended: whatever it did ended with it
				c.mu.Lock()
				c.lines = append(c.lines, logLine{Pod: pod, Msg: containerEnded, At: time.Now()})
				c.mu.Unlock()
			}
		}(p.Name)
	}
}

// snapshot returns the lines so far, in time order.
func (c *collector) snapshot() []logLine {
	c.mu.Lock()
	out := append([]logLine(nil), c.lines...)
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// awaitTerm waits until a term for which ok returns true appears, and returns it.
func (c *collector) awaitTerm(t *testing.T, ex example, limit time.Duration, ok func(term) bool) term {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		for _, tm := range terms(c.snapshot(), ex) {
			if ok(tm) {
				return tm
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no such term after %v; terms: %v", limit, terms(c.snapshot(), ex))
		}
		time.Sleep(50 * time.Millisecond) // polls the collected logs
	}
}

// awaitField waits until pod's regent logs a line with message msg and returns the line's
// field key.
func (c *collector) awaitField(t *testing.T, pod, msg, key string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		c.mu.Lock()
		library := append([]logLine(nil), c.library...)
		c.mu.Unlock()
		for _, l := range library {
			if l.Pod != pod || l.Msg != msg {
				continue
			}
			var fields map[string]any
			if err := json.Unmarshal([]byte(l.Text), &fields); err != nil {
				t.Fatalf("%s logged %q, not JSON: %v", pod, l.Text, err)
			}
			v, _ := fields[key].(string)
			return v
		}
		if time.Now().After(deadline) {
			for _, l := range library {
				if l.Pod == pod {
					t.Log(l.Text)
				}
			}
			t.Fatalf("%s logged no %q within %v", pod, msg, limit)
		}
		time.Sleep(50 * time.Millisecond) // polls the collected logs
	}
}

func (c *collector) stop() {
	c.cancel()
	c.wg.Wait()
}
