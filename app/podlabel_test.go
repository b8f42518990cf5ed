package app

import (
	"context"
	"errors"
	"flag"
	"strings"
	"testing"

	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"
	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/kubefake"
	"github.com/regent-k8s/regent/podlabel"
)

func TestTheLeadersPodIsLabelledWhileItLeads(t *testing.T) {
	self := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-0", Namespace: "default", UID: "u0"}}
	env := kubefake.NewEnv(self)
	cfg := testConfig()
	cfg.LabelLeaderPod = true
	key := podlabel.KeyFor(cfg.LockName)
	app := fxtest.New(t,
		fx.Supply(cfg, contextinfo.Info{Namespace: "default", PodName: "pod-0", Pod: self}, zaptest.NewLogger(t)),
		fx.Provide(func() kubernetes.Interface { return env.Client }),
		LeaderElection,
		GuardedWorkload(func(ctx context.Context) error { <-ctx.Done(); return nil }),
	)
	label := func() (string, bool) {
		p, err := env.Client.CoreV1().Pods("default").Get(context.Background(), "pod-0", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		v, ok := p.Labels[key]
		return v, ok
	}
	app.RequireStart()
	env.Await(t, "the leader's Pod labelled "+key, func() bool { v, _ := label(); return v == podlabel.Value })
	app.RequireStop()
	if _, ok := label(); ok {
		t.Fatalf("the label %s stays on the Pod after the app stopped", key)
	}
}

func TestAPreviousContainersLabelIsClearedBeforeCampaigning(t *testing.T) {
	cfg := testConfig()
	cfg.LabelLeaderPod = true
	key := podlabel.KeyFor(cfg.LockName)
	self := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-0", Namespace: "default", UID: "u0", Labels: map[string]string{key: podlabel.Value, "app": "x"}}}
	env := kubefake.NewEnv(self)
	if _, err := NewLeaderElection(LeaderElectionParams{Config: cfg, Info: contextinfo.Info{Namespace: "default", PodName: "pod-0", Pod: self}, Client: env.Client}); err != nil {
		t.Fatal(err)
	}
	p, err := env.Client.CoreV1().Pods("default").Get(context.Background(), "pod-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Labels[key]; ok || p.Labels["app"] != "x" {
		t.Fatalf("labels %v after the election was built, want %s cleared and app kept", p.Labels, key)
	}
}

func TestLabellingTheLeadersPodIsRefusedWhereItCannotWork(t *testing.T) {
	cfg := testConfig()
	cfg.LabelLeaderPod = true
	var fe *FlagError
	// Outside a Pod.
	_, err := NewLeaderElection(LeaderElectionParams{Config: cfg, Info: contextinfo.Info{Namespace: "default"}, Client: kubefake.NewEnv().Client})
	if !errors.As(err, &fe) || fe.Flag != "label-leader-pod" || !strings.Contains(fe.Reason, "POD_NAME") {
		t.Errorf("without a Pod: %v, want an error naming --label-leader-pod and POD_NAME", err)
	}
	// A semaphore has several holders.
	sem := cfg
	sem.LockKind, sem.SemaphoreSize = KindSemaphore, 2
	if err := sem.Validate(); !errors.As(err, &fe) || fe.Flag != "label-leader-pod" {
		t.Errorf("with a semaphore: %v, want an error naming --label-leader-pod", err)
	}
	// A lock name too long for a label key.
	long := cfg
	long.LockName = strings.Repeat("a", 64)
	if err := long.Validate(); !errors.As(err, &fe) || fe.Flag != "label-leader-pod" || !strings.Contains(fe.Reason, "63") {
		t.Errorf("with a 64-character lock name: %v, want an error naming --label-leader-pod and the limit", err)
	}
	// From the environment: a value that is not a boolean, then one that is.
	t.Setenv("REGENT_LABEL_LEADER_POD", "yes please")
	c := testConfig()
	c.RegisterFlags(flag.NewFlagSet("test", flag.ContinueOnError))
	if err := c.Validate(); !errors.As(err, &fe) || fe.Flag != "label-leader-pod" || fe.Value != "yes please" {
		t.Errorf("REGENT_LABEL_LEADER_POD=yes please: %v, want an error naming it", err)
	}
	t.Setenv("REGENT_LABEL_LEADER_POD", "true")
	c = testConfig()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	c.RegisterFlags(fs)
	if err := c.Validate(); err != nil || !c.LabelLeaderPod {
		t.Errorf("REGENT_LABEL_LEADER_POD=true: %v, LabelLeaderPod=%v", err, c.LabelLeaderPod)
	}
	if err := fs.Parse([]string{"--label-leader-pod=false"}); err != nil || c.LabelLeaderPod {
		t.Errorf("--label-leader-pod=false over the environment: %v, LabelLeaderPod=%v", err, c.LabelLeaderPod)
	}
}
