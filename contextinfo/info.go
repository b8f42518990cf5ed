package contextinfo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
)

// Environment variables read by Load.
const (
	EnvPodName      = "POD_NAME"
	EnvPodNamespace = "POD_NAMESPACE"
)

// ServiceAccountNamespaceFile is where Kubernetes mounts the Pod's namespace.
const ServiceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

var (
	// ErrPodNameMissing means a Pod was required but POD_NAME is not set.
	ErrPodNameMissing = errors.New("POD_NAME is not set (expose it through the downward API: fieldRef metadata.name)")
	// ErrNamespaceUnknown means no source named a namespace.
	ErrNamespaceUnknown = errors.New("namespace unknown")
	// ErrPodNotFound means POD_NAME names a Pod that does not exist.
	ErrPodNotFound = errors.New("pod not found")
	// ErrNilArgument means a required argument was nil.
	ErrNilArgument = errors.New("required argument is nil")
)

// Info says who and where the process is.
type Info struct {
	// Namespace the process works in.
	Namespace string
	// PodName is the process's Pod, empty outside a cluster.
	PodName string
	// Pod is the Pod object as read by Load, nil outside a cluster.
	Pod *corev1.Pod
}

// InPod reports whether the process runs in a known Pod.
func (i Info) InPod() bool { return i.Pod != nil }

// RequirePod returns the Pod, or an error wrapping ErrPodNameMissing when there is none.
func (i Info) RequirePod() (*corev1.Pod, error) {
	if i.Pod == nil {
		return nil, ErrPodNameMissing
	}
	return i.Pod, nil
}

// NamespaceSource names the namespace of a kubeconfig context. clientcmd.ClientConfig
// satisfies it.
type NamespaceSource interface {
	Namespace() (namespace string, overridden bool, err error)
}

type options struct {
	getenv        func(string) string
	namespaceFile string
	kubeconfig    NamespaceSource
}

// Option changes where Load looks.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// WithEnv replaces os.Getenv, for tests and for programs that read configuration elsewhere; nil
// keeps os.Getenv.
func WithEnv(getenv func(string) string) Option {
	return optionFunc(func(o *options) { o.getenv = getenv })
}

// WithNamespaceFile replaces the service-account namespace file's path.
func WithNamespaceFile(path string) Option {
	return optionFunc(func(o *options) { o.namespaceFile = path })
}

// WithKubeconfig names the kubeconfig context whose namespace is used when neither POD_NAMESPACE
// nor the service-account file gives one.
func WithKubeconfig(src NamespaceSource) Option {
	return optionFunc(func(o *options) { o.kubeconfig = src })
}

// Load finds the namespace and, when POD_NAME is set, reads the Pod object.
//
// The namespace comes from POD_NAMESPACE, else the service-account namespace file, else the
// kubeconfig context given with WithKubeconfig; with none of them Load returns an error wrapping
// ErrNamespaceUnknown. With POD_NAME set, a missing Pod is an error wrapping ErrPodNotFound;
// without POD_NAME, Load returns an Info with no Pod (out of cluster).
func Load(ctx context.Context, pods corev1client.PodsGetter, opts ...Option) (Info, error) {
	switch {
	case ctx == nil:
		return Info{}, fmt.Errorf("contextinfo.Load: %w: ctx", ErrNilArgument)
	case pods == nil:
		return Info{}, fmt.Errorf("contextinfo.Load: %w: pods (pass clientset.CoreV1())", ErrNilArgument)
	}
	o := options{getenv: os.Getenv, namespaceFile: ServiceAccountNamespaceFile}
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	if o.getenv == nil {
		o.getenv = os.Getenv
	}
	ns, err := o.namespace()
	if err != nil {
		return Info{}, err
	}
	info := Info{Namespace: ns, PodName: strings.TrimSpace(o.getenv(EnvPodName))}
	if info.PodName == "" {
		return info, nil
	}
	pod, err := pods.Pods(ns).Get(ctx, info.PodName, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return Info{}, fmt.Errorf("%w: %s/%s (POD_NAME must name this process's own Pod)", ErrPodNotFound, ns, info.PodName)
	case err != nil:
		return Info{}, fmt.Errorf("get pod %s/%s: %w", ns, info.PodName, err)
	}
	info.Pod = pod
	return info, nil
}

func (o options) namespace() (string, error) {
	if ns := strings.TrimSpace(o.getenv(EnvPodNamespace)); ns != "" {
		return ns, nil
	}
	if o.namespaceFile != "" {
		data, err := os.ReadFile(o.namespaceFile)
		if err == nil && strings.TrimSpace(string(data)) != "" {
			return strings.TrimSpace(string(data)), nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%w: read %s: %w", ErrNamespaceUnknown, o.namespaceFile, err)
		}
	}
	if o.kubeconfig != nil {
		ns, _, err := o.kubeconfig.Namespace()
		if err != nil {
			return "", fmt.Errorf("%w: kubeconfig: %w", ErrNamespaceUnknown, err)
		}
		if ns != "" {
			return ns, nil
		}
	}
	return "", fmt.Errorf("%w: set %s, run in a Pod, or give a kubeconfig context", ErrNamespaceUnknown, EnvPodNamespace)
}
