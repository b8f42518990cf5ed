package onnode

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/regent-k8s/regent/e2e/demo"
)

// make demo on the node, in the short mode: a leader, `kubectl delete pod` of it (a handover),
// a crash of the next leader's container (a failover after the lease), told in the output.
func TestDemoOnTheNode(t *testing.T) {
	var out bytes.Buffer
	sum, err := demo.RunOnNode(context.Background(), &out, demo.Options{Short: true, Node: n})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Leaders) != 3 || sum.Leaders[0] == sum.Leaders[1] || sum.Leaders[1] == sum.Leaders[2] {
		t.Errorf("leaders %v, want three terms of different Pods", sum.Leaders)
	}
	if sum.Handover <= 0 || sum.Failover <= 0 {
		t.Errorf("handover %v, failover %v", sum.Handover, sum.Failover)
	}
	if sum.FailoverExcess < 0 {
		t.Errorf("the next leader was observed %v before the crashed leader's lease could expire", -sum.FailoverExcess)
	}
	for _, want := range []string{"LEADER", "kubectl delete pod", "SIGKILL", "failover", "restarted", "summary:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
