package podlabel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/lock"
)

const ns = "default"

func pod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: types.UID("uid-" + name), Labels: labels}}
}

// term is a held term of a Lease lock on a fake API server.
func term(t *testing.T) *lock.Term {
	t.Helper()
	env := kubefake.NewEnv()
	l, err := lock.NewLease(env.Client.CoordinationV1(), ns, "lock", lock.WithIdentity("a"), lock.WithClock(env.Clock))
	if err != nil {
		t.Fatal(err)
	}
	tm, err := l.TryAcquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tm.Release(context.Background()) })
	return tm
}

func labels(t *testing.T, cs *fake.Clientset, name string) map[string]string {
	t.Helper()
	p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Labels
}

func TestMarkLabelsThePodAndClearsAPreviousLeadersLabel(t *testing.T) {
	key := KeyFor("lock")
	cs := fake.NewClientset(
		pod("a", map[string]string{"app": "x"}),
		pod("crashed", map[string]string{"app": "x", key: Value}),
		pod("other-lock", map[string]string{"app": "x", KeyFor("another"): Value}),
		pod("follower", map[string]string{"app": "x"}),
	)
	self, _ := cs.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), ns, "a")
	l, err := New(cs.CoreV1(), self.(*corev1.Pod), "lock")
	if err != nil {
		t.Fatal(err)
	}
	tm := term(t)
	if err := l.Mark(context.Background(), tm); err != nil {
		t.Fatalf("Mark: %v", err)
	}
	if got := labels(t, cs, "a")[key]; got != Value {
		t.Fatalf("the leader's Pod has %s=%q, want %q", key, got, Value)
	}
	if _, ok := labels(t, cs, "crashed")[key]; ok {
		t.Fatal("the crashed previous leader's Pod keeps the label; Mark must clear it")
	}
	if got := labels(t, cs, "other-lock")[KeyFor("another")]; got != Value {
		t.Fatal("Mark removed the label of another lock's leader")
	}
	if got := labels(t, cs, "crashed")["app"]; got != "x" {
		t.Fatalf("Mark changed other labels: app=%q", got)
	}
	if err := l.Unmark(context.Background(), tm); err != nil {
		t.Fatalf("Unmark: %v", err)
	}
	if _, ok := labels(t, cs, "a")[key]; ok {
		t.Fatal("Unmark left the label on the Pod")
	}
	if got := labels(t, cs, "a")["app"]; got != "x" {
		t.Fatalf("Unmark changed other labels: app=%q", got)
	}
}

func TestAnEndedTermClearsNoOtherPod(t *testing.T) {
	key := KeyFor("lock")
	cs := fake.NewClientset(pod("a", nil), pod("newer-leader", map[string]string{key: Value}))
	l, err := New(cs.CoreV1(), pod("a", nil), "lock")
	if err != nil {
		t.Fatal(err)
	}
	tm := term(t)
	if err := tm.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := l.Mark(context.Background(), tm); err != nil {
		t.Fatalf("Mark: %v", err)
	}
	if got := labels(t, cs, "newer-leader")[key]; got != Value {
		t.Fatal("a holder whose term had ended cleared another Pod's label, maybe its successor's")
	}
}

func TestUnmarkOfAPodThatIsGoneSucceeds(t *testing.T) {
	cs := fake.NewClientset()
	l, err := New(cs.CoreV1(), pod("a", nil), "lock")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Unmark(context.Background(), term(t)); err != nil {
		t.Fatalf("Unmark of a deleted Pod: %v, want nil", err)
	}
}

func TestMarkRetriesUntilItsContextEnds(t *testing.T) {
	cs := fake.NewClientset() // no Pod "a": every patch fails
	l, err := New(cs.CoreV1(), pod("a", nil), "lock")
	if err != nil {
		t.Fatal(err)
	}
	l.first = time.Millisecond
	ctx, cancel := context.WithCancelCause(context.Background())
	patches := 0
	cs.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if patches++; patches == 3 {
			cancel(errors.New("term over"))
		}
		return false, nil, nil
	})
	err = l.Mark(ctx, term(t))
	if err == nil || !strings.Contains(err.Error(), "term over") || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("Mark = %v, want the last failure and the context's cause", err)
	}
	if patches != 3 {
		t.Fatalf("Mark patched %d times, want 3: retries until its context ends, then none", patches)
	}
}

func TestNewRefusesWhatItCannotUse(t *testing.T) {
	cs := fake.NewClientset()
	long := strings.Repeat("x", 64)
	tests := []struct {
		name  string
		field string
		call  func() error
	}{
		{"nil pods", "pods", func() error { _, err := New(nil, pod("a", nil), "lock"); return err }},
		{"nil pod", "pod", func() error { _, err := New(cs.CoreV1(), nil, "lock"); return err }},
		{"pod without namespace", "pod", func() error {
			_, err := New(cs.CoreV1(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, "lock")
			return err
		}},
		{"lock name too long for a label", "label key", func() error { _, err := New(cs.CoreV1(), pod("a", nil), long); return err }},
		{"bad key", "label key", func() error {
			_, err := New(cs.CoreV1(), pod("a", nil), "lock", WithKey("no spaces allowed"))
			return err
		}},
	}
	for _, tt := range tests {
		var ce *lock.ConfigError
		if err := tt.call(); !errors.As(err, &ce) || ce.Field != tt.field {
			t.Errorf("%s: got %v, want a *lock.ConfigError for field %q", tt.name, err, tt.field)
		}
	}
	if _, err := New(cs.CoreV1(), pod("a", nil), long, WithKey("example.com/leader")); err != nil {
		t.Errorf("a long lock name with its own key: %v, want nil", err)
	}
}

func TestMarkWithoutATermIsRefused(t *testing.T) {
	// Without a term, Mark cannot tell whether it still leads while it clears another Pod's
	// label; it panicked once another Pod carried the label.
	key := KeyFor("lock")
	cs := fake.NewClientset(pod("a", nil), pod("crashed", map[string]string{key: Value}))
	self, _ := cs.Tracker().Get(corev1.SchemeGroupVersion.WithResource("pods"), ns, "a")
	l, err := New(cs.CoreV1(), self.(*corev1.Pod), "lock")
	if err != nil {
		t.Fatal(err)
	}
	var cfg *lock.ConfigError
	if err := l.Mark(context.Background(), nil); !errors.As(err, &cfg) || cfg.Field != "term" {
		t.Fatalf("Mark(ctx, nil) = %v, want a ConfigError on term", err)
	}
	if got := labels(t, cs, "crashed")[key]; got != Value {
		t.Errorf("the other Pod's label was changed to %q", got)
	}
}
