// Command kubectl-regent shows and operates the locks of regent (and of client-go's leader
// election, which shares the Lease format) as a kubectl plugin: kubectl regent list|watch|
// release|handover. Put it on the PATH as kubectl-regent; it reads the kubeconfig as kubectl does
// and takes kubectl's flags (--kubeconfig, --context, -n/--namespace, ...).
//
// Exit status: 0 on success, 1 on an error (the message says what and why), 2 on a usage error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCommand(os.Stdout, os.Stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		var u usageError
		if errors.As(err, &u) || strings.HasPrefix(err.Error(), "unknown command") {
			os.Exit(2)
		}
		os.Exit(1)
	}
}
