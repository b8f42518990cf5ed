package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/regent-k8s/regent/e2e/demo"
)

// The demo, in the short mode CI runs: a leader, a handover and a failover, told in the output.
func TestDemoShort(t *testing.T) {
	var out bytes.Buffer
	sum, err := demo.Run(context.Background(), &out, demo.Options{Short: true, ControlPlane: cp})
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Leaders) != 3 || sum.Leaders[0] == sum.Leaders[1] || sum.Leaders[1] == sum.Leaders[2] {
		t.Errorf("leaders %v, want three terms of different replicas", sum.Leaders)
	}
	if sum.Handover <= 0 || sum.Failover <= 0 {
		t.Errorf("handover %v, failover %v", sum.Handover, sum.Failover)
	}
	// The crashed leader's lease must have expired before anyone else led.
	if sum.FailoverExcess < 0 {
		t.Errorf("the next leader was observed %v before the crashed leader's lease could expire", -sum.FailoverExcess)
	}
	for _, want := range []string{"LEADER", "handover", "SIGKILL", "failover", "summary:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}
