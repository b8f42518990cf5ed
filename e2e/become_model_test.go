package e2e

import (
	"context"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// becomeModel waits for a leader-for-life ConfigMap on the schedule of operator-lib's
// leader.Become, for the benchmarks. It is a model written here, not operator-lib's code: that
// module is not served by the module proxy this project can reach, so it cannot be imported.
// The model keeps the parts of Become that decide how soon a waiter notices a free lock: try to
// create the ConfigMap owned by the Pod; when it exists, read it and its owner Pod (a Pod that
// is gone means waiting for the garbage collector), then sleep a jittered backoff that starts at
// 1 s and doubles up to 16 s, each sleep d drawn from [d, 1.2 d] (wait.Jitter(d, 0.2)). Become's
// handling of evicted, preempted and NotReady holders is left out: the benchmark deletes Pods.
// It returns when the ConfigMap was created, or ctx's error.
func becomeModel(ctx context.Context, client kubernetes.Interface, pod *corev1.Pod, name string) error {
	yes := true
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: name, Namespace: pod.Namespace,
		OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, Controller: &yes}},
	}}
	const maxBackoff = 16 * time.Second
	backoff := time.Second
	for {
		_, err := client.CoreV1().ConfigMaps(pod.Namespace).Create(ctx, cm, metav1.CreateOptions{})
		switch {
		case err == nil:
			return nil
		case !apierrors.IsAlreadyExists(err):
			return err
		}
		if existing, err := client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{}); err == nil {
			for _, o := range existing.OwnerReferences {
				_, _ = client.CoreV1().Pods(pod.Namespace).Get(ctx, o.Name, metav1.GetOptions{})
			}
		}
		sleep := backoff + time.Duration(rand.Float64()*0.2*float64(backoff))
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return ctx.Err()
		}
		if backoff < maxBackoff {
			backoff *= 2
		}
	}
}
