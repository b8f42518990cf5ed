package controlplane

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// EnvBinaries names the folder holding etcd, kube-apiserver and kube-controller-manager.
const EnvBinaries = "REGENT_CONTROLPLANE_BIN"

// AdminUser is the name of the user in system:masters.
const AdminUser = "admin"

// Options configure Start.
type Options struct {
	// Users are ordinary users (group system:authenticated only), with no rights until granted.
	Users []string
	// BinDir holds the binaries; default $REGENT_CONTROLPLANE_BIN.
	BinDir string
	// Dir is the working folder; default a new temporary folder, removed by Stop.
	Dir string
	// NoControllerManager skips kube-controller-manager (no garbage collection).
	NoControllerManager bool
	// Node, when set, prepares the control plane for a real node (package node): see NodeNetwork.
	Node *NodeNetwork
}

// NodeNetwork is how a node reaches the control plane. The API server listens on BindIP (the
// host's end of the node's link) with a serving certificate signed by the cluster's CA for
// BindIP, the kubernetes Service IP and its DNS names; authorization is Node,RBAC with the
// NodeRestriction and ServiceAccount admission plugins; the controller-manager runs its default
// controllers with service-account credentials and the CA as root-ca-file; a token for the
// kubelet of NodeName is issued.
type NodeNetwork struct {
	BindIP    string // e.g. 10.200.0.1
	NodeName  string // the kubelet's node name
	ServiceIP string // the kubernetes Service's IP, the first of ServiceCIDR
	// ServiceCIDR is the Services' range, e.g. 10.0.0.0/24.
	ServiceCIDR string
}

// ControlPlane is a running etcd, kube-apiserver and kube-controller-manager.
type ControlPlane struct {
	node        *NodeNetwork
	dir, binDir string
	removeDir   bool
	tokens      map[string]string // user -> bearer token
	etcdPort    int
	peerPort    int
	apiPort     int

	mu        sync.Mutex
	etcd      *process
	apiserver *process
	kcm       *process
}

// Start starts the control plane and waits until the API server is ready.
func Start(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	binDir := opts.BinDir
	if binDir == "" {
		binDir = os.Getenv(EnvBinaries)
	}
	if binDir == "" {
		return nil, fmt.Errorf("controlplane: %s is not set; run `make controlplane` and point it at the printed folder", EnvBinaries)
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager"} {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return nil, fmt.Errorf("controlplane: %s missing in %s (run `make controlplane`): %w", b, binDir, err)
		}
	}
	started := &ControlPlane{node: opts.Node, dir: opts.Dir, binDir: binDir, tokens: map[string]string{}}
	cp = started
	if cp.dir == "" {
		if cp.dir, err = os.MkdirTemp("", "regent-controlplane-"); err != nil {
			return nil, err
		}
		cp.removeDir = true
	} else if err := os.MkdirAll(cp.dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil { // the named result is nil by now: stop what was started
			started.Stop()
		}
	}()
	ports, err := freePorts(3)
	if err != nil {
		return nil, err
	}
	cp.etcdPort, cp.peerPort, cp.apiPort = ports[0], ports[1], ports[2]
	users := append([]string{AdminUser}, opts.Users...)
	if cp.node != nil {
		users = append(users, NodeUser(cp.node.NodeName))
		if err := cp.writeCerts(); err != nil {
			return nil, err
		}
	}
	if err := cp.writeSecrets(users); err != nil {
		return nil, err
	}
	if err := cp.StartEtcd(ctx); err != nil {
		return nil, err
	}
	if err := cp.StartAPIServer(ctx); err != nil {
		return nil, err
	}
	if opts.NoControllerManager {
		return cp, nil
	}
	kubeconfig, err := cp.WriteKubeconfig(AdminUser)
	if err != nil {
		return nil, err
	}
	kcmArgs := []string{
		"--kubeconfig=" + kubeconfig,
		"--controllers=garbagecollector,namespace",
		"--leader-elect=false",
		"--secure-port=0",
		"--concurrent-gc-syncs=5",
	}
	if cp.node != nil {
		kcmArgs = []string{
			"--kubeconfig=" + kubeconfig,
			"--leader-elect=false",
			"--secure-port=0",
			"--concurrent-gc-syncs=5",
			"--service-account-private-key-file=" + filepath.Join(cp.dir, "sa.key"),
			"--root-ca-file=" + filepath.Join(cp.dir, "ca.crt"),
			"--use-service-account-credentials",
		}
	}
	cp.kcm, err = startProcess("kube-controller-manager", filepath.Join(binDir, "kube-controller-manager"), filepath.Join(cp.dir, "kube-controller-manager.log"), kcmArgs...)
	return cp, err
}

// NodeUser is the user name of the kubelet of node name (group system:nodes).
func NodeUser(name string) string { return "system:node:" + name }

// CAFile is the cluster CA's certificate (with Options.Node), as a Pod's ServiceAccount sees it.
func (cp *ControlPlane) CAFile() string { return filepath.Join(cp.dir, "ca.crt") }

// Token is user's bearer token.
func (cp *ControlPlane) Token(user string) string { return cp.tokens[user] }

// BinDir is the folder holding the binaries.
func (cp *ControlPlane) BinDir() string { return cp.binDir }

// Dir is the control plane's working folder, with the processes' logs.
func (cp *ControlPlane) Dir() string { return cp.dir }

// Host is the API server's URL.
func (cp *ControlPlane) Host() string {
	if cp.node != nil {
		return fmt.Sprintf("https://%s:%d", cp.node.BindIP, cp.apiPort)
	}
	return fmt.Sprintf("https://127.0.0.1:%d", cp.apiPort)
}

// Port is the API server's port.
func (cp *ControlPlane) Port() int { return cp.apiPort }

// Config is a rest.Config for user (AdminUser or one of Options.Users).
func (cp *ControlPlane) Config(user string) *rest.Config {
	token, ok := cp.tokens[user]
	if !ok {
		panic(fmt.Sprintf("controlplane: no user %q", user))
	}
	return &rest.Config{
		Host:            cp.Host(),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             1000,
		Burst:           1000,
	}
}

// Client is a clientset for user.
func (cp *ControlPlane) Client(user string) *kubernetes.Clientset {
	return kubernetes.NewForConfigOrDie(cp.Config(user))
}

// WriteKubeconfig writes a kubeconfig for user into the working folder and returns its path.
func (cp *ControlPlane) WriteKubeconfig(user string) (string, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["regent"] = &clientcmdapi.Cluster{Server: cp.Host(), InsecureSkipTLSVerify: true}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: cp.tokens[user]}
	cfg.Contexts["regent"] = &clientcmdapi.Context{Cluster: "regent", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "regent"
	path := filepath.Join(cp.dir, user+".kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// StartEtcd starts etcd (again) on its ports with its data folder and waits until it is healthy.
func (cp *ControlPlane) StartEtcd(ctx context.Context) error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	client := fmt.Sprintf("http://127.0.0.1:%d", cp.etcdPort)
	peer := fmt.Sprintf("http://127.0.0.1:%d", cp.peerPort)
	p, err := startProcess("etcd", filepath.Join(cp.binDir, "etcd"), filepath.Join(cp.dir, "etcd.log"),
		"--name=regent",
		"--data-dir="+filepath.Join(cp.dir, "etcd-data"),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=regent="+peer,
		"--unsafe-no-fsync",
		"--log-level=warn",
	)
	if err != nil {
		return err
	}
	cp.etcd = p
	return waitReady(ctx, p, client+"/health", "", `"health":"true"`)
}

// StopEtcd stops etcd; the API server keeps running and fails its requests meanwhile.
func (cp *ControlPlane) StopEtcd() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.etcd != nil {
		cp.etcd.stop(stopGrace)
		cp.etcd = nil
	}
}

// StartAPIServer starts the API server (again) on its port and waits until it is ready.
func (cp *ControlPlane) StartAPIServer(ctx context.Context) error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	args := []string{
		fmt.Sprintf("--etcd-servers=http://127.0.0.1:%d", cp.etcdPort),
		"--secure-port=" + strconv.Itoa(cp.apiPort),
		"--service-account-key-file=" + filepath.Join(cp.dir, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(cp.dir, "sa.key"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--token-auth-file=" + filepath.Join(cp.dir, "tokens.csv"),
	}
	if n := cp.node; n != nil {
		args = append(args,
			"--bind-address="+n.BindIP,
			"--advertise-address="+n.BindIP,
			"--tls-cert-file="+filepath.Join(cp.dir, "apiserver.crt"),
			"--tls-private-key-file="+filepath.Join(cp.dir, "apiserver.key"),
			"--client-ca-file="+filepath.Join(cp.dir, "ca.crt"),
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--service-cluster-ip-range="+n.ServiceCIDR,
			"--kubelet-preferred-address-types=InternalIP",
		)
	} else {
		args = append(args,
			"--bind-address=127.0.0.1",
			"--advertise-address=127.0.0.1",
			"--cert-dir="+filepath.Join(cp.dir, "apiserver-certs"),
			"--authorization-mode=RBAC",
			"--service-cluster-ip-range=10.96.0.0/24",
			// No kubelet or serviceaccount controller runs: Pods are objects only.
			"--disable-admission-plugins=ServiceAccount",
			"--endpoint-reconciler-type=none",
		)
	}
	p, err := startProcess("kube-apiserver", filepath.Join(cp.binDir, "kube-apiserver"), filepath.Join(cp.dir, "kube-apiserver.log"), args...)
	if err != nil {
		return err
	}
	cp.apiserver = p
	return waitReady(ctx, p, cp.Host()+"/readyz", cp.tokens[AdminUser], "ok")
}

// StopAPIServer stops the API server; StartAPIServer brings it back on the same port.
func (cp *ControlPlane) StopAPIServer() {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.apiserver != nil {
		cp.apiserver.stop(stopGrace)
		cp.apiserver = nil
	}
}

// Err reports a process that died on its own.
func (cp *ControlPlane) Err() error {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	var errs []error
	for _, p := range []*process{cp.etcd, cp.apiserver, cp.kcm} {
		if p != nil {
			errs = append(errs, p.exited())
		}
	}
	return errors.Join(errs...)
}

// Stop ends every process and removes the temporary folder.
func (cp *ControlPlane) Stop() {
	cp.mu.Lock()
	kcm, api, etcd := cp.kcm, cp.apiserver, cp.etcd
	cp.kcm, cp.apiserver, cp.etcd = nil, nil, nil
	cp.mu.Unlock()
	for _, p := range []*process{kcm, api, etcd} {
		if p != nil {
			p.stop(stopGrace)
		}
	}
	if cp.removeDir {
		os.RemoveAll(cp.dir)
	}
}

func (cp *ControlPlane) writeSecrets(users []string) error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(filepath.Join(cp.dir, "sa.key"), keyPEM, 0o600); err != nil {
		return err
	}
	var csv strings.Builder
	for i, u := range users {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		token := hex.EncodeToString(b)
		cp.tokens[u] = token
		groups := "system:authenticated"
		switch {
		case u == AdminUser:
			groups = "system:masters"
		case strings.HasPrefix(u, "system:node:"):
			groups = "system:nodes,system:authenticated"
		}
		fmt.Fprintf(&csv, "%s,%s,%d,\"%s\"\n", token, u, 1000+i, groups)
	}
	return os.WriteFile(filepath.Join(cp.dir, "tokens.csv"), []byte(csv.String()), 0o600)
}

// waitReady polls url until its body contains want, the process dies, or a minute passes.
func waitReady(ctx context.Context, p *process, url, token, want string) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(time.Minute)
	var last string
	for time.Now().Before(deadline) {
		if err := p.exited(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err == nil {
			var body [512]byte
			n, _ := resp.Body.Read(body[:])
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body[:n]), want) {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body[:n])
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s not ready after a minute (last answer: %s); log %s:\n%s", p.name, last, p.logPath, tail(p.logPath, 20))
}

// freePorts reserves n distinct free loopback ports by listening on them, then frees them for
// the processes to bind.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("controlplane: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// stopGrace is how long a process may take to stop after SIGTERM before it is killed.
const stopGrace = 2 * time.Second
