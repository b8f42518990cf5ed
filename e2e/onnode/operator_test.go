package onnode

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The controller-runtime example (examples/configmap-operator, under integrations/regentctrl) as
// its manifests' 3-replica Deployment: every Pod Ready, exactly the Role its manifests grant,
// the leader's Pod reconciles with its term's token, and after `kubectl delete pod` of the leader
// another Pod reconciles, with a greater token.
func TestControllerRuntimeOperatorOnTheNode(t *testing.T) {
	ns := deploy(t, operator)
	checkRBAC(t, ns, operator)
	ctx := context.Background()
	cms := admin().CoreV1().ConfigMaps(ns)
	reconciledBy := func(name string) (pod string, token int64) {
		deadline := time.Now().Add(time.Minute)
		for {
			cm, err := cms.Get(ctx, name, metav1.GetOptions{})
			if err == nil {
				if v := cm.Annotations["regent.dev/reconciled-by"]; v != "" {
					if _, err := fmt.Sscanf(v, "%s token %d", &pod, &token); err == nil {
						return pod, token
					}
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("configmap %s was not reconciled within a minute:\n%s", name, podSummary(ns))
			}
			time.Sleep(100 * time.Millisecond) // polls the API server
		}
	}
	create := func(name string) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"regent.dev/example": "operator"}}}
		if _, err := cms.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	create("first")
	leaderPod, token := reconciledBy("first")
	if !strings.HasPrefix(leaderPod, "configmap-operator-") {
		t.Fatalf("reconciled by %q, want a Pod of the Deployment", leaderPod)
	}
	deleted := time.Now()
	if err := admin().CoreV1().Pods(ns).Delete(ctx, leaderPod, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// Until its container has stopped, the deleted Pod still leads, rightly: wait until it is
	// gone, then give the operator something new to reconcile.
	for {
		if _, err := admin().CoreV1().Pods(ns).Get(ctx, leaderPod, metav1.GetOptions{}); apierrors.IsNotFound(err) {
			break
		}
		if time.Since(deleted) > time.Minute {
			t.Fatalf("pod %s not gone a minute after its deletion", leaderPod)
		}
		time.Sleep(100 * time.Millisecond) // polls the API server
	}
	create("second")
	nextPod, nextToken := reconciledBy("second")
	t.Logf("%s reconciled with token %d; deleted it; once it was gone %s reconciled a new ConfigMap with token %d, %v after the delete",
		leaderPod, token, nextPod, nextToken, time.Since(deleted).Round(time.Millisecond))
	if nextPod == leaderPod || nextToken <= token {
		t.Errorf("after deleting %s (token %d), %s reconciled with token %d", leaderPod, token, nextPod, nextToken)
	}
	awaitReady(t, ns, operator.deployment, 2*time.Minute)
}
