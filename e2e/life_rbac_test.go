package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/regent-k8s/regent/e2e/controlplane"
)

// grantLifeRole binds user to the Role that docs/rbac.md gives for a ConfigMap leader-for-life
// lock, minus the rules named in without ("get", "list", "watch", "create", "delete" on
// configmaps, or "pods").
func grantLifeRole(t *testing.T, ns, user, lockName string, without ...string) {
	t.Helper()
	keep := func(verbs ...string) []string {
		return slices.DeleteFunc(verbs, func(v string) bool { return slices.Contains(without, v) })
	}
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: keep("create")},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{lockName}, Verbs: keep("get", "list", "watch", "delete")},
	}
	if !slices.Contains(without, "pods") {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get", "list", "watch"}})
	}
	rules = slices.DeleteFunc(rules, func(r rbacv1.PolicyRule) bool { return len(r.Verbs) == 0 })
	bind(t, ns, user, rules)
}

func bind(t *testing.T, ns, user string, rules []rbacv1.PolicyRule) {
	t.Helper()
	admin := cp.Client(controlplane.AdminUser)
	ctx := context.Background()
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: user}, Rules: rules}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := admin.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: user},
		Subjects:   []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: user}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The API server's authorizer learns of new bindings through a cache, a few milliseconds
	// later: wait until it grants every rule, so that a test of the rules does not race it.
	for _, r := range rules {
		for _, verb := range r.Verbs {
			attrs := &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: r.APIGroups[0], Resource: r.Resources[0]}
			if len(r.ResourceNames) > 0 {
				attrs.Name = r.ResourceNames[0]
			}
			err := wait.PollUntilContextTimeout(ctx, 20*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
				sar, err := admin.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
					Spec: authorizationv1.SubjectAccessReviewSpec{User: user, ResourceAttributes: attrs},
				}, metav1.CreateOptions{})
				return err == nil && sar.Status.Allowed, nil
			})
			if err != nil {
				t.Fatalf("the authorizer did not grant %s %s to %s: %v", verb, r.Resources[0], user, err)
			}
		}
	}
}

func TestLeaderForLifeRBAC(t *testing.T) {
	ns := namespace(t)
	ctx := context.Background()
	admin := cp.Client(controlplane.AdminUser)
	configMapKind := lifeKinds[0]

	t.Run("the documented role suffices", func(t *testing.T) {
		grantLifeRole(t, ns, "life-full", "full")
		a := newLifeCandidate(t, configMapKind, "life-full", newPod(t, ns, "full-a"), "full")
		b := newLifeCandidate(t, configMapKind, "life-full", newPod(t, ns, "full-b"), "full")
		aStarted, _ := a.leadInBackground(t, ctx)
		receiveT(t, aStarted, "a to lead")
		bStarted, _ := b.leadInBackground(t, ctx) // b watches the lock and a's pod
		quietly(t, bStarted, 500*time.Millisecond, "b led while a's pod runs")
		if err := admin.CoreV1().Pods(ns).Delete(ctx, "full-a", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		receiveT(t, bStarted, "b to lead")
	})

	tests := []struct {
		without, user, wantVerb, wantResource string
		heldByAnother                         bool
		try                                   bool // the verb is used by TryAcquire (get), not by waiting
	}{
		{without: "get", user: "life-no-get", wantVerb: "get", wantResource: "configmaps", try: true},
		{without: "list", user: "life-no-list", wantVerb: "list", wantResource: "configmaps"},
		{without: "watch", user: "life-no-watch", wantVerb: "watch", wantResource: "configmaps"},
		{without: "create", user: "life-no-create", wantVerb: "create", wantResource: "configmaps"},
		{without: "delete", user: "life-no-delete", wantVerb: "delete", wantResource: "configmaps"},
		{without: "pods", user: "life-no-pods", wantVerb: "watch", wantResource: "pods", heldByAnother: true},
	}
	for _, tt := range tests {
		t.Run("without "+tt.without, func(t *testing.T) {
			lockName := "lock-" + tt.without
			grantLifeRole(t, ns, tt.user, lockName, tt.without)
			if tt.heldByAnother {
				holder := newPod(t, ns, "holder-"+tt.without)
				yes := true
				_, err := admin.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
					Name:            lockName,
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: holder.Name, UID: holder.UID, Controller: &yes}},
				}}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
			}
			c := newLifeCandidate(t, configMapKind, tt.user, newPod(t, ns, "c-"+tt.without), lockName)
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			// Without delete the term is taken and the work runs; the release is refused.
			var err error
			if tt.try {
				_, err = c.election.Lock().TryAcquire(wctx)
			} else {
				err = c.election.RunAsLeader(wctx, func(context.Context) error { return nil })
			}
			if !apierrors.IsForbidden(err) {
				t.Fatalf("RunAsLeader = %v, want Forbidden", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "cannot "+tt.wantVerb+` resource "`+tt.wantResource+`"`) {
				t.Errorf("error %q does not name %s on %s", msg, tt.wantVerb, tt.wantResource)
			}
			t.Logf("without %s: %v", tt.without, err)
		})
	}
}
