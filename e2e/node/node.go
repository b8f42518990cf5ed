// Package node runs a real single-node Kubernetes cluster on the test machine, without Docker:
// the control plane of package controlplane (prepared for a node), kube-scheduler, and a kubelet
// with containerd, runc and a bridge CNI, all of the node's parts inside a network namespace of
// its own. Pods really run: images are built locally from Go packages (BuildImage) and imported.
//
// The namespace is linked to the host by a veth pair (HostIP on the host, NodeIP in the
// namespace). The API server listens on HostIP only; inside the namespace, the kubernetes
// Service IP is DNATed to it, so Pods use rest.InClusterConfig unchanged. No traffic leaves the
// machine: every address is the host's own or inside the namespace.
//
// Some of containerd's and the CNI plugins' paths are fixed whatever the configuration says
// (/run/containerd, /var/lib/cni, /run/netns, cgroups under kubepods), so one node runs per
// machine: Start refuses a second, and cleans up what a killed run left behind. Stop ends
// everything in order and removes the mounts, the namespace and the cgroups it made.
package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/e2e/controlplane"
)

// The node's fixed names and addresses.
const (
	Name        = "regent-node"
	NetNS       = "regent-node"
	hostLink    = "regent0"
	nodeLink    = "regent1"
	HostIP      = "10.200.0.1"
	NodeIP      = "10.200.0.2"
	linkPrefix  = "/30"
	podCIDR     = "10.22.0.0/16"
	serviceCIDR = "10.0.0.0/24"
	serviceIP   = "10.0.0.1"
	lockFile    = "/run/regent-node.lock"
)

// PauseImage is the sandbox image the node builds and containerd uses.
const PauseImage = "regent.local/pause:e2e"

// Options configure Start.
type Options struct {
	// BinDir holds etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubelet;
	// default $REGENT_CONTROLPLANE_BIN.
	BinDir string
	// Images are built and imported before the kubelet starts.
	Images []Image
	// Users are passed on to the control plane.
	Users []string
	// Log receives progress lines; nil: none.
	Log func(format string, args ...any)
}

// Node is a running single-node cluster.
type Node struct {
	CP  *controlplane.ControlPlane
	dir string
	log func(string, ...any)

	lock       *os.File
	containerd *daemon
	kubelet    *daemon
	scheduler  *daemon
}

// Start brings the node up and waits until it is Ready and the default ServiceAccount exists.
func Start(ctx context.Context, opts Options) (n *Node, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("node: a node needs root (network namespaces, mounts, cgroups)")
	}
	binDir := opts.BinDir
	if binDir == "" {
		binDir = os.Getenv(controlplane.EnvBinaries)
	}
	if err := checkParts(binDir); err != nil {
		return nil, err
	}
	n = &Node{log: opts.Log}
	if n.log == nil {
		n.log = func(string, ...any) {}
	}
	if n.lock, err = takeLock(); err != nil {
		return nil, err
	}
	if n.dir, err = os.MkdirTemp("", "regent-node-"); err != nil {
		n.lock.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			n.Stop()
			n = nil
		}
	}()
	cleanupLeftovers(n.log)
	start := time.Now()
	if err := setupNetwork(); err != nil {
		return nil, err
	}
	n.CP, err = controlplane.Start(ctx, controlplane.Options{
		BinDir: binDir, Dir: filepath.Join(n.dir, "controlplane"), Users: opts.Users,
		Node: &controlplane.NodeNetwork{BindIP: HostIP, NodeName: Name, ServiceIP: serviceIP, ServiceCIDR: serviceCIDR},
	})
	if err != nil {
		return nil, err
	}
	if err := dnatService(n.CP.Port()); err != nil {
		return nil, err
	}
	n.log("node: control plane up after %v", time.Since(start).Round(time.Millisecond))
	if err := n.startContainerd(ctx); err != nil {
		return nil, err
	}
	images := append([]Image{{Package: "./cmd/pause", Dir: e2eDir(), Tag: PauseImage}}, opts.Images...)
	for _, img := range images {
		if err := n.importImage(ctx, img); err != nil {
			return nil, err
		}
	}
	n.log("node: %d images imported after %v", len(images), time.Since(start).Round(time.Millisecond))
	if err := n.startKubelet(ctx, binDir); err != nil {
		return nil, err
	}
	if err := n.startScheduler(binDir); err != nil {
		return nil, err
	}
	if err := n.awaitReady(ctx); err != nil {
		return nil, err
	}
	n.log("node: Ready after %v", time.Since(start).Round(time.Millisecond))
	return n, nil
}

// Dir is the node's working folder, with every daemon's log.
func (n *Node) Dir() string { return n.dir }

// Stop ends the kubelet, removes every Pod sandbox, ends the other daemons and the control
// plane, and removes the mounts, the network namespace and the cgroups the node made.
func (n *Node) Stop() {
	if n.kubelet != nil {
		n.kubelet.stop(10 * time.Second)
		n.kubelet = nil
	}
	if n.containerd != nil {
		if err := removeSandboxes(n.criSocket()); err != nil {
			n.log("node: remove pod sandboxes: %v", err)
		}
	}
	for _, d := range []*daemon{n.scheduler, n.containerd} {
		if d != nil {
			d.stop(10 * time.Second)
		}
	}
	n.scheduler, n.containerd = nil, nil
	if n.CP != nil {
		n.CP.Stop()
		n.CP = nil
	}
	unmountUnder(n.dir)
	run("ip", "netns", "delete", NetNS)
	run("ip", "link", "delete", hostLink)
	removeCgroups()
	if n.dir != "" {
		os.RemoveAll(n.dir)
	}
	if n.lock != nil {
		n.lock.Close()
		os.Remove(lockFile)
		n.lock = nil
	}
}

func checkParts(binDir string) error {
	if binDir == "" {
		return fmt.Errorf("node: %s is not set; run `tools/controlplane/build.sh node` and point it at the printed folder", controlplane.EnvBinaries)
	}
	var missing []string
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			missing = append(missing, filepath.Join(binDir, b)+" (run `tools/controlplane/build.sh node`)")
		}
	}
	for _, b := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "nsenter", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b+" (run `tools/node/install.sh`)")
		}
	}
	if _, err := os.Stat(filepath.Join(cniBinDir, "bridge")); err != nil {
		missing = append(missing, "the CNI plugins in "+cniBinDir+" (run `tools/node/install.sh`)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("node: missing parts:\n  %s", strings.Join(missing, "\n  "))
	}
	return nil
}

// cniBinDir is where Debian's containernetworking-plugins package puts the plugins.
const cniBinDir = "/usr/lib/cni"

// takeLock refuses a second node on the machine.
func takeLock() (*os.File, error) {
	f, err := os.OpenFile(lockFile, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("node: another node is already running on this machine (%s is locked); stop it first", lockFile)
	}
	return f, nil
}

func (n *Node) awaitReady(ctx context.Context) error {
	client := n.CP.Client(controlplane.AdminUser)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ready, why := false, "not registered"
		if node, err := client.CoreV1().Nodes().Get(ctx, Name, metav1.GetOptions{}); err == nil {
			why = "not Ready"
			for _, c := range node.Status.Conditions {
				if c.Type == "Ready" {
					ready, why = c.Status == "True", c.Reason+": "+c.Message
				}
			}
		}
		if ready {
			if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err == nil {
				return nil
			}
			why = "no default ServiceAccount yet"
		}
		if n.kubelet != nil && n.kubelet.exited() != nil {
			return fmt.Errorf("node: kubelet exited: %v; log %s:\n%s", n.kubelet.exited(), n.kubelet.logPath, tail(n.kubelet.logPath, 30))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node: not ready after 2 minutes (%s); kubelet log %s:\n%s", why, n.kubelet.logPath, tail(n.kubelet.logPath, 30))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// e2eDir is the e2e module's folder: the tests run in it or in one of its sub-packages.
func e2eDir() string {
	dir, _ := os.Getwd()
	for d := dir; d != "/"; d = filepath.Dir(d) {
		if data, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(data), "module github.com/regent-k8s/regent/e2e") {
			return d
		}
	}
	return dir
}
