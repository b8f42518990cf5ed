package onnode

import (
	"context"
	"fmt"
	"slices"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// probeResources are what the examples might touch, and a few things they must not.
var probeResources = []struct{ group, resource string }{
	{"coordination.k8s.io", "leases"}, {"", "configmaps"}, {"", "pods"}, {"", "pods/eviction"},
	{"regent.dev", "leaderlocks"}, {"", "nodes"}, {"", "secrets"}, {"", "events"}, {"apps", "deployments"},
}

var probeVerbs = []string{"get", "list", "watch", "create", "update", "patch", "delete"}

// checkRBAC checks item 6 for one example deployed in ns: its Pods run under the ServiceAccount
// its manifests name (not the namespace's default), and that ServiceAccount may do exactly what
// the manifests' Roles grant it: every verb on every probed resource, in the namespace and in
// another, for the collection and for each name the Roles list, is allowed if and only if a
// rule of a Role bound to it allows it.
func checkRBAC(t *testing.T, ns string, ex example) {
	t.Helper()
	ctx := context.Background()
	d, err := admin().AppsV1().Deployments(ns).Get(ctx, ex.deployment, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sa := d.Spec.Template.Spec.ServiceAccountName
	if sa == "" || sa == "default" {
		t.Errorf("%s: the Deployment runs under the namespace's default ServiceAccount", ex.name)
		return
	}
	pods, err := admin().CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.ServiceAccountName != sa {
			t.Errorf("%s: pod %s runs as %q, want %q", ex.name, p.Name, p.Spec.ServiceAccountName, sa)
		}
	}
	var rules []rbacv1.PolicyRule
	bindings, err := admin().RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	names := []string{""}
	for _, b := range bindings.Items {
		if !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return s.Kind == "ServiceAccount" && s.Name == sa }) {
			continue
		}
		role, err := admin().RbacV1().Roles(ns).Get(ctx, b.RoleRef.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: role %s: %v", ex.name, b.RoleRef.Name, err)
		}
		rules = append(rules, role.Rules...)
		for _, r := range role.Rules {
			names = append(names, r.ResourceNames...)
		}
	}
	if len(rules) == 0 {
		t.Errorf("%s: no Role is bound to %s", ex.name, sa)
	}
	user := fmt.Sprintf("system:serviceaccount:%s:%s", ns, sa)
	checked, mismatched := 0, 0
	for _, inNS := range []string{ns, "default"} {
		for _, pr := range probeResources {
			group, resource, sub := pr.group, pr.resource, ""
			if r, s, ok := cutSub(resource); ok {
				resource, sub = r, s
			}
			for _, verb := range probeVerbs {
				for _, name := range names {
					want := inNS == ns && granted(rules, group, pr.resource, verb, name)
					sar, err := admin().AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
						Spec: authorizationv1.SubjectAccessReviewSpec{User: user, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
							ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: inNS, Verb: verb, Group: group, Resource: resource, Subresource: sub, Name: name}},
					}, metav1.CreateOptions{})
					if err != nil {
						t.Fatal(err)
					}
					checked++
					if sar.Status.Allowed != want {
						mismatched++
						t.Errorf("%s: %s may %s %s %q in %s: %v, but its Roles say %v", ex.name, sa, verb, pr.resource, name, inNS, sar.Status.Allowed, want)
					}
				}
			}
		}
	}
	t.Logf("%s: runs as %s; %d access checks match its Roles (%d do not)", ex.name, sa, checked, mismatched)
}

func cutSub(resource string) (string, string, bool) {
	for i := range resource {
		if resource[i] == '/' {
			return resource[:i], resource[i+1:], true
		}
	}
	return resource, "", false
}

// granted reports whether a rule allows verb on group/resource (with its subresource, if any)
// named name ("" for the collection).
func granted(rules []rbacv1.PolicyRule, group, resource, verb, name string) bool {
	for _, r := range rules {
		if (slices.Contains(r.APIGroups, group) || slices.Contains(r.APIGroups, "*")) &&
			(slices.Contains(r.Resources, resource) || slices.Contains(r.Resources, "*")) &&
			(slices.Contains(r.Verbs, verb) || slices.Contains(r.Verbs, "*")) &&
			(len(r.ResourceNames) == 0 || (name != "" && slices.Contains(r.ResourceNames, name))) {
			return true
		}
	}
	return false
}
