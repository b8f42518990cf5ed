package readypeer

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/regent-k8s/regent/lock"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func pod(name, hash string, created time.Duration, isReady bool) *corev1.Pod {
	status := corev1.ConditionFalse
	if isReady {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", CreationTimestamp: metav1.NewTime(t0.Add(created)),
			Labels: map[string]string{"app": "worker", "pod-template-hash": hash}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}}},
	}
}

func TestTheNewestReadyPodOfTheWorkloadIsNamed(t *testing.T) {
	self := pod("worker-old-a", "old", 0, true)
	self.Labels["leader.regent.dev/lock"] = "true"
	terminating := pod("worker-old-b", "old", time.Minute, true)
	now := metav1.NewTime(t0)
	terminating.DeletionTimestamp = &now
	other := pod("other-1", "x", 5*time.Minute, true)
	other.Labels["app"] = "other"
	client := fake.NewClientset(self, terminating, other,
		pod("worker-old-c", "old", 2*time.Minute, true),
		pod("worker-new-a", "new", 3*time.Minute, true),
		pod("worker-new-b", "new", 4*time.Minute, false), // newest, but not Ready yet
	)
	next, err := New(client.CoreV1(), self)
	if err != nil {
		t.Fatal(err)
	}
	if to, err := next(context.Background(), nil); err != nil || to != "worker-new-a" {
		t.Fatalf("successor = %q, %v; want worker-new-a, the newest Ready Pod of the workload", to, err)
	}
}

func TestNoReadyPodNamesNoOne(t *testing.T) {
	self := pod("worker-a", "h", 0, true)
	client := fake.NewClientset(self, pod("worker-b", "h", time.Minute, false))
	next, err := New(client.CoreV1(), self)
	if err != nil {
		t.Fatal(err)
	}
	if to, err := next(context.Background(), nil); err != nil || to != "" {
		t.Fatalf("successor = %q, %v; want none", to, err)
	}
}

func TestNewRefusesWhatCannotNameAWorkload(t *testing.T) {
	client := fake.NewClientset()
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"pod-template-hash": "h"}}}
	for name, self := range map[string]*corev1.Pod{"no pod": nil, "no workload labels": bare} {
		var ce *lock.ConfigError
		if _, err := New(client.CoreV1(), self); !errors.As(err, &ce) {
			t.Errorf("%s: New = %v, want a ConfigError", name, err)
		}
	}
}
