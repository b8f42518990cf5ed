// Package crd holds the LeaderLock CustomResourceDefinition that lock.NewLeaderLockForLife needs,
// so that a program or a test can install it from code, as `kubectl apply -f
// config/crd/leaderlocks.regent.dev.yaml` would.
package crd

import (
	_ "embed"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

//go:embed leaderlocks.regent.dev.yaml
var leaderLockYAML []byte

// LeaderLockYAML is the LeaderLock CRD's manifest.
func LeaderLockYAML() []byte { return append([]byte(nil), leaderLockYAML...) }

// LeaderLock is the LeaderLock CRD as an object, ready for a dynamic client's Create on
// apiextensions.k8s.io/v1 customresourcedefinitions.
func LeaderLock() (*unstructured.Unstructured, error) {
	var obj map[string]any
	if err := yaml.Unmarshal(leaderLockYAML, &obj); err != nil {
		return nil, fmt.Errorf("crd: the embedded LeaderLock CRD: %w", err)
	}
	return &unstructured.Unstructured{Object: obj}, nil
}
