package contextinfo

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

type kubeconfigNS string

func (k kubeconfigNS) Namespace() (string, bool, error) { return string(k), false, nil }

func env(vars map[string]string) Option {
	return WithEnv(func(k string) string { return vars[k] })
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	nsFile := filepath.Join(dir, "namespace")
	if err := os.WriteFile(nsFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: "prod", UID: "u1"}}
	tests := []struct {
		name    string
		opts    []Option
		wantNS  string
		wantPod bool
		wantErr error
	}{
		{name: "in a pod", opts: []Option{env(map[string]string{"POD_NAME": "web-0", "POD_NAMESPACE": "prod"})}, wantNS: "prod", wantPod: true},
		{name: "namespace from the service-account file", opts: []Option{env(map[string]string{}), WithNamespaceFile(nsFile)}, wantNS: "from-file"},
		{name: "namespace from kubeconfig", opts: []Option{env(map[string]string{}), WithNamespaceFile(filepath.Join(dir, "absent")), WithKubeconfig(kubeconfigNS("dev"))}, wantNS: "dev"},
		{name: "no namespace anywhere", opts: []Option{env(map[string]string{}), WithNamespaceFile(filepath.Join(dir, "absent"))}, wantErr: ErrNamespaceUnknown},
		{name: "pod does not exist", opts: []Option{env(map[string]string{"POD_NAME": "ghost", "POD_NAMESPACE": "prod"})}, wantErr: ErrPodNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Load(context.Background(), fake.NewClientset(pod).CoreV1(), tt.opts...)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Load error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if info.Namespace != tt.wantNS || info.InPod() != tt.wantPod {
				t.Errorf("Load = %+v, want namespace %q, pod %v", info, tt.wantNS, tt.wantPod)
			}
			if _, err := info.RequirePod(); tt.wantPod == (err != nil) {
				t.Errorf("RequirePod error = %v with pod %v", err, tt.wantPod)
			}
			if !tt.wantPod && !errors.Is(func() error { _, err := info.RequirePod(); return err }(), ErrPodNameMissing) {
				t.Error("RequirePod out of a pod should wrap ErrPodNameMissing")
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	in := Info{PodName: "web-0"}
	id := in.Identity()
	if !strings.HasPrefix(id, "web-0_") || len(id) <= len("web-0_") {
		t.Errorf("Identity = %q, want web-0_<suffix>", id)
	}
	if id != in.Identity() {
		t.Error("Identity changed within one process")
	}
	host, _ := os.Hostname()
	if out := (Info{}).Identity(); !strings.HasPrefix(out, host+"_") {
		t.Errorf("out-of-cluster Identity = %q, want %s_<suffix>", out, host)
	}
}
