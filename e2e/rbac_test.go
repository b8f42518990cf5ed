package e2e

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/regent-k8s/regent/e2e/controlplane"
	"github.com/regent-k8s/regent/lock"
)

// grantLeaseRole binds user to the Role that docs/rbac.md gives for a Lease lock, minus the verbs
// in without: create unrestricted, get, list, watch and update on the lock's name only.
func grantLeaseRole(t *testing.T, ns, user, lockName string, without ...string) {
	t.Helper()
	keep := func(verbs ...string) []string {
		return slices.DeleteFunc(verbs, func(v string) bool { return slices.Contains(without, v) })
	}
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: keep("create")},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, ResourceNames: []string{lockName}, Verbs: keep("get", "list", "watch", "update")},
	}
	rules = slices.DeleteFunc(rules, func(r rbacv1.PolicyRule) bool { return len(r.Verbs) == 0 })
	bind(t, ns, user, rules)
}

// 7. RBAC: the documented Role suffices, and each verb taken away gives a Forbidden error that
// names the verb and the resource, promptly.
func TestRBAC(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()

	t.Run("the documented role suffices", func(t *testing.T) {
		grantLeaseRole(t, ns, "lease-full", "full")
		a := newCandidate(t, "lease-full", ns, "full", "a", fast)
		b := newCandidate(t, "lease-full", ns, "full", "b", fast)
		la, err := a.election.Lead(ctx) // creates the Lease
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- b.election.RunAsLeader(ctx, func(context.Context) error { return nil }) }()
		quietly(t, done, time.Second, "b finished while a led") // b gets, watches and waits
		if err := la.Release(ctx); err != nil {                 // a renews and releases: update
			t.Fatal(err)
		}
		if err := receiveT(t, done, "b to lead"); err != nil {
			t.Fatal(err)
		}
	})

	tests := []struct {
		user, verb  string
		leaseExists bool // update is only needed, and create only tried, as the Lease's state requires
		try         bool // the verb is used by TryAcquire (get), not by waiting
	}{
		{user: "lease-no-get", verb: "get", try: true},
		{user: "lease-no-list", verb: "list"},
		{user: "lease-no-watch", verb: "watch"},
		{user: "lease-no-create", verb: "create"},
		{user: "lease-no-update", verb: "update", leaseExists: true},
	}
	for _, tt := range tests {
		t.Run("without "+tt.verb, func(t *testing.T) {
			lockName := "lock-" + tt.verb
			grantLeaseRole(t, ns, tt.user, lockName, tt.verb)
			if tt.leaseExists {
				_, err := cp.Client(controlplane.AdminUser).CoordinationV1().Leases(ns).Create(ctx,
					&coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lockName}}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
			}
			c := newCandidate(t, tt.user, ns, lockName, "x", fast)
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var err error
			if tt.try {
				_, err = c.lease.TryAcquire(wctx)
			} else {
				err = c.election.RunAsLeader(wctx, func(context.Context) error { return nil })
			}
			var apiErr *lock.APIError
			if !apierrors.IsForbidden(err) || !errors.As(err, &apiErr) || apiErr.Op != tt.verb {
				t.Fatalf("RunAsLeader = %v, want a Forbidden APIError on %s", err, tt.verb)
			}
			if msg := err.Error(); !strings.Contains(msg, "cannot "+tt.verb) || !strings.Contains(msg, `"leases"`) {
				t.Errorf("error %q does not name the verb %q and the resource", msg, tt.verb)
			}
			t.Logf("without %s: %v", tt.verb, err)
		})
	}
}
