package readypeer

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"

	"github.com/regent-k8s/regent/leader"
	"github.com/regent-k8s/regent/lock"
)

// perPodLabels differ between the revisions or the Pods of one workload.
var perPodLabels = []string{
	"pod-template-hash",                  // Deployment's ReplicaSets
	"controller-revision-hash",           // StatefulSet, DaemonSet
	"statefulset.kubernetes.io/pod-name", // StatefulSet
	"apps.kubernetes.io/pod-index",       // StatefulSet
	"pod-template-generation",            // DaemonSet
}

// leaderLabelPrefix begins the labels package podlabel puts on the leader's Pod.
const leaderLabelPrefix = "leader.regent.dev/"

// Option configures New.
type Option func(*options)

type options struct{ selector labels.Selector }

// WithSelector selects the workload's Pods with s instead of the labels New derives.
func WithSelector(s labels.Selector) Option { return func(o *options) { o.selector = s } }

// New returns a leader.Successor that names the newest Ready Pod, other than self, of self's
// workload in self's namespace. self is this process's Pod (contextinfo.Info.Pod).
func New(pods corev1client.PodsGetter, self *corev1.Pod, opts ...Option) (leader.Successor, error) {
	switch {
	case pods == nil:
		return nil, &lock.ConfigError{Field: "pods", Value: nil, Reason: "must not be nil"}
	case self == nil || self.Name == "" || self.Namespace == "":
		return nil, &lock.ConfigError{Field: "self", Value: self, Reason: "must be this process's Pod, with a name and namespace (contextinfo.Info.Pod; set POD_NAME)"}
	}
	var o options
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.selector == nil {
		set := labels.Set{}
		for k, v := range self.Labels {
			if !slices.Contains(perPodLabels, k) && !strings.HasPrefix(k, leaderLabelPrefix) {
				set[k] = v
			}
		}
		if len(set) == 0 {
			return nil, &lock.ConfigError{Field: "self", Value: self.Name,
				Reason: "has no labels that name its workload (only per-Pod ones); pass WithSelector"}
		}
		o.selector = labels.SelectorFromSet(set)
	}
	client, name, selector := pods.Pods(self.Namespace), self.Name, o.selector.String()
	return func(ctx context.Context, _ *lock.Term) (string, error) {
		list, err := client.List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return "", fmt.Errorf("list the workload's pods (%s): %w", selector, err)
		}
		return newestReady(list.Items, name), nil
	}, nil
}

// newestReady is the name of the newest Pod of pods that is Ready, not being deleted, and not
// named self; "" if there is none.
func newestReady(pods []corev1.Pod, self string) string {
	var best *corev1.Pod
	for i := range pods {
		p := &pods[i]
		if p.Name == self || p.DeletionTimestamp != nil || !ready(p) {
			continue
		}
		if best == nil || p.CreationTimestamp.After(best.CreationTimestamp.Time) ||
			(p.CreationTimestamp.Equal(&best.CreationTimestamp) && p.Name < best.Name) {
			best = p
		}
	}
	if best == nil {
		return ""
	}
	return best.Name
}

func ready(p *corev1.Pod) bool {
	if p.Status.Phase != corev1.PodRunning {
		return false
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
