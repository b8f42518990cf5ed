package node

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/regent-k8s/regent/e2e/controlplane"
)

// daemon is a process the node started, in its own process group.
type daemon struct {
	name, logPath string
	cmd           *exec.Cmd
	done          chan struct{}
	mu            sync.Mutex
	err           error
}

func startDaemon(name, logPath string, netns bool, bin string, args ...string) (*daemon, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if netns {
		args = append([]string{"--net=/run/netns/" + NetNS, bin}, args...)
		bin = "nsenter"
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("node: start %s: %w", name, err)
	}
	d := &daemon{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logFile.Close()
		d.mu.Lock()
		d.err = fmt.Errorf("%s exited: %v", name, err)
		d.mu.Unlock()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) exited() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}

// stop sends SIGTERM to the daemon's process group, and SIGKILL after grace.
func (d *daemon) stop(grace time.Duration) {
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(grace):
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
}

func (n *Node) criSocket() string { return filepath.Join(n.dir, "containerd", "containerd.sock") }

func (n *Node) startContainerd(ctx context.Context) error {
	dir := filepath.Join(n.dir, "containerd")
	cniConf := filepath.Join(n.dir, "cni", "net.d")
	for _, d := range []string{dir, cniConf} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	config := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[4]q
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[5]q
    conf_dir = %[6]q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), n.criSocket(), PauseImage, cniBinDir, cniConf)
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o644); err != nil {
		return err
	}
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "regent",
  "type": "bridge",
  "bridge": "cni0",
  "isGateway": true,
  "ipMasq": false,
  "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": %q}
}`, podCIDR, filepath.Join(n.dir, "cni", "ipam"))
	if err := os.WriteFile(filepath.Join(cniConf, "10-regent.conf"), []byte(cni), 0o644); err != nil {
		return err
	}
	d, err := startDaemon("containerd", filepath.Join(n.dir, "containerd.log"), true, "containerd", "--config", filepath.Join(dir, "config.toml"))
	if err != nil {
		return err
	}
	n.containerd = d
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.Dial("unix", n.criSocket()); err == nil {
			c.Close()
			return nil
		}
		if err := d.exited(); err != nil {
			return fmt.Errorf("node: %w; log:\n%s", err, tail(d.logPath, 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node: containerd not listening after 30 s; log:\n%s", tail(d.logPath, 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// importImage builds img and imports it into containerd's k8s.io namespace.
func (n *Node) importImage(ctx context.Context, img Image) error {
	tarPath := filepath.Join(n.dir, "images", strings.NewReplacer("/", "_", ":", "_").Replace(img.Tag)+".tar")
	if err := BuildImage(ctx, img, tarPath); err != nil {
		return fmt.Errorf("node: image %s: %w", img.Tag, err)
	}
	return run("ctr", "--address", n.criSocket(), "-n", "k8s.io", "images", "import", "--no-unpack=false", tarPath)
}

func (n *Node) startKubelet(ctx context.Context, binDir string) error {
	dir := filepath.Join(n.dir, "kubelet")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kubeconfig := filepath.Join(n.dir, "kubelet.kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: regent
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: kubelet
  user:
    token: %s
contexts:
- name: regent
  context: {cluster: regent, user: kubelet}
current-context: regent
`, n.CP.Host(), n.CP.CAFile(), n.CP.Token(controlplane.NodeUser(Name)))
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		return err
	}
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://%s
address: %s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
resolvConf: ""
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "1Mi", "nodefs.available": "1%%", "imagefs.available": "1%%"}
staticPodPath: ""
`, n.criSocket(), NodeIP)
	configPath := filepath.Join(n.dir, "kubelet-config.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return err
	}
	d, err := startDaemon("kubelet", filepath.Join(n.dir, "kubelet.log"), true, filepath.Join(binDir, "kubelet"),
		"--config="+configPath,
		"--kubeconfig="+kubeconfig,
		"--root-dir="+dir,
		"--cert-dir="+filepath.Join(dir, "pki"),
		"--node-ip="+NodeIP,
		"--hostname-override="+Name,
	)
	if err != nil {
		return err
	}
	n.kubelet = d
	return nil
}

func (n *Node) startScheduler(binDir string) error {
	kubeconfig, err := n.CP.WriteKubeconfig(controlplane.AdminUser)
	if err != nil {
		return err
	}
	d, err := startDaemon("kube-scheduler", filepath.Join(n.dir, "kube-scheduler.log"), false, filepath.Join(binDir, "kube-scheduler"),
		"--kubeconfig="+kubeconfig, "--leader-elect=false", "--secure-port=0")
	if err != nil {
		return err
	}
	n.scheduler = d
	return nil
}

// tail is the last n lines of a file.
func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
