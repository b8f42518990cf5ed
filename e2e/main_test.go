package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/regent-k8s/regent/e2e/controlplane"
)

// cp is the package's control plane: etcd, kube-apiserver and the garbage collector.
var cp *controlplane.ControlPlane

// rbacUsers are ordinary users that the RBAC tests grant rights to.
var rbacUsers = []string{
	"lease-full", "lease-no-get", "lease-no-list", "lease-no-watch", "lease-no-create", "lease-no-update",
	"life-full", "life-no-get", "life-no-list", "life-no-watch", "life-no-create", "life-no-delete", "life-no-pods",
}

func TestMain(m *testing.M) {
	var err error
	cp, err = controlplane.Start(context.Background(), controlplane.Options{Users: rbacUsers})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot start the control plane:", err)
		os.Exit(1)
	}
	code := m.Run()
	if err := cp.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: a control-plane process died:", err)
		code = 1
	}
	cp.Stop()
	os.Exit(code)
}
