package app

import (
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
// getters for Pods, ConfigMaps and Leases.
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
	return KubernetesResult{
		REST: cfg, ClientConfig: cc, Client: client, Dynamic: dyn,
		Pods: client.CoreV1(), ConfigMaps: client.CoreV1(), Leases: client.CoordinationV1(),
	}, nil
}
