package e2e

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/regent-k8s/regent/e2e/examplerun"
)

// Each example's RBAC manifests are applied, the example runs with a token of its ServiceAccount
// (and nothing more), in a Pod object of its own, and must lead.
func TestExamplesLeadWithTheirOwnRBAC(t *testing.T) {
	bins := t.TempDir()
	tests := []struct {
		example, serviceAccount, wantMsg string
		extra                            []string // more manifests from the example's deploy folder
		args                             []string
		needsCRD                         bool
	}{
		{example: "lease-leader", serviceAccount: "lease-leader", wantMsg: "leading", args: []string{"--tick=200ms"}},
		{example: "configmap-leader-for-life", serviceAccount: "configmap-leader", wantMsg: "Got leader role"},
		{example: "leaderlock-leader-for-life", serviceAccount: "leaderlock-leader", wantMsg: "Got leader role", needsCRD: true},
		{example: "distributed-lock", serviceAccount: "distributed-lock", wantMsg: "left the critical section", extra: []string{"lease.yaml"}, args: []string{"--rounds=2", "--hold=100ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.example, func(t *testing.T) {
			ctx := context.Background()
			if tt.needsCRD {
				installCRD(t)
			}
			bin, err := examplerun.Build(ctx, tt.example, bins)
			if err != nil {
				t.Fatal(err)
			}
			ns := namespace(t)
			for _, f := range append([]string{"rbac.yaml"}, tt.extra...) {
				manifest, err := os.ReadFile(filepath.Join(examplerun.RepoRoot(), "examples", tt.example, "deploy", f))
				if err != nil {
					t.Fatal(err)
				}
				if err := cp.Apply(ctx, ns, manifest); err != nil {
					t.Fatal(err)
				}
			}
			kubeconfig, err := cp.ServiceAccountKubeconfig(ctx, ns, tt.serviceAccount)
			if err != nil {
				t.Fatal(err)
			}
			pod := newPod(t, ns, tt.example+"-0")
			var once sync.Once
			led := make(chan struct{})
			p, err := examplerun.Start(tt.example, bin, tt.args, []string{
				"KUBECONFIG=" + kubeconfig, "POD_NAME=" + pod.Name, "POD_NAMESPACE=" + ns, "REGENT_HEALTH_ADDR=",
			}, func(_ *examplerun.Process, l examplerun.Line) {
				t.Log(l.Text)
				if l.Msg == tt.wantMsg {
					once.Do(func() { close(led) })
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop(10 * time.Second)
			select {
			case <-led:
			case <-p.Done():
				t.Fatalf("%s exited before leading: %v", tt.example, p.Err())
			case <-time.After(guard):
				t.Fatalf("%s did not lead", tt.example)
			}
			if err := p.Stop(10 * time.Second); err != nil {
				t.Errorf("%s did not exit cleanly on SIGTERM: %v", tt.example, err)
			}
		})
	}
}
