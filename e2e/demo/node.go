package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/e2e/examplerun"
	"github.com/regent-k8s/regent/e2e/node"
)

// NodeUnavailableError says why the node could not start; the demo can run as processes instead.
type NodeUnavailableError struct{ Err error }

func (e *NodeUnavailableError) Error() string { return e.Err.Error() }
func (e *NodeUnavailableError) Unwrap() error { return e.Err }

// RunOnNode runs the demo on a single-node cluster of its own (package node): the lease-leader
// example's manifests as a 3-replica Deployment of real Pods, then `kubectl delete pod` of the
// leader (a handover) and a crash of the next leader's container (a failover after the lease).
// It fails with a *NodeUnavailableError when the node cannot start on this machine.
func RunOnNode(ctx context.Context, out io.Writer, opts Options) (Summary, error) {
	tm := timings{15 * time.Second, 10 * time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}
	if opts.Short {
		tm = timings{3 * time.Second, 2 * time.Second, 500 * time.Millisecond, time.Second, 3 * time.Second}
	}
	d := &demo{out: out, start: time.Now(), tm: tm}
	fmt.Fprintf(out, "regent demo on a node: examples/lease-leader as a 3-replica Deployment; lease %v, renew deadline %v, renew every %v\n",
		tm.leaseDuration, tm.renewDeadline, tm.retryPeriod)
	if opts.Node != nil {
		return d.onNode(ctx, opts.Node)
	}
	d.say("starting a single-node cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet and containerd, in a network namespace of its own")
	n, err := node.Start(ctx, node.Options{
		Images: []node.Image{{Package: "./examples/lease-leader", Dir: examplerun.RepoRoot(), Tag: "lease-leader:latest"}},
		Log:    func(format string, args ...any) { d.say(format, args...) },
	})
	if err != nil {
		return Summary{}, &NodeUnavailableError{Err: err}
	}
	defer func() {
		d.say("stopping the node")
		n.Stop()
	}()
	return d.onNode(ctx, n)
}

const demoNamespace = "regent-demo"

func (d *demo) onNode(ctx context.Context, n *node.Node) (Summary, error) {
	var sum Summary
	admin := n.CP.Client(controlplane.AdminUser)
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: demoNamespace}}, metav1.CreateOptions{}); err != nil {
		return sum, err
	}
	w, err := newLeaseWatch(ctx, admin, demoNamespace, "lease-leader-example")
	if err != nil {
		return sum, err
	}
	defer w.stop()
	if err := d.deploy(ctx, n); err != nil {
		return sum, err
	}

	first, err := w.nextLeader(ctx, "")
	if err != nil {
		return sum, err
	}
	sum.Leaders = append(sum.Leaders, first.holder)
	d.say("LEADER %s (token %d)", first.holder, first.transitions)
	if err := d.awaitReady(ctx, n); err != nil {
		return sum, err
	}
	d.say("all three Pods Ready")
	d.pause(ctx, d.tm.pause)

	firstPod := w.process(first.holder) // the identity is the Pod's name, "_", a suffix
	d.say("kubectl delete pod %s: kubelet sends SIGTERM, its work stops, then it hands the lease to the newest Ready Pod (--hand-over-on-stop)", firstPod)
	deleted := time.Now()
	if err := admin.CoreV1().Pods(demoNamespace).Delete(ctx, firstPod, metav1.DeleteOptions{}); err != nil {
		return sum, err
	}
	second, err := d.handover(ctx, w, &sum, first, deleted, "the delete")
	if err != nil {
		return sum, err
	}
	if err := d.awaitReady(ctx, n); err != nil {
		return sum, err
	}
	d.say("the Deployment replaced %s; three Pods Ready", firstPod)
	d.pause(ctx, d.tm.pause)

	secondPod := w.process(second.holder)
	p, err := admin.CoreV1().Pods(demoNamespace).Get(ctx, secondPod, metav1.GetOptions{})
	if err != nil {
		return sum, err
	}
	if len(p.Status.ContainerStatuses) == 0 {
		return sum, fmt.Errorf("pod %s has no container status", p.Name)
	}
	d.say("SIGKILL -> the container of %s: a crash, no release; the others wait for its lease to expire, and kubelet restarts the container", secondPod)
	killed := time.Now()
	if err := n.KillContainer(ctx, p.Status.ContainerStatuses[0].ContainerID); err != nil {
		return sum, err
	}
	third, err := d.failover(ctx, w, &sum, second, killed, "the crash")
	if err != nil {
		return sum, err
	}
	if err := d.awaitReady(ctx, n); err != nil {
		return sum, err
	}
	if p, err := admin.CoreV1().Pods(demoNamespace).Get(ctx, secondPod, metav1.GetOptions{}); err == nil && len(p.Status.ContainerStatuses) > 0 {
		d.say("%s's container restarted (restarts: %d) and follows %s", secondPod, p.Status.ContainerStatuses[0].RestartCount, third.holder)
	}
	d.summary(sum)
	return sum, nil
}

// deploy applies the example's manifests: its RBAC as they are, its Deployment with the demo's
// timings added to the arguments.
func (d *demo) deploy(ctx context.Context, n *node.Node) error {
	dir := filepath.Join(examplerun.RepoRoot(), "examples", "lease-leader", "deploy")
	rbac, err := os.ReadFile(filepath.Join(dir, "rbac.yaml"))
	if err != nil {
		return err
	}
	if err := n.CP.Apply(ctx, demoNamespace, rbac); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(dir, "deployment.yaml"))
	if err != nil {
		return err
	}
	var dep appsv1.Deployment
	if err := yaml.UnmarshalStrict(data, &dep); err != nil {
		return fmt.Errorf("%s/deployment.yaml: %w", dir, err)
	}
	c := &dep.Spec.Template.Spec.Containers[0]
	c.Args = append(c.Args, "--lease-duration="+d.tm.leaseDuration.String(), "--renew-deadline="+d.tm.renewDeadline.String(),
		"--retry-period="+d.tm.retryPeriod.String(), "--tick="+d.tm.tick.String())
	if _, err := n.CP.Client(controlplane.AdminUser).AppsV1().Deployments(demoNamespace).Create(ctx, &dep, metav1.CreateOptions{}); err != nil {
		return err
	}
	d.say("applied examples/lease-leader/deploy: ServiceAccount, Role, RoleBinding, Deployment (3 replicas)")
	return nil
}

// awaitReady waits until the Deployment has three Ready replicas and no others.
func (d *demo) awaitReady(ctx context.Context, n *node.Node) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		dep, err := n.CP.Client(controlplane.AdminUser).AppsV1().Deployments(demoNamespace).Get(ctx, "lease-leader", metav1.GetOptions{})
		if err == nil {
			s := dep.Status
			if s.ObservedGeneration >= dep.Generation && s.ReadyReplicas == 3 && s.Replicas == 3 && s.UpdatedReplicas == 3 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return errors.New("the Deployment did not have three Ready replicas within two minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond): // polls the API server
		}
	}
}
