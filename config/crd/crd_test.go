package crd

import (
	"testing"

	"github.com/regent-k8s/regent/lock"
)

func TestTheEmbeddedCRDDefinesTheResourceTheLockUses(t *testing.T) {
	obj, err := LeaderLock()
	if err != nil {
		t.Fatal(err)
	}
	r := lock.LeaderLockResource
	if obj.GetKind() != "CustomResourceDefinition" || obj.GetName() != r.Resource+"."+r.Group {
		t.Fatalf("embedded CRD %s %s, want the CRD of %s", obj.GetKind(), obj.GetName(), r)
	}
	if len(LeaderLockYAML()) == 0 {
		t.Fatal("no YAML")
	}
}
