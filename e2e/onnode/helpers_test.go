package onnode

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/regent-k8s/regent/e2e/controlplane"
)

var nsCounter atomic.Int64

func admin() *kubernetes.Clientset { return n.CP.Client(controlplane.AdminUser) }

// deploy applies an example's deploy/ manifests, unchanged, into a new namespace, and waits
// until its Deployment's replicas are Ready.
func deploy(t *testing.T, ex example) string {
	t.Helper()
	ctx := context.Background()
	ns := fmt.Sprintf("%s-%d", ex.name, nsCounter.Add(1))
	if len(ns) > 63 {
		ns = ns[len(ns)-63:]
	}
	if _, err := admin().CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := ex.manifests
	if dir == "" {
		dir = filepath.Join("../../examples", ex.name, "deploy")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests for %s: %v", ex.name, err)
	}
	sort.Slice(files, func(i, j int) bool {
		return !strings.HasSuffix(files[i], "deployment.yaml") && strings.HasSuffix(files[j], "deployment.yaml")
	})
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.CP.Apply(ctx, ns, data); err != nil {
			t.Fatalf("apply %s: %v", f, err)
		}
	}
	awaitReady(t, ns, ex.deployment, 2*time.Minute)
	return ns
}

// awaitReady waits until the Deployment name has all its replicas updated, Ready and no others.
func awaitReady(t *testing.T, ns, name string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		d, err := admin().AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err == nil && d.Spec.Replicas != nil {
			want := *d.Spec.Replicas
			s := d.Status
			if s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.ReadyReplicas == want && s.Replicas == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s/%s not ready after %v: %+v\n%s", ns, name, limit, d.Status, podSummary(ns))
		}
		time.Sleep(200 * time.Millisecond) // polls the API server
	}
}

func podSummary(ns string) string {
	pods, err := admin().CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, p := range pods.Items {
		fmt.Fprintf(&b, "  %s %s", p.Name, p.Status.Phase)
		for _, c := range p.Status.ContainerStatuses {
			fmt.Fprintf(&b, " ready=%v restarts=%d", c.Ready, c.RestartCount)
			if c.State.Waiting != nil {
				fmt.Fprintf(&b, " waiting=%s:%s", c.State.Waiting.Reason, c.State.Waiting.Message)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// logLine is one line of an example's zap JSON log.
type logLine struct {
	Pod    string
	Msg    string    `json:"msg"`
	Logger string    `json:"logger"` // empty for the example's own lines; regent's are named`
	TS     float64   `json:"ts"`
	At     time.Time `json:"-"`
	Text   string    `json:"-"`
}

// podLogs reads every container log of the Pods in ns (current and previous containers), as
// kubectl logs would, and parses the JSON lines. Every Pod runs on the one node, so their
// timestamps come from one clock.
func podLogs(t *testing.T, ns string) []logLine {
	t.Helper()
	ctx := context.Background()
	pods, err := admin().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []logLine
	for _, p := range pods.Items {
		for _, previous := range []bool{true, false} {
			rc, err := admin().CoreV1().Pods(ns).GetLogs(p.Name, &corev1.PodLogOptions{Previous: previous}).Stream(ctx)
			if err != nil {
				continue // no previous container, or none yet
			}
			s := bufio.NewScanner(rc)
			for s.Scan() {
				var l logLine
				if json.Unmarshal(s.Bytes(), &l) == nil && l.Msg != "" && l.Logger == "" {
					l.Pod, l.Text = p.Name, s.Text()
					sec, frac := math.Modf(l.TS)
					l.At = time.Unix(int64(sec), int64(frac*1e9))
					lines = append(lines, l)
				}
			}
			rc.Close()
		}
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].At.Before(lines[j].At) })
	return lines
}

// containerEnded marks, in collected logs, the end of a container's log stream.
const containerEnded = "(container ended)"

// term is one pod's leadership (or critical section), from its log.
type term struct {
	pod        string
	start, end time.Time // end zero: still open at the time of reading
}

// terms pairs an example's start and end lines per Pod. A term without an end line ends when
// its Pod's next term starts (a restarted container), or is open.
func terms(lines []logLine, ex example) []term {
	open := map[string]*term{}
	var out []term
	for _, l := range lines {
		switch {
		case l.Msg == ex.start:
			if o := open[l.Pod]; o != nil {
				out = append(out, *o)
			}
			open[l.Pod] = &term{pod: l.Pod, start: l.At}
		case l.Msg == ex.end || l.Msg == containerEnded:
			if o := open[l.Pod]; o != nil {
				o.end = l.At
				out = append(out, *o)
				delete(open, l.Pod)
			}
		}
	}
	for _, o := range open {
		out = append(out, *o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// overlaps lists pairs of terms of different Pods that overlap.
func overlaps(ts []term) []string {
	var out []string
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			a, b := ts[i], ts[j]
			if a.pod != b.pod && (a.end.IsZero() || b.start.Before(a.end)) {
				out = append(out, fmt.Sprintf("%s started at %s while %s (since %s) still led", b.pod, b.start.Format("15:04:05.000"), a.pod, a.start.Format("15:04:05.000")))
			}
		}
	}
	return out
}
