package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func run(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	cmd := newRootCommand(&out, &errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestWithoutAKubeconfigTheCommandSaysSo(t *testing.T) {
	t.Setenv("KUBECONFIG", t.TempDir()+"/none")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	if _, err := run("list"); err == nil || !strings.Contains(err.Error(), "KUBECONFIG") {
		t.Fatalf("list without a kubeconfig = %v, want an error that names KUBECONFIG", err)
	}
}

func TestUsageErrorsNameWhatIsAccepted(t *testing.T) {
	for _, args := range [][]string{
		{"list", "-o", "table"},
		{"handover", "lock"},
		{"handover", "lock", "--to", "b", "--wait", "-1s"},
		{"release"},
		{"watch", "a", "b"},
		{"watch", "-A", "a"},
		{"watch", "a", "--timeout", "-1s"},
		{"list", "--no-such-flag"},
	} {
		var u usageError
		if _, err := run(args...); !errors.As(err, &u) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
