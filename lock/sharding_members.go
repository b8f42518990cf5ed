package lock

import (
	"context"
	"slices"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Membership Leases are named after their member's identity, which is new in every process (a
// random suffix), so each process that ever joined would leave one behind. They are deleted:
//   - by their member when it leaves, once it has released the membership;
//   - by the live member with the smallest identity, for a membership Lease that is free (its
//     member left, its own delete failed) or has expired as observed here (its member crashed
//     or was cut off: it stops counting as live at that moment anyway).
//
// Every delete carries the observed UID and resourceVersion as preconditions, so a membership
// renewed or taken meanwhile is never deleted. A membership Lease guards no work: a member cut
// off past its Lease whose membership was deleted finds it gone at its next renewal, as after
// any deletion, and joins again.

// memberRef names one observed version of a membership Lease.
type memberRef struct {
	name string
	uid  types.UID
	rv   string
}

// deleteMembership deletes the membership Lease ref if it is still the version observed.
func (s *Sharding) deleteMembership(ctx context.Context, ref memberRef, why string) {
	ctx, cancel := context.WithTimeout(ctx, s.o.timings.RenewDeadline)
	defer cancel()
	err := s.leases.Delete(ctx, ref.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &ref.uid, ResourceVersion: &ref.rv}})
	switch {
	case err == nil:
		s.o.log.Info("deleted a membership lease", zap.String("lease", ref.name), zap.String("why", why))
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Deleted by someone else, or renewed meanwhile: nothing to do.
	default:
		s.o.log.Info("could not delete a membership lease", zap.String("lease", ref.name), zap.Error(err))
	}
}

// leaveMembership deletes this member's own membership Lease after it was released.
func (s *Sharding) leaveMembership(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.o.timings.RenewDeadline)
	defer cancel()
	cur, err := s.leases.Get(ctx, s.member.name, metav1.GetOptions{})
	if err != nil || recordOf(cur).holder != "" {
		return // gone already, or someone (this identity again) holds it
	}
	s.deleteMembership(ctx, memberRef{name: cur.Name, uid: cur.UID, rv: cur.ResourceVersion}, "this member left")
}

// collectMembers deletes the free and expired membership Leases this member observes, if it is
// the live member with the smallest identity (live is sorted). Each version is tried once.
func (r *shardingRun) collectMembers(ctx context.Context, live []string) {
	if len(live) == 0 || live[0] != r.s.o.identity || ctx.Err() != nil {
		return
	}
	now := r.clock.Now()
	var stale []string
	for name, m := range r.members {
		free := m.record.holder == ""
		if (free || !m.liveUntil(r.s.o.timings.LeaseDuration).After(now)) && !m.collected {
			stale = append(stale, name)
		}
	}
	slices.Sort(stale)
	for _, name := range stale {
		m := r.members[name]
		m.collected = true
		r.members[name] = m
		why := "its member left"
		if m.record.holder != "" {
			why = "it expired: its member stopped renewing"
		}
		r.s.deleteMembership(ctx, m.ref, why)
	}
}

// memberRefOf names the observed version of a membership Lease.
func memberRefOf(obj *coordinationv1.Lease) memberRef {
	return memberRef{name: obj.Name, uid: obj.UID, rv: obj.ResourceVersion}
}
