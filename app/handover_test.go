package app

import (
	"errors"
	"flag"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/contextinfo"
	"github.com/regent-k8s/regent/kubefake"
)

func TestHandOverOnStopIsReadFromFlagsAndEnvironment(t *testing.T) {
	t.Setenv("REGENT_HAND_OVER_ON_STOP", "true")
	cfg := testConfig()
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil || !cfg.HandOverOnStop {
		t.Fatalf("from the environment: %v, HandOverOnStop %v", err, cfg.HandOverOnStop)
	}
	if err := fs.Parse([]string{"--hand-over-on-stop=false"}); err != nil || cfg.HandOverOnStop {
		t.Fatalf("the flag overrides the environment: %v, HandOverOnStop %v", err, cfg.HandOverOnStop)
	}

	t.Setenv("REGENT_HAND_OVER_ON_STOP", "yes")
	bad := testConfig()
	bad.RegisterFlags(flag.NewFlagSet("t", flag.ContinueOnError))
	var fe *FlagError
	if err := bad.Validate(); !errors.As(err, &fe) || fe.Env != "REGENT_HAND_OVER_ON_STOP" || fe.Value != "yes" {
		t.Fatalf("an unreadable value: %v, want an error naming REGENT_HAND_OVER_ON_STOP and yes", err)
	}
}

func TestHandOverOnStopIsRefusedWhereItCannotWork(t *testing.T) {
	var fe *FlagError
	life := testConfig()
	life.LockKind, life.HandOverOnStop = KindConfigMap, true
	if err := life.Validate(); !errors.As(err, &fe) || fe.Flag != "hand-over-on-stop" || !strings.Contains(fe.Reason, "lease") {
		t.Errorf("a leader-for-life lock: %v, want an error naming --hand-over-on-stop", err)
	}
	cfg := testConfig()
	cfg.HandOverOnStop = true
	_, err := NewLeaderElection(LeaderElectionParams{Config: cfg, Info: contextinfo.Info{Namespace: "default"}, Client: kubefake.NewEnv().Client})
	if !errors.As(err, &fe) || fe.Flag != "hand-over-on-stop" || !strings.Contains(fe.Reason, "POD_NAME") {
		t.Errorf("without a Pod: %v, want an error naming --hand-over-on-stop and POD_NAME", err)
	}
	bare := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "pod-0", Namespace: "default", Labels: map[string]string{"pod-template-hash": "h"}}}
	_, err = NewLeaderElection(LeaderElectionParams{Config: cfg, Info: contextinfo.Info{Namespace: "default", PodName: "pod-0", Pod: bare}, Client: kubefake.NewEnv(bare).Client})
	if !errors.As(err, &fe) || fe.Flag != "hand-over-on-stop" || !strings.Contains(fe.Reason, "WithSelector") && !strings.Contains(fe.Reason, "labels") {
		t.Errorf("a Pod without workload labels: %v, want an error naming --hand-over-on-stop", err)
	}
}
