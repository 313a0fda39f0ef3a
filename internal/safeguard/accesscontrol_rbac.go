package safeguard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	rbacregistryvalidation "k8s.io/kubernetes/pkg/registry/rbac/validation"
	rbacauthorizer "k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac"
)

// RBAC is judged with the apiserver's own code, imported from
// k8s.io/kubernetes: rbacregistryvalidation.DefaultRuleResolver finds the
// rules that apply to a user in a namespace and names the binding each comes
// from (VisitRulesFor), rbacauthorizer.RuleAllows is the RBAC authorizer's
// matcher, and rbacauthorizer.SubjectAccessEvaluator lists who a request is
// allowed to. They read the objects below through rbacIndex, in memory, as
// the apiserver reads its informers.

// RBACObjects are the RBAC objects that decide what a namespace's
// ServiceAccounts may do and who may reach into its pods.
type RBACObjects struct {
	// Roles are the Roles of the namespaces of RoleBindings.
	Roles []rbacv1.Role
	// RoleBindings are every RoleBinding of the namespace, and those of other
	// namespaces that name one of its ServiceAccounts, directly or through a
	// group each of them belongs to (see saGroups).
	RoleBindings []rbacv1.RoleBinding
	// ClusterRoles are every ClusterRole.
	ClusterRoles []rbacv1.ClusterRole
	// ClusterRoleBindings are every ClusterRoleBinding.
	ClusterRoleBindings []rbacv1.ClusterRoleBinding
}

// rbacIndex serves RBACObjects to the apiserver's resolver and subject
// locator (their RoleGetter, RoleBindingLister, ClusterRoleGetter and
// ClusterRoleBindingLister).
type rbacIndex struct {
	roles               map[string]map[string]*rbacv1.Role
	roleBindings        map[string][]*rbacv1.RoleBinding
	clusterRoles        map[string]*rbacv1.ClusterRole
	clusterRoleBindings []*rbacv1.ClusterRoleBinding
}

func newRBACIndex(o *RBACObjects) *rbacIndex {
	x := &rbacIndex{roles: map[string]map[string]*rbacv1.Role{}, roleBindings: map[string][]*rbacv1.RoleBinding{},
		clusterRoles: map[string]*rbacv1.ClusterRole{}}
	for i := range o.Roles {
		r := &o.Roles[i]
		if x.roles[r.Namespace] == nil {
			x.roles[r.Namespace] = map[string]*rbacv1.Role{}
		}
		x.roles[r.Namespace][r.Name] = r
	}
	for i := range o.RoleBindings {
		x.roleBindings[o.RoleBindings[i].Namespace] = append(x.roleBindings[o.RoleBindings[i].Namespace], &o.RoleBindings[i])
	}
	for i := range o.ClusterRoles {
		x.clusterRoles[o.ClusterRoles[i].Name] = &o.ClusterRoles[i]
	}
	for i := range o.ClusterRoleBindings {
		x.clusterRoleBindings = append(x.clusterRoleBindings, &o.ClusterRoleBindings[i])
	}
	return x
}

func (x *rbacIndex) GetRole(_ context.Context, namespace, name string) (*rbacv1.Role, error) {
	if r := x.roles[namespace][name]; r != nil {
		return r, nil
	}
	return nil, apierrors.NewNotFound(rbacv1.Resource("roles"), name) //nolint:wrapcheck // a new NotFound, as the apiserver's listers return; nothing to wrap
}

func (x *rbacIndex) ListRoleBindings(_ context.Context, namespace string) ([]*rbacv1.RoleBinding, error) {
	return x.roleBindings[namespace], nil
}

func (x *rbacIndex) GetClusterRole(_ context.Context, name string) (*rbacv1.ClusterRole, error) {
	if r := x.clusterRoles[name]; r != nil {
		return r, nil
	}
	return nil, apierrors.NewNotFound(rbacv1.Resource("clusterroles"), name) //nolint:wrapcheck // a new NotFound, as the apiserver's listers return; nothing to wrap
}

func (x *rbacIndex) ListClusterRoleBindings(context.Context) ([]*rbacv1.ClusterRoleBinding, error) {
	return x.clusterRoleBindings, nil
}

// noClusterRoleBindings hides the ClusterRoleBindings from the resolver that
// visits each namespace's RoleBindings: their rules are visited once, apart.
type noClusterRoleBindings struct{}

func (noClusterRoleBindings) ListClusterRoleBindings(context.Context) ([]*rbacv1.ClusterRoleBinding, error) {
	return nil, nil
}

// saUser is the user a ServiceAccount's token authenticates as: its name, its
// groups, and system:authenticated, which the authenticator adds to everyone.
func saUser(namespace, name string) user.Info {
	u := serviceaccount.UserInfo(namespace, name, "")
	return &user.DefaultInfo{Name: u.GetName(), Groups: append(u.GetGroups(), user.AllAuthenticated)}
}

// saGroups are the groups every ServiceAccount of a namespace belongs to.
func saGroups(namespace string) []string {
	return append(serviceaccount.MakeGroupNames(namespace), user.AllAuthenticated)
}

// namesNamespaceSA says whether a binding's subject can be a ServiceAccount
// of namespace: the ServiceAccount itself (a subject without a namespace is
// one of the binding's), or a group each ServiceAccount of it belongs to.
func namesNamespaceSA(s rbacv1.Subject, bindingNamespace, namespace string) bool {
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		return cmp.Or(s.Namespace, bindingNamespace) == namespace
	case rbacv1.GroupKind:
		return slices.Contains(saGroups(namespace), s.Name)
	}
	return false
}

// privilegeCheck is one grant a workload's identity must not hold: a rule
// grants it when the RBAC authorizer's matcher allows one of the requests.
type privilegeCheck struct {
	what     string
	requests []authorizer.AttributesRecord
	// outsideOnly: only a grant outside the ServiceAccount's own namespace counts.
	outsideOnly bool
}

func resourceRequests(verb, group string, resources ...string) []authorizer.AttributesRecord {
	out := make([]authorizer.AttributesRecord, 0, len(resources))
	for _, r := range resources {
		resource, sub, _ := strings.Cut(r, "/")
		out = append(out, authorizer.AttributesRecord{Verb: verb, APIGroup: group, Resource: resource, Subresource: sub, ResourceRequest: true})
	}
	return out
}

var privilegeChecks = []privilegeCheck{
	{what: "get Secrets", requests: resourceRequests("get", "", "secrets"), outsideOnly: true},
	{what: "list Secrets", requests: resourceRequests("list", "", "secrets"), outsideOnly: true},
	{what: "watch Secrets", requests: resourceRequests("watch", "", "secrets"), outsideOnly: true},
	{what: "escalate", requests: resourceRequests("escalate", rbacv1.GroupName, "roles", "clusterroles")},
	{what: "bind", requests: resourceRequests("bind", rbacv1.GroupName, "roles", "clusterroles")},
	{what: "impersonate", requests: append(resourceRequests("impersonate", "", "users", "groups", "serviceaccounts"),
		resourceRequests("impersonate", "authentication.k8s.io", "uids", "userextras/scopes")...)},
	{what: "create pods/exec", requests: resourceRequests("create", "", "pods/exec")},
}

// RuleProblems says what a rule grants that a workload's identity must not
// hold: a wildcard verb or resource, Secrets read outside its own namespace
// (outside: the rule comes from a ClusterRoleBinding or another namespace's
// RoleBinding), escalate, bind, impersonate, or create pods/exec. Nil when
// none.
func RuleProblems(rule *rbacv1.PolicyRule, outside bool) []string {
	var out []string
	if slices.Contains(rule.Verbs, rbacv1.VerbAll) {
		out = append(out, "a wildcard verb")
	}
	if slices.ContainsFunc(rule.Resources, func(r string) bool { return strings.HasPrefix(r, rbacv1.ResourceAll) }) {
		out = append(out, "a wildcard resource")
	}
	for _, c := range privilegeChecks {
		if c.outsideOnly && !outside {
			continue
		}
		// A rule limited to resourceNames grants those objects: ask for each.
		if slices.ContainsFunc(c.requests, func(a authorizer.AttributesRecord) bool {
			for _, name := range append([]string{""}, rule.ResourceNames...) {
				if a.Name = name; rbacauthorizer.RuleAllows(a, rule) {
					return true
				}
			}
			return false
		}) {
			out = append(out, c.what)
		}
	}
	return out
}

// describeRule writes a rule as "verbs=[get list] apiGroups=[""] resources=[secrets]",
// leaving out what it does not set.
func describeRule(r *rbacv1.PolicyRule) string {
	parts := []string{fmt.Sprintf("verbs=%v", r.Verbs)}
	if len(r.APIGroups) > 0 {
		parts = append(parts, fmt.Sprintf("apiGroups=%q", r.APIGroups))
	}
	if len(r.Resources) > 0 {
		parts = append(parts, fmt.Sprintf("resources=%v", r.Resources))
	}
	if len(r.ResourceNames) > 0 {
		parts = append(parts, fmt.Sprintf("resourceNames=%v", r.ResourceNames))
	}
	if len(r.NonResourceURLs) > 0 {
		parts = append(parts, fmt.Sprintf("nonResourceURLs=%v", r.NonResourceURLs))
	}
	return strings.Join(parts, " ")
}

// ExcessivePrivileges resolves, as the apiserver does, every rule that
// applies to a ServiceAccount (through ClusterRoleBindings and the
// RoleBindings of every namespace in o, naming it directly or through its
// groups) and returns one line per rule that grants too much (RuleProblems):
// `ClusterRoleBinding "x" of ClusterRole "y" to Group "system:serviceaccounts":
// verbs=[*] resources=[secrets] (a wildcard verb, get Secrets, ...)`. A
// binding whose role does not exist grants nothing, as in the apiserver.
func ExcessivePrivileges(ctx context.Context, o *RBACObjects, namespace, name string) []string {
	x := newRBACIndex(o)
	u := saUser(namespace, name)
	var out []string
	visit := func(outside bool) func(fmt.Stringer, *rbacv1.PolicyRule, error) bool {
		return func(source fmt.Stringer, rule *rbacv1.PolicyRule, _ error) bool {
			if rule == nil {
				return true // a missing role: it grants nothing
			}
			if problems := RuleProblems(rule, outside); len(problems) > 0 {
				line := fmt.Sprintf("%s: %s (%s)", source, describeRule(rule), strings.Join(problems, ", "))
				if !slices.Contains(out, line) {
					out = append(out, line)
				}
			}
			return true
		}
	}
	// With no namespace the resolver visits the ClusterRoleBindings alone:
	// their rules hold in every namespace.
	rbacregistryvalidation.NewDefaultRuleResolver(x, x, x, x).VisitRulesFor(ctx, u, "", visit(true))
	namespaced := rbacregistryvalidation.NewDefaultRuleResolver(x, x, x, noClusterRoleBindings{})
	for _, ns := range sortedKeys(x.roleBindings) {
		namespaced.VisitRulesFor(ctx, u, ns, visit(ns != namespace))
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// reachRequests are the requests that reach inside a pod: a shell, its
// console, its ports, a debugging container.
var reachRequests = append(resourceRequests("create", "", "pods/exec", "pods/attach", "pods/portforward"),
	resourceRequests("update", "", "pods/ephemeralcontainers")...)

// ReachInside lists the subjects RBAC allows to exec into, attach to,
// port-forward to or add ephemeral containers to pods of namespace, sorted:
// "Group system:masters", "User alice", "ServiceAccount ns/name". It is the
// apiserver's subject locator over every ClusterRoleBinding and every
// RoleBinding of the namespace; system:masters is always there.
func ReachInside(ctx context.Context, o *RBACObjects, namespace string) []string {
	x := newRBACIndex(o)
	locator := rbacauthorizer.NewSubjectAccessEvaluator(x, x, x, x, "")
	var out []string
	for _, req := range reachRequests {
		req.Namespace = namespace
		subjects, _ := locator.AllowedSubjects(ctx, req) // an error is a missing role: it grants nothing
		for _, s := range subjects {
			name := s.Kind + " " + s.Name
			if s.Kind == rbacv1.ServiceAccountKind {
				name = s.Kind + " " + cmp.Or(s.Namespace, namespace) + "/" + s.Name
			}
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}
