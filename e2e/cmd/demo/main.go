// Command demo is `make demo`: three replicas of the Lease leader example on the embedded control
// plane (or, with KUBECONFIG set, on that cluster), showing an election, a graceful handover and
// a crash failover. It stops everything it started and exits by itself in about a minute.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/regent-k8s/regent/e2e/demo"
)

func main() {
	short := flag.Bool("short", false, "short timings and pauses (3 s leases), as CI runs it")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := demo.Run(ctx, os.Stdout, demo.Options{Short: *short, Kubeconfig: os.Getenv("KUBECONFIG")}); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
