// Package demo runs three replicas of examples/lease-leader and prints a timeline of who leads:
// the first election, a graceful handover (SIGTERM) and a failover after a crash (SIGKILL). Run
// has them as OS processes against a control plane (the embedded one, or a cluster from a
// kubeconfig); RunOnNode as a Deployment of real Pods on a node (package node).
package demo

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/e2e/examplerun"
	"github.com/regent-k8s/regent/e2e/node"
	"github.com/regent-k8s/regent/lock"
)

// Options configure Run.
type Options struct {
	// Short uses 3 s / 2 s / 0.5 s timings and short pauses (for CI); otherwise 15 s / 10 s / 2 s.
	Short bool
	// Kubeconfig, when set, runs against that cluster instead of the embedded control plane.
	Kubeconfig string
	// ControlPlane reuses a running embedded control plane instead of starting one.
	ControlPlane *controlplane.ControlPlane
	// Node, for RunOnNode, reuses a running node (with the lease-leader:latest image) instead
	// of starting one.
	Node *node.Node
}

// Summary is what the demo measured.
type Summary struct {
	Leaders []string
	// Handover is from the old leader's release being observed to the new leader being observed.
	Handover time.Duration
	// HandoverSinceSignal is from SIGTERM to the new leader being observed.
	HandoverSinceSignal time.Duration
	// Failover is from SIGKILL to the new leader being observed.
	Failover time.Duration
	// FailoverExcess is how much later than the killed leader's lease could expire (its last
	// observed renewal plus the lease duration) the new leader was observed.
	FailoverExcess time.Duration
}

type timings struct {
	leaseDuration, renewDeadline, retryPeriod, tick, pause time.Duration
}

// Run runs the demo, printing the timeline to out.
func Run(ctx context.Context, out io.Writer, opts Options) (Summary, error) {
	tm := timings{15 * time.Second, 10 * time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}
	if opts.Short {
		tm = timings{3 * time.Second, 2 * time.Second, 500 * time.Millisecond, time.Second, 3 * time.Second}
	}
	d := &demo{out: out, start: time.Now(), tm: tm}
	return d.run(ctx, opts)
}

type demo struct {
	out   io.Writer
	start time.Time
	tm    timings
	mu    sync.Mutex
}

func (d *demo) say(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, "%+9.3fs  %s\n", time.Since(d.start).Seconds(), fmt.Sprintf(format, args...))
}

func suffix() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (d *demo) run(ctx context.Context, opts Options) (Summary, error) {
	fmt.Fprintf(d.out, "regent demo: three replicas of examples/lease-leader; lease %v, renew deadline %v, renew every %v\n",
		d.tm.leaseDuration, d.tm.renewDeadline, d.tm.retryPeriod)
	work, err := os.MkdirTemp("", "regent-demo-")
	if err != nil {
		return Summary{}, err
	}
	defer os.RemoveAll(work)

	env, client, ns, lockName, err := d.cluster(ctx, opts)
	if err != nil {
		return Summary{}, err
	}
	if opts.ControlPlane == nil && opts.Kubeconfig == "" {
		defer env.cp.Stop()
	}
	d.say("building examples/lease-leader")
	bin, err := examplerun.Build(ctx, "lease-leader", work)
	if err != nil {
		return Summary{}, err
	}

	w, err := newLeaseWatch(ctx, client, ns, lockName)
	if err != nil {
		return Summary{}, err
	}
	defer w.stop()
	procs := map[string]*examplerun.Process{}
	defer func() {
		for _, p := range procs {
			_ = p.Stop(5 * time.Second)
		}
	}()
	for i := range 3 {
		name := fmt.Sprintf("demo-%d", i)
		podEnv := env.podEnv(ctx, name)
		p, err := examplerun.Start(name, bin, []string{
			"--lock-name=" + lockName,
			"--lease-duration=" + d.tm.leaseDuration.String(),
			"--renew-deadline=" + d.tm.renewDeadline.String(),
			"--retry-period=" + d.tm.retryPeriod.String(),
			"--tick=" + d.tm.tick.String(),
			"--health-addr=",
		}, append(podEnv, "KUBECONFIG="+env.kubeconfig, "POD_NAMESPACE="+ns), d.echo)
		if err != nil {
			return Summary{}, err
		}
		procs[name] = p
		d.say("started %s (pid %d)", name, p.Pid())
	}

	var sum Summary
	first, err := w.nextLeader(ctx, "")
	if err != nil {
		return sum, err
	}
	sum.Leaders = append(sum.Leaders, first.holder)
	d.say("LEADER %s (token %d)", first.holder, first.transitions)
	d.pause(ctx, d.tm.pause)

	// Graceful handover: SIGTERM stops the work, then the lease is released.
	leaderProc := procs[w.process(first.holder)]
	d.say("SIGTERM -> %s: its work stops, then it releases the lease", leaderProc.Name)
	termAt := time.Now()
	_ = leaderProc.Signal(syscall.SIGTERM)
	second, err := d.handover(ctx, w, &sum, first, termAt, "SIGTERM")
	if err != nil {
		return sum, err
	}
	<-leaderProc.Done()
	d.say("%s exited (%v)", leaderProc.Name, exitText(leaderProc.Err()))
	delete(procs, leaderProc.Name)
	d.pause(ctx, d.tm.pause)

	// Crash failover: SIGKILL, no release; the others wait for the lease to expire.
	victim := procs[w.process(second.holder)]
	d.say("SIGKILL -> %s: a crash, no release; the others wait for its lease to expire", victim.Name)
	killAt := time.Now()
	_ = victim.Signal(syscall.SIGKILL)
	if _, err := d.failover(ctx, w, &sum, second, killAt, "SIGKILL"); err != nil {
		return sum, err
	}
	delete(procs, victim.Name)
	d.pause(ctx, d.tm.pause/2)

	d.say("stopping the remaining replicas")
	for name, p := range procs {
		_ = p.Stop(10 * time.Second)
		d.say("%s exited (%v)", name, exitText(p.Err()))
		delete(procs, name)
	}
	d.summary(sum)
	return sum, nil
}

// handover waits for the leader after prev, which was stopped gracefully at stopped (by what
// says how), and tells it, timed from the release and from the stop.
func (d *demo) handover(ctx context.Context, w *leaseWatch, sum *Summary, prev leaderChange, stopped time.Time, what string) (leaderChange, error) {
	next, err := w.nextLeader(ctx, prev.holder)
	if err != nil {
		return next, err
	}
	sum.Leaders = append(sum.Leaders, next.holder)
	sum.HandoverSinceSignal = next.at.Sub(stopped)
	if rel, ok := w.releasedAt(prev.holder); ok {
		sum.Handover = next.at.Sub(rel)
	}
	d.say("LEADER %s (token %d): handover %v after the release (or the handover record), %v after %s",
		next.holder, next.transitions, sum.Handover.Round(time.Millisecond), sum.HandoverSinceSignal.Round(time.Millisecond), what)
	return next, nil
}

// failover waits for the leader after prev, which crashed at crashed (what says how), and tells
// it, timed from the crash and from the moment prev's lease could expire.
func (d *demo) failover(ctx context.Context, w *leaseWatch, sum *Summary, prev leaderChange, crashed time.Time, what string) (leaderChange, error) {
	next, err := w.nextLeader(ctx, prev.holder)
	if err != nil {
		return next, err
	}
	sum.Leaders = append(sum.Leaders, next.holder)
	sum.Failover = next.at.Sub(crashed)
	if renewed, ok := w.lastRenewal(prev.holder); ok {
		sum.FailoverExcess = next.at.Sub(renewed.Add(d.tm.leaseDuration))
	}
	d.say("LEADER %s (token %d): failover %v after %s, %v after the lease could expire (last renewal + %v)",
		next.holder, next.transitions, sum.Failover.Round(time.Millisecond), what, sum.FailoverExcess.Round(time.Millisecond), d.tm.leaseDuration)
	return next, nil
}

func (d *demo) summary(sum Summary) {
	fmt.Fprintf(d.out, "summary: leaders %v; handover %v after the release; failover %v after the crash, %v past the lease's expiry\n",
		sum.Leaders, sum.Handover.Round(time.Millisecond), sum.Failover.Round(time.Millisecond), sum.FailoverExcess.Round(time.Millisecond))
}

func exitText(err error) string {
	if err == nil {
		return "exit code 0"
	}
	return err.Error()
}

func (d *demo) pause(ctx context.Context, p time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(p):
	}
}

// echo prints the lines of the replicas' logs that tell the story: the example's own messages,
// and the election's release and loss.
func (d *demo) echo(p *examplerun.Process, l examplerun.Line) {
	logger, _ := l.Fields["logger"].(string)
	switch {
	case logger == "" && (l.Msg == "leading" || l.Msg == "still leading" || l.Msg == "stopped leading work"):
	case logger == "leader" && (l.Msg == "released" || l.Msg == "leadership lost; cancelling the work"):
	default:
		return
	}
	token, _ := l.Fields["token"].(string)
	if i := strings.LastIndexByte(token, '/'); i >= 0 {
		token = token[i+1:] // the Lease's uid is the same for every term; the count tells them apart
	}
	if token != "" {
		d.say("  %s: %s (token %s)", p.Name, l.Msg, token)
	} else {
		d.say("  %s: %s", p.Name, l.Msg)
	}
}

// environment is where the replicas run.
type environment struct {
	cp         *controlplane.ControlPlane
	kubeconfig string
	ns         string
	pods       bool
	client     kubernetes.Interface
}

// podEnv creates a Pod object for a replica on the embedded control plane, so that POD_NAME
// names a real Pod; on a real cluster the replicas run without one.
func (e *environment) podEnv(ctx context.Context, name string) []string {
	if !e.pods {
		return []string{"REGENT_IDENTITY=" + name + "_" + suffix()}
	}
	_, err := e.client.CoreV1().Pods(e.ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "lease-leader", Image: "lease-leader"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil
	}
	return []string{"POD_NAME=" + name}
}

func (d *demo) cluster(ctx context.Context, opts Options) (*environment, kubernetes.Interface, string, string, error) {
	if opts.Kubeconfig != "" {
		cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(&clientcmd.ClientConfigLoadingRules{ExplicitPath: opts.Kubeconfig}, nil)
		cfg, err := cc.ClientConfig()
		if err != nil {
			return nil, nil, "", "", err
		}
		ns, _, err := cc.Namespace()
		if err != nil {
			return nil, nil, "", "", err
		}
		client := kubernetes.NewForConfigOrDie(cfg)
		lockName := "regent-demo-" + suffix()
		d.say("using the cluster of %s, namespace %s, lease %s", opts.Kubeconfig, ns, lockName)
		return &environment{kubeconfig: opts.Kubeconfig, ns: ns, client: client}, client, ns, lockName, nil
	}
	cp := opts.ControlPlane
	if cp == nil {
		d.say("starting etcd, kube-apiserver and kube-controller-manager on loopback")
		var err error
		if cp, err = controlplane.Start(ctx, controlplane.Options{}); err != nil {
			return nil, nil, "", "", err
		}
		d.say("control plane ready at %s", cp.Host())
	}
	admin := cp.Client(controlplane.AdminUser)
	ns := "regent-demo-" + suffix()
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return nil, nil, "", "", err
	}
	rbac, err := os.ReadFile(filepath.Join(examplerun.RepoRoot(), "examples", "lease-leader", "deploy", "rbac.yaml"))
	if err != nil {
		return nil, nil, "", "", err
	}
	if err := cp.Apply(ctx, ns, rbac); err != nil {
		return nil, nil, "", "", err
	}
	kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, ns, "lease-leader")
	if err != nil {
		return nil, nil, "", "", err
	}
	d.say("namespace %s: ServiceAccount lease-leader with the example's Role", ns)
	return &environment{cp: cp, kubeconfig: kubeconfig, ns: ns, pods: true, client: admin}, admin, ns, "lease-leader-example", nil
}

// leaseWatch follows the Lease and remembers, per holder, when its renewals and its release (or
// its handover record) were observed.
type leaseWatch struct {
	w       watch.Interface
	changes chan leaderChange
	done    chan struct{}

	mu       sync.Mutex
	renewed  map[string]time.Time
	released map[string]time.Time
}

type leaderChange struct {
	holder      string
	transitions int32
	at          time.Time
}

func newLeaseWatch(ctx context.Context, client kubernetes.Interface, ns, name string) (*leaseWatch, error) {
	w, err := client.CoordinationV1().Leases(ns).Watch(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
	if err != nil {
		return nil, err
	}
	lw := &leaseWatch{w: w, changes: make(chan leaderChange, 100), done: make(chan struct{}), renewed: map[string]time.Time{}, released: map[string]time.Time{}}
	go lw.run()
	return lw, nil
}

func (lw *leaseWatch) run() {
	defer close(lw.done)
	last := ""
	for ev := range lw.w.ResultChan() {
		l, ok := ev.Object.(*coordinationv1.Lease)
		if !ok {
			continue
		}
		now := time.Now()
		holder := ""
		if l.Spec.HolderIdentity != nil {
			holder = *l.Spec.HolderIdentity
		}
		var transitions int32
		if l.Spec.LeaseTransitions != nil {
			transitions = *l.Spec.LeaseTransitions
		}
		lw.mu.Lock()
		switch {
		case holder != "" && l.Annotations[lock.HandoverOfAnnotation] != "":
			// The holder's last write, a handover record: its term ended here, as by a release.
			lw.released[holder] = now
		case holder != "":
			lw.renewed[holder] = now
		case last != "":
			lw.released[last] = now
		}
		lw.mu.Unlock()
		if holder != last {
			last = holder
			if holder != "" {
				lw.changes <- leaderChange{holder: holder, transitions: transitions, at: now}
			}
		}
	}
}

func (lw *leaseWatch) stop() {
	lw.w.Stop()
	<-lw.done
}

// nextLeader waits for a leader other than prev.
func (lw *leaseWatch) nextLeader(ctx context.Context, prev string) (leaderChange, error) {
	limit := time.After(2 * time.Minute)
	for {
		select {
		case c := <-lw.changes:
			if c.holder != prev {
				return c, nil
			}
		case <-ctx.Done():
			return leaderChange{}, ctx.Err()
		case <-limit:
			return leaderChange{}, fmt.Errorf("no new leader after %s within two minutes", prev)
		}
	}
}

func (lw *leaseWatch) releasedAt(holder string) (time.Time, bool) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	t, ok := lw.released[holder]
	return t, ok
}

func (lw *leaseWatch) lastRenewal(holder string) (time.Time, bool) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	t, ok := lw.renewed[holder]
	return t, ok
}

// process maps a holder identity (POD_NAME or host name, "_", suffix) to the replica's name.
func (lw *leaseWatch) process(holder string) string {
	for i := len(holder) - 1; i >= 0; i-- {
		if holder[i] == '_' {
			return holder[:i]
		}
	}
	return holder
}
