package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/lock"
)

func newReleaseCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "release LEASE",
		Short: "Free a Lease lock whose holder is gone",
		Long: `Free a Lease lock whose holder is gone, as its candidates would judge it: the command watches
the Lease for the record's duration, and frees it only if the holder renewed nothing meanwhile.
A holder that renews is alive, and the command refuses. The write is a compare-and-swap on the
version it watched, so a record that changed meanwhile is never overwritten.

--force frees a held record at once. The holder keeps working until its next renewal fails (a
RetryPeriod at most) and then stops; regent's candidates treat a record freed by someone else
as held until it would have expired, so they do not overlap it, but client-go's candidates take
a freed record at once. Use it only when the holder is known to be gone.

RBAC: get, list, watch and update on leases.`,
		Args: exactArgs(1, "one argument: the Lease's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, leases, err := e.leases(false)
			if err != nil {
				return err
			}
			return release(cmd.Context(), e, leases, ns, args[0], force)
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "free the lock at once, even if its holder is alive")
	return cmd
}

func release(ctx context.Context, e *env, leases leaseClient, ns, name string, force bool) error {
	cur, err := leases.Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	holder := holderOf(cur)
	if holder == "" {
		fmt.Fprintf(e.out, "lease %s/%s is free already\n", ns, name)
		return nil
	}
	if !force {
		d := time.Duration(duration32(cur)) * time.Second
		fmt.Fprintf(e.out, "lease %s/%s is held by %s; watching for %v for a renewal...\n", ns, name, holder, d)
		if cur, err = awaitExpiry(ctx, leases, cur, d); err != nil {
			return fmt.Errorf("lease %s/%s: %w", ns, name, err)
		}
	}
	freed := cur.DeepCopy()
	now := metav1.NewMicroTime(time.Now())
	empty, one := "", int32(1)
	freed.Spec.HolderIdentity, freed.Spec.LeaseDurationSeconds = &empty, &one
	freed.Spec.AcquireTime, freed.Spec.RenewTime = &now, &now
	delete(freed.Annotations, lock.HandoverToAnnotation)
	delete(freed.Annotations, lock.HandoverOfAnnotation)
	if _, err := leases.Update(ctx, freed, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsConflict(err) {
			return fmt.Errorf("lease %s/%s changed while being freed; nothing was written (run the command again)", ns, name)
		}
		return err
	}
	if force {
		fmt.Fprintf(e.out, "lease %s/%s freed (forced; %s was its holder)\n", ns, name, holder)
	} else {
		fmt.Fprintf(e.out, "lease %s/%s freed: %s renewed nothing for the record's duration\n", ns, name, holder)
	}
	return nil
}

// awaitExpiry follows the Lease for d from now and returns it as it was if its record did not
// change meanwhile; an error if it changed (the holder is alive) or was deleted.
func awaitExpiry(ctx context.Context, leases leaseClient, seen *coordinationv1.Lease, d time.Duration) (*coordinationv1.Lease, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var changed error
	err := follow(wctx, leases, seen.Namespace, seen.Name, func(l *coordinationv1.Lease) (bool, error) {
		switch {
		case l == nil:
			changed = errors.New("the lease was deleted meanwhile")
		case l.UID != seen.UID:
			changed = errors.New("the lease was deleted and created again meanwhile")
		case holderOf(l) != holderOf(seen):
			changed = fmt.Errorf("its holder changed to %q meanwhile; nothing was written", holderOf(l))
		case !equality.Semantic.DeepEqual(l.Spec, seen.Spec):
			changed = fmt.Errorf("%s renewed it: the holder is alive, so it was not freed (--force frees it anyway)", holderOf(l))
		default:
			seen = l // another field changed; the record did not
			return false, nil
		}
		return true, nil
	})
	switch {
	case changed != nil:
		return nil, changed
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return seen, nil
	case err != nil:
		return nil, err
	}
	return seen, nil
}
