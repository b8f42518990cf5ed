package app

import (
	"cmp"
	"fmt"

	"go.uber.org/fx"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Kubernetes provides the Kubernetes client from Config: a *rest.Config, the
// clientcmd.ClientConfig it came from, kubernetes.Interface, dynamic.Interface and the typed
// getters for Pods, ConfigMaps and Leases, for the workload; and a LockClient of the locks' own.
var Kubernetes = fx.Module("regent.kubernetes", fx.Provide(NewKubernetes))

// KubernetesParams are NewKubernetes's inputs.
type KubernetesParams struct {
	fx.In
	Config Config
}

// KubernetesResult is what NewKubernetes provides.
type KubernetesResult struct {
	fx.Out
	REST         *rest.Config
	ClientConfig clientcmd.ClientConfig
	Client       kubernetes.Interface
	Dynamic      dynamic.Interface
	Pods         corev1client.PodsGetter
	ConfigMaps   corev1client.ConfigMapsGetter
	Leases       coordinationv1client.LeasesGetter
	// Lock is the locks' own clientset (see LockClient).
	Lock LockClient
}

// LockClient is the clientset the locks of LeaderElection and Sharding use. NewKubernetes
// builds it from the same *rest.Config as the workload's client, with a client-side rate
// limiter of its own and the user agent suffix "regent-lock": however busy the workload keeps
// its client, a renewal never waits behind the workload's requests in that client's queue (a
// renewal that waits past the renew deadline ends the term). kube-controller-manager and
// controller-runtime give leader election a client of its own for the same reason. When the
// graph has no LockClient (a user-supplied kubernetes.Interface), the locks use that client.
type LockClient struct{ kubernetes.Interface }

// LockUserAgent is the suffix of the locks' client's user agent, by which an API server's
// audit log and API Priority and Fairness tell the locks' requests from the workload's.
const LockUserAgent = "regent-lock"

// NewLockClient builds the locks' own clientset from cfg (see LockClient): a copy of cfg with a
// rate limiter of its own, DefaultQPS and DefaultBurst unless cfg sets a rate, and the user agent
// suffix LockUserAgent after cfg's own (or client-go's default). It never shares cfg's
// RateLimiter.
func NewLockClient(cfg *rest.Config) (LockClient, error) {
	lc := rest.CopyConfig(cfg)
	lc.RateLimiter = nil // a limiter of its own, from QPS and Burst
	if lc.QPS == 0 && lc.Burst == 0 {
		lc.QPS, lc.Burst = DefaultQPS, DefaultBurst
	}
	lc.UserAgent = cmp.Or(lc.UserAgent, rest.DefaultKubernetesUserAgent()) + "/" + LockUserAgent
	client, err := kubernetes.NewForConfig(lc)
	if err != nil {
		return LockClient{}, fmt.Errorf("kubernetes clientset for the locks: %w", err)
	}
	return LockClient{client}, nil
}

// lockClient is the locks' client: the graph's LockClient, else the workload's.
func lockClient(own LockClient, shared kubernetes.Interface) kubernetes.Interface {
	if own.Interface != nil {
		return own.Interface
	}
	return shared
}

// DefaultQPS and DefaultBurst are the client's rate limit when the kubeconfig sets none: enough
// for a member of a sharding to renew 100 Leases every 2 s (each renewal is one request).
const (
	DefaultQPS   = 50
	DefaultBurst = 100
)

// NewKubernetes builds the clients: from the kubeconfig file and context in Config, else from
// KUBECONFIG, else in-cluster, else ~/.kube/config (client-go's clientcmd rules).
func NewKubernetes(p KubernetesParams) (KubernetesResult, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = p.Config.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: p.Config.Context}
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	cfg, err := cc.ClientConfig()
	if err != nil {
		return KubernetesResult{}, fmt.Errorf("kubernetes client configuration (--kubeconfig, --context or in-cluster): %w", err)
	}
	if cfg.QPS == 0 && cfg.Burst == 0 {
		// client-go's defaults (5 a second, bursts of 10) cannot renew more than 10 Leases at the
		// default RetryPeriod of 2 s: a semaphore's or a sharding's member may hold many.
		cfg.QPS, cfg.Burst = DefaultQPS, DefaultBurst
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return KubernetesResult{}, fmt.Errorf("kubernetes clientset: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return KubernetesResult{}, fmt.Errorf("kubernetes dynamic client: %w", err)
	}
	own, err := NewLockClient(cfg)
	if err != nil {
		return KubernetesResult{}, err
	}
	return KubernetesResult{
		REST: cfg, ClientConfig: cc, Client: client, Dynamic: dyn,
		Pods: client.CoreV1(), ConfigMaps: client.CoreV1(), Leases: client.CoordinationV1(), Lock: own,
	}, nil
}
