// Package onnode runs the examples' shipped manifests as real Pods on a real node (package node):
// in-cluster config, POD_NAME from the downward API, the examples' own ServiceAccounts and Roles,
// kubelet's probes, SIGTERM and grace periods, and the kubectl actions users take.
package onnode

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/e2e/node"
)

// n is the package's node.
var n *node.Node

// examples are the four examples, their images as their manifests name them, and how their
// logs say that a term (or a critical section) begins and ends.
var examples = []example{
	{name: "lease-leader", deployment: "lease-leader", image: "lease-leader:latest", start: "leading", end: "stopped leading work"},
	{name: "configmap-leader-for-life", deployment: "configmap-leader", image: "configmap-leader:latest", start: "Got leader role", end: "stopped leader work"},
	{name: "leaderlock-leader-for-life", deployment: "leaderlock-leader", image: "leaderlock-leader:latest", start: "Got leader role", end: "stopped leader work"},
	{name: "distributed-lock", deployment: "distributed-lock", image: "distributed-lock:latest", start: "entered the critical section", end: "left the critical section"},
}

// installCRD installs the LeaderLock CRD from config/crd, as a cluster administrator would, and
// waits until it is served.
func installCRD() error {
	data, err := os.ReadFile("../../config/crd/leaderlocks.regent.dev.yaml")
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := n.CP.Apply(ctx, "", data); err != nil {
		return err
	}
	disc := n.CP.Client(controlplane.AdminUser).Discovery()
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(context.Context) (bool, error) {
		_, err := disc.ServerResourcesForGroupVersion("regent.dev/v1")
		return err == nil, nil
	})
}

// clientGo is client-go's leaderelection as a Deployment (e2e/cmd/clientgoleader), measured
// beside the lease-leader example.
var clientGo = example{name: "clientgo-leader", deployment: "clientgo-leader", image: "clientgo-leader:latest",
	start: "leading", end: "stopped leading work", manifests: "testdata/clientgo-leader"}

// semaphoreWorker is the semaphore example: two of its four replicas work at once.
var semaphoreWorker = example{name: "semaphore-worker", deployment: "semaphore-worker", image: "semaphore-worker:latest",
	start: "holding a slot", end: "stopped working"}

// shardedWorker is the sharding example: 8 shards over its three replicas.
var shardedWorker = example{name: "sharded-worker", deployment: "sharded-worker", image: "sharded-worker:latest",
	start: "running shard", end: "stopped shard"}

// operator is the controller-runtime example, a module of its own; its leader reconciles.
var operator = example{name: "configmap-operator", deployment: "configmap-operator", image: "configmap-operator:latest"}

type example struct {
	name, deployment, image, start, end string
	// manifests is the folder of its manifests; default ../../examples/NAME/deploy.
	manifests string
}

func TestMain(m *testing.M) {
	var images []node.Image
	for _, ex := range examples {
		images = append(images, node.Image{Package: "./examples/" + ex.name, Dir: "../..", Tag: ex.image})
	}
	images = append(images, node.Image{Package: "./examples/" + semaphoreWorker.name, Dir: "../..", Tag: semaphoreWorker.image},
		node.Image{Package: "./examples/" + shardedWorker.name, Dir: "../..", Tag: shardedWorker.image},
		node.Image{Package: "./cmd/clientgoleader", Dir: "..", Tag: clientGo.image},
		node.Image{Package: ".", Dir: "../../examples/configmap-operator", Tag: operator.image})
	var err error
	n, err = node.Start(context.Background(), node.Options{Images: images, Log: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "onnode: cannot start the node:", err)
		os.Exit(1)
	}
	if err := installCRD(); err != nil {
		n.Stop()
		fmt.Fprintln(os.Stderr, "onnode:", err)
		os.Exit(1)
	}
	code := m.Run()
	dir := n.Dir()
	n.Stop()
	// The node must leave nothing behind: the next run on this machine depends on it.
	if left := node.Leftovers(dir); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "onnode: the stopped node left behind:\n  %s\n", strings.Join(left, "\n  "))
		code = 1
	}
	os.Exit(code)
}
