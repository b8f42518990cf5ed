package app

import (
	"context"
	"os"

	"go.uber.org/fx"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/regent-k8s/regent/contextinfo"
)

// ContextInfo provides contextinfo.Info: this process's namespace and, in a Pod, the Pod.
var ContextInfo = fx.Module("regent.contextinfo", fx.Provide(NewContextInfo))

// ContextInfoParams are NewContextInfo's inputs.
type ContextInfoParams struct {
	fx.In
	Config       Config
	Pods         corev1client.PodsGetter
	ClientConfig clientcmd.ClientConfig `optional:"true"`
}

// NewContextInfo loads contextinfo.Info: this process's own namespace and Pod. Config.Namespace,
// the lock's namespace, plays no part in it.
func NewContextInfo(p ContextInfoParams) (contextinfo.Info, error) {
	opts := []contextinfo.Option{contextinfo.WithEnv(os.Getenv)}
	if p.ClientConfig != nil {
		opts = append(opts, contextinfo.WithKubeconfig(p.ClientConfig))
	}
	return contextinfo.Load(context.Background(), p.Pods, opts...)
}
