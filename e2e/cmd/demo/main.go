// Command demo is `make demo`: three replicas of the Lease leader example, showing an election, a
// graceful handover and a crash failover. By default they run as a real Deployment on a
// single-node cluster of the demo's own (kubelet and containerd; needs root and the parts that
// `make node` installs); where the node cannot start, it says why and runs the replicas as
// processes on the embedded control plane instead. With KUBECONFIG set, the replicas run as
// processes against that cluster. It stops everything it started and exits by itself in about a
// minute.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/regent-k8s/regent/e2e/demo"
)

func main() {
	short := flag.Bool("short", false, "short timings and pauses (3 s leases), as CI runs it")
	on := flag.String("on", "auto", "where the replicas run: node (Pods on a node of the demo's own), processes, or auto (node where it can start)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := demo.Options{Short: *short, Kubeconfig: os.Getenv("KUBECONFIG")}
	var err error
	switch {
	case *on != "auto" && *on != "node" && *on != "processes":
		err = fmt.Errorf("--on=%q: want node, processes or auto", *on)
	case *on == "processes" || opts.Kubeconfig != "":
		_, err = demo.Run(ctx, os.Stdout, opts)
	default:
		_, err = demo.RunOnNode(ctx, os.Stdout, opts)
		var unavailable *demo.NodeUnavailableError
		if *on == "auto" && errors.As(err, &unavailable) {
			fmt.Printf("\nthe node cannot start on this machine: %v\nrunning the replicas as processes on the embedded control plane instead\n\n", unavailable.Err)
			_, err = demo.Run(ctx, os.Stdout, opts)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
