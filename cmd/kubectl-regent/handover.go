package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/regent-k8s/regent/lock"
)

func newHandoverCommand(e *env) *cobra.Command {
	var to string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "handover LEASE --to CANDIDATE",
		Short: "Ask a Lease's holder to hand the lock over to a candidate",
		Long: `Ask the holder of a Lease lock to hand it over to CANDIDATE: its identity as the Lease shows it,
or, for processes of regent's app, its Pod's name. The request is the annotation
regent.dev/handover-to=CANDIDATE, as 'kubectl annotate' writes it. A regent holder sees it at its
next renewal, stops its work, and hands over; the candidate takes the lock at once. If the
candidate does not take it within the holder's RetryPeriod, any candidate may.

The command waits (--wait, 0 not to) until the holder has changed and says who holds the lock
then. client-go holders ignore the request, and the wait then ends in an error.

RBAC: get, watch and patch on leases.`,
		Args: exactArgs(1, "one argument: the Lease's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usageError{"--to: name the candidate (its identity, or its Pod's name)"}
			}
			if wait < 0 {
				return usageError{fmt.Sprintf("--wait %v: must not be negative", wait)}
			}
			ns, leases, err := e.leases(false)
			if err != nil {
				return err
			}
			return handover(cmd.Context(), e, leases, ns, args[0], to, wait)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the candidate to hand over to: its identity, or its Pod's name")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the handover (0: do not wait)")
	return cmd
}

func handover(ctx context.Context, e *env, leases leaseClient, ns, name, to string, wait time.Duration) error {
	cur, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	holder := holderOf(cur)
	switch {
	case holder == "":
		return fmt.Errorf("lease %s/%s is free: there is no holder to hand over", ns, name)
	case holder == to || strings.HasPrefix(holder, to+"_"):
		return fmt.Errorf("lease %s/%s is already held by %s (%s): name another candidate", ns, name, to, holder)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{lock.HandoverToAnnotation: to}}})
	if err != nil {
		return err
	}
	asked := time.Now()
	if _, err := leases.Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("request the handover: %w", err)
	}
	fmt.Fprintf(e.out, "lease %s/%s: asked %s to hand over to %s\n", ns, name, holder, to)
	if wait == 0 {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	var next string
	err = follow(wctx, leases, ns, name, func(l *coordinationv1.Lease) (bool, error) {
		if l == nil {
			return false, fmt.Errorf("lease %s/%s was deleted", ns, name)
		}
		next = holderOf(l)
		return next != holder && next != "", nil
	})
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("lease %s/%s: %s has not handed over within %v (a client-go holder ignores requests; is the holder a regent process of this lock?)", ns, name, holder, wait)
	case err != nil:
		return err
	}
	took := time.Since(asked).Round(time.Millisecond)
	if next == to || strings.HasPrefix(next, to+"_") {
		fmt.Fprintf(e.out, "lease %s/%s: handed over to %s after %v\n", ns, name, next, took)
		return nil
	}
	return fmt.Errorf("lease %s/%s: %s gave the lock up after %v, but %s took it, not %s (is %s a candidate of this lock, answering to that name?)", ns, name, holder, took, next, to, to)
}

func holderOf(l *coordinationv1.Lease) string {
	if l == nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}
