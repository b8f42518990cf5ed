//go:build node

package node

import (
	"context"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/e2e/controlplane"
)

// A Pod runs on the node, from a locally built image, and the node leaves nothing behind.
func TestNodeRunsAPodAndLeavesNothingBehind(t *testing.T) {
	ctx := context.Background()
	n, err := Start(ctx, Options{Log: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	dir := n.Dir()
	stopped := false
	defer func() {
		if !stopped {
			n.Stop()
		}
	}()
	client := n.CP.Client(controlplane.AdminUser)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "pause", Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "pause", Image: PauseImage, ImagePullPolicy: corev1.PullNever,
		}}},
	}
	if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		p, err := client.CoreV1().Pods("default").Get(ctx, "pause", metav1.GetOptions{})
		if err == nil && p.Status.Phase == corev1.PodRunning {
			t.Logf("pod running with IP %s", p.Status.PodIP)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("pod not running after a minute: %+v; kubelet log:\n%s", p.Status, tail(dir+"/kubelet.log", 40))
		}
		time.Sleep(200 * time.Millisecond) // polls the API server, not the code under test
	}
	n.Stop()
	stopped = true
	if m := Mounts(dir); len(m) > 0 {
		t.Errorf("mounts left: %v", m)
	}
	if c := Cgroups(); len(c) > 0 {
		t.Errorf("cgroups left: %v", c)
	}
	if _, err := os.Stat("/run/netns/" + NetNS); err == nil {
		t.Error("network namespace left")
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("working folder left")
	}
}
