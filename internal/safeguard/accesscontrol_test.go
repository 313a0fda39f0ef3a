package safeguard

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func rule(verbs, groups, resources []string, names ...string) rbacv1.PolicyRule {
	return rbacv1.PolicyRule{Verbs: verbs, APIGroups: groups, Resources: resources, ResourceNames: names}
}

func list(s ...string) []string { return s }

func TestRuleProblems(t *testing.T) {
	core, rbacGroup := list(""), list(rbacv1.GroupName)
	for _, tc := range []struct {
		name    string
		rule    rbacv1.PolicyRule
		outside bool
		want    []string
	}{
		{name: "reading config maps", rule: rule(list("get", "list", "watch"), core, list("configmaps")), outside: true},
		{name: "a wildcard verb", rule: rule(list("*"), core, list("configmaps")), want: list("a wildcard verb")},
		{name: "a wildcard resource", rule: rule(list("get"), list("apps"), list("*")), want: list("a wildcard resource")},
		{name: "every resource's scale", rule: rule(list("update"), list("apps"), list("*/scale")), want: list("a wildcard resource")},
		{name: "Secrets in its own namespace", rule: rule(list("get", "list", "watch"), core, list("secrets"))},
		{name: "Secrets outside", rule: rule(list("get", "watch"), core, list("secrets")), outside: true,
			want: list("get Secrets", "watch Secrets")},
		{name: "a named Secret outside", rule: rule(list("get"), core, list("secrets"), "db-password"), outside: true,
			want: list("get Secrets")},
		{name: "everything, outside", rule: rule(list("*"), list("*"), list("*")), outside: true,
			want: list("a wildcard verb", "a wildcard resource", "get Secrets", "list Secrets", "watch Secrets",
				"escalate", "bind", "impersonate", "create pods/exec")},
		{name: "escalate", rule: rule(list("escalate"), rbacGroup, list("clusterroles")), want: list("escalate")},
		{name: "bind", rule: rule(list("bind"), rbacGroup, list("roles")), want: list("bind")},
		{name: "escalate in another group", rule: rule(list("escalate"), list("example.com"), list("roles"))},
		{name: "impersonate users", rule: rule(list("impersonate"), core, list("users")), want: list("impersonate")},
		{name: "impersonate service accounts", rule: rule(list("impersonate"), core, list("serviceaccounts")), want: list("impersonate")},
		{name: "impersonate uids", rule: rule(list("impersonate"), list("authentication.k8s.io"), list("uids")), want: list("impersonate")},
		{name: "create pods/exec", rule: rule(list("create"), core, list("pods/exec")), want: list("create pods/exec")},
		{name: "get pods/exec", rule: rule(list("get"), core, list("pods/exec"))},
		{name: "create pods", rule: rule(list("create"), core, list("pods"))},
		{name: "non-resource URLs", rule: rbacv1.PolicyRule{Verbs: list("get"), NonResourceURLs: list("/healthz")}, outside: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(RuleProblems(&tc.rule, tc.outside)).To(Equal(tc.want))
		})
	}
}

// clinicRBAC has a binding of every kind that applies, or not, to
// ServiceAccount clinic/records.
func clinicRBAC() RBACObjects {
	sa := func(ns, name string) rbacv1.Subject {
		return rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: name}
	}
	group := func(name string) rbacv1.Subject { return rbacv1.Subject{Kind: rbacv1.GroupKind, Name: name} }
	ref := func(kind, name string) rbacv1.RoleRef {
		return rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: kind, Name: name}
	}
	return RBACObjects{
		Roles: []rbacv1.Role{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "secrets"}, Rules: []rbacv1.PolicyRule{rule(list("get"), list(""), list("secrets"))}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "all"}, Rules: []rbacv1.PolicyRule{rule(list("*"), list(""), list("configmaps"))}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "secrets"}, Rules: []rbacv1.PolicyRule{rule(list("list"), list(""), list("secrets"))}},
		},
		RoleBindings: []rbacv1.RoleBinding{
			// Secrets of its own namespace: allowed.
			{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "own-secrets"}, RoleRef: ref("Role", "secrets"),
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "records"}}},
			// A wildcard verb, to another ServiceAccount: not records'.
			{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "reports-all"}, RoleRef: ref("Role", "all"),
				Subjects: []rbacv1.Subject{sa("clinic", "reports")}},
			// A role that does not exist grants nothing.
			{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "dangling"}, RoleRef: ref("Role", "gone"),
				Subjects: []rbacv1.Subject{sa("clinic", "records")}},
			// Another namespace's Secrets, through the namespace's group.
			{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "clinic-reads-billing"}, RoleRef: ref("Role", "secrets"),
				Subjects: []rbacv1.Subject{group("system:serviceaccounts:clinic")}},
		},
		ClusterRoles: []rbacv1.ClusterRole{
			{ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"}, Rules: []rbacv1.PolicyRule{rule(list("get", "list", "watch"), list(""), list("secrets"))}},
			{ObjectMeta: metav1.ObjectMeta{Name: "debugger"}, Rules: []rbacv1.PolicyRule{
				rule(list("create"), list(""), list("pods/exec", "pods/attach")),
				rule(list("update"), list(""), list("pods/ephemeralcontainers"))}},
			{ObjectMeta: metav1.ObjectMeta{Name: "impersonator"}, Rules: []rbacv1.PolicyRule{rule(list("impersonate"), list(""), list("users", "groups"))}},
		},
		ClusterRoleBindings: []rbacv1.ClusterRoleBinding{
			{ObjectMeta: metav1.ObjectMeta{Name: "authenticated-read-secrets"}, RoleRef: ref("ClusterRole", "secret-reader"),
				Subjects: []rbacv1.Subject{group("system:authenticated")}},
			{ObjectMeta: metav1.ObjectMeta{Name: "oncall-debug"}, RoleRef: ref("ClusterRole", "debugger"),
				Subjects: []rbacv1.Subject{group("oncall"), {Kind: rbacv1.UserKind, Name: "alice"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "reports-impersonate"}, RoleRef: ref("ClusterRole", "impersonator"),
				Subjects: []rbacv1.Subject{sa("clinic", "reports")}},
		},
	}
}

func TestExcessivePrivileges(t *testing.T) {
	g := NewWithT(t)
	o := clinicRBAC()
	g.Expect(ExcessivePrivileges(t.Context(), &o, "clinic", "records")).To(Equal([]string{
		`ClusterRoleBinding "authenticated-read-secrets" of ClusterRole "secret-reader" to Group "system:authenticated": ` +
			`verbs=[get list watch] apiGroups=[""] resources=[secrets] (get Secrets, list Secrets, watch Secrets)`,
		`RoleBinding "clinic-reads-billing/billing" of Role "secrets" to Group "system:serviceaccounts:clinic": ` +
			`verbs=[list] apiGroups=[""] resources=[secrets] (list Secrets)`,
	}))
	g.Expect(ExcessivePrivileges(t.Context(), &o, "clinic", "reports")).To(Equal([]string{
		`ClusterRoleBinding "authenticated-read-secrets" of ClusterRole "secret-reader" to Group "system:authenticated": ` +
			`verbs=[get list watch] apiGroups=[""] resources=[secrets] (get Secrets, list Secrets, watch Secrets)`,
		`ClusterRoleBinding "reports-impersonate" of ClusterRole "impersonator" to ServiceAccount "reports/clinic": ` +
			`verbs=[impersonate] apiGroups=[""] resources=[users groups] (impersonate)`,
		`RoleBinding "clinic-reads-billing/billing" of Role "secrets" to Group "system:serviceaccounts:clinic": ` +
			`verbs=[list] apiGroups=[""] resources=[secrets] (list Secrets)`,
		`RoleBinding "reports-all/clinic" of Role "all" to ServiceAccount "reports/clinic": ` +
			`verbs=[*] apiGroups=[""] resources=[configmaps] (a wildcard verb)`,
	}))

	o.ClusterRoleBindings = o.ClusterRoleBindings[1:]
	o.RoleBindings = o.RoleBindings[:3]
	g.Expect(ExcessivePrivileges(t.Context(), &o, "clinic", "records")).To(BeEmpty(),
		"the Secrets of its own namespace and a binding to a missing role grant nothing excessive")
	g.Expect(ExcessivePrivileges(t.Context(), &o, "billing", "records")).To(BeEmpty(), "another namespace's records")
}

func TestReachInside(t *testing.T) {
	o := clinicRBAC()
	o.Roles = append(o.Roles, rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "port-forward"},
		Rules: []rbacv1.PolicyRule{rule(list("create"), list(""), list("pods/portforward"))}})
	o.RoleBindings = append(o.RoleBindings,
		rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "tunnel"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "port-forward"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "tunnel"}, {Kind: rbacv1.UserKind, Name: "bob"}}},
		// A Role of the same name elsewhere reaches that namespace only.
		rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "tunnel"},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "debugger"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "carol"}}})
	NewWithT(t).Expect(ReachInside(t.Context(), &o, "clinic")).To(Equal([]string{
		"Group oncall", "Group system:masters", "ServiceAccount clinic/tunnel", "User alice", "User bob"}))
}

// accessPod is a pod of clinic selected by the workload (app=records),
// running as sa, with the token not mounted.
func accessPod(name, sa string, mutate func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name, Labels: map[string]string{"app": "records"}},
		Spec: corev1.PodSpec{ServiceAccountName: sa, AutomountServiceAccountToken: ptr.To(false),
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}}}
	if mutate != nil {
		mutate(&p)
	}
	return p
}

// recordsServiceAccount is the ServiceAccount records of the clinic namespace.
func recordsServiceAccount(automount *bool) corev1.ServiceAccount {
	return corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records"}, AutomountServiceAccountToken: automount}
}

func TestAccessFindings(t *testing.T) {
	tokenVolume := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}}}}}}}
	}
	mountsToken := func(p *corev1.Pod) {
		tokenVolume(p)
		p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access-x", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}}
	}
	records := recordsServiceAccount(nil)
	for _, tc := range []struct {
		name   string
		in     AccessInputs
		want   map[string][]string
		reason string
	}{
		{name: "a dedicated ServiceAccount, no token", reason: phiguardv1alpha1.ReasonLeastPrivilege, want: map[string][]string{},
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "records", nil), accessPod("records-1", "records", nil)},
				NamespacePods:   []corev1.Pod{accessPod("records-0", "records", nil), accessPod("records-1", "records", nil), accessPod("batch-0", "batch", nil)},
				ServiceAccounts: []corev1.ServiceAccount{records}}},
		{name: "the default ServiceAccount, which does not exist", reason: phiguardv1alpha1.ReasonServiceAccountMissing,
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "", nil)}},
			want: map[string][]string{
				phiguardv1alpha1.ReasonServiceAccountMissing: {"ServiceAccount default (pods records-0) does not exist"},
				phiguardv1alpha1.ReasonDefaultServiceAccount: {"ServiceAccount default (pods records-0) is the namespace's default"},
			}},
		{name: "shared with a pod outside the workload", reason: phiguardv1alpha1.ReasonSharedServiceAccount,
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "records", nil)}, ServiceAccounts: []corev1.ServiceAccount{records},
				NamespacePods: []corev1.Pod{accessPod("records-0", "records", nil), accessPod("batch-0", "records", nil),
					accessPod("batch-1", "records", func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.Now()) })}},
			want: map[string][]string{phiguardv1alpha1.ReasonSharedServiceAccount: {
				"ServiceAccount records (pods records-0) is also used by pods the workload does not select: batch-0"}}},
		{name: "automount by default", reason: phiguardv1alpha1.ReasonTokenMounted,
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "records", func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = nil })},
				ServiceAccounts: []corev1.ServiceAccount{records}},
			want: map[string][]string{phiguardv1alpha1.ReasonTokenMounted: {"ServiceAccount records's token is mounted in pods records-0 " +
				"(automountServiceAccountToken unset on the pod and the ServiceAccount, which mounts it)"}}},
		{name: "automount on the ServiceAccount", reason: phiguardv1alpha1.ReasonTokenMounted,
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "records", func(p *corev1.Pod) { p.Spec.AutomountServiceAccountToken = nil })},
				ServiceAccounts: []corev1.ServiceAccount{recordsServiceAccount(ptr.To(true))}},
			want: map[string][]string{phiguardv1alpha1.ReasonTokenMounted: {"ServiceAccount records's token is mounted in pods records-0 " +
				"(automountServiceAccountToken: true on the ServiceAccount)"}}},
		{name: "the pod's false wins over the ServiceAccount's true", reason: phiguardv1alpha1.ReasonLeastPrivilege, want: map[string][]string{},
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "records", nil)},
				ServiceAccounts: []corev1.ServiceAccount{recordsServiceAccount(ptr.To(true))}}},
		{name: "a projected token a container mounts", reason: phiguardv1alpha1.ReasonTokenMounted,
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "records", mountsToken)}, ServiceAccounts: []corev1.ServiceAccount{records}},
			want: map[string][]string{phiguardv1alpha1.ReasonTokenMounted: {"ServiceAccount records's token is mounted in pods records-0 " +
				"(serviceAccountToken volume kube-api-access-x mounted by container app)"}}},
		{name: "a projected token no container mounts", reason: phiguardv1alpha1.ReasonLeastPrivilege, want: map[string][]string{},
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "records", tokenVolume)}, ServiceAccounts: []corev1.ServiceAccount{records}}},
		{name: "a mounted token, allowed", reason: phiguardv1alpha1.ReasonLeastPrivilege, want: map[string][]string{},
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "records", mountsToken)}, ServiceAccounts: []corev1.ServiceAccount{records},
				AllowTokenAutomount: true}},
		{name: "a grant through a group, and a token", reason: phiguardv1alpha1.ReasonExcessivePrivilege,
			in: AccessInputs{Selected: []corev1.Pod{accessPod("records-0", "records", mountsToken)}, ServiceAccounts: []corev1.ServiceAccount{records},
				RBAC: clinicRBAC()},
			want: map[string][]string{
				phiguardv1alpha1.ReasonExcessivePrivilege: {"ServiceAccount records (pods records-0) is granted too much: " +
					`ClusterRoleBinding "authenticated-read-secrets" of ClusterRole "secret-reader" to Group "system:authenticated": ` +
					`verbs=[get list watch] apiGroups=[""] resources=[secrets] (get Secrets, list Secrets, watch Secrets); ` +
					`RoleBinding "clinic-reads-billing/billing" of Role "secrets" to Group "system:serviceaccounts:clinic": ` +
					`verbs=[list] apiGroups=[""] resources=[secrets] (list Secrets)`},
				phiguardv1alpha1.ReasonTokenMounted: {"ServiceAccount records's token is mounted in pods records-0 " +
					"(serviceAccountToken volume kube-api-access-x mounted by container app)"},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tc.in.Namespace = "clinic"
			g.Expect(AccessFindings(t.Context(), &tc.in)).To(Equal(tc.want))
			r := JudgeAccess(t.Context(), &tc.in)
			g.Expect(r.Reason).To(Equal(tc.reason))
			if tc.reason == phiguardv1alpha1.ReasonLeastPrivilege {
				g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
			} else {
				g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
				for _, findings := range tc.want {
					for _, f := range findings {
						g.Expect(r.Message).To(ContainSubstring(f))
					}
				}
			}
			g.Expect(r.Message).To(MatchRegexp(`Report: who may exec into, attach to, port-forward to or add ephemeral containers to pods in clinic \(RBAC\): .*Group system:masters`))
		})
	}
}

func TestJudgeAccessMessages(t *testing.T) {
	g := NewWithT(t)
	in := AccessInputs{Namespace: "clinic", Selected: []corev1.Pod{accessPod("records-0", "records", nil)},
		ServiceAccounts: []corev1.ServiceAccount{recordsServiceAccount(nil)}, RBAC: clinicRBAC()}
	in.RBAC.ClusterRoleBindings = in.RBAC.ClusterRoleBindings[1:]
	in.RBAC.RoleBindings = in.RBAC.RoleBindings[:3]
	g.Expect(JudgeAccess(t.Context(), &in)).To(Equal(Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonLeastPrivilege,
		Message: "the 1 selected pods run as ServiceAccounts of their own (records), used by no other pod; no pod mounts its ServiceAccount's token; " +
			"their RBAC grants no wildcard, no Secrets outside clinic, no escalate, bind, impersonate or create pods/exec. " +
			"Report: who may exec into, attach to, port-forward to or add ephemeral containers to pods in clinic (RBAC): " +
			"Group oncall, Group system:masters, User alice"}))

	in.Selected = []corev1.Pod{accessPod("records-0", "", nil)}
	g.Expect(JudgeAccess(t.Context(), &in).Message).To(HavePrefix(
		"ServiceAccount default (pods records-0) does not exist; ServiceAccount default (pods records-0) is the namespace's default. " +
			"To fix: create the ServiceAccount or point spec.serviceAccountName at one that exists; " +
			"give the workload a ServiceAccount of its own (spec.serviceAccountName). Report: "))
}

func TestBreakGlass(t *testing.T) {
	const what, workload = "exec into container app of pod clinic/records-0: command [\"sh\"]", "PHIWorkload clinic/records"
	for _, tc := range []struct {
		name       string
		userGroups []string
		groups     []string
		mode       phiguardv1alpha1.Mode
		want       BreakGlassDecision
	}{
		{name: "a member, Enforce", userGroups: list("system:authenticated", "oncall"), groups: list("sre", "oncall"), mode: phiguardv1alpha1.ModeEnforce,
			want: BreakGlassDecision{Allowed: true, Member: true, Message: "alice (groups [system:authenticated oncall]): " + what +
				", as a member of emergency access group oncall of " + workload}},
		{name: "not a member, Enforce", userGroups: list("system:authenticated"), groups: list("sre", "oncall"), mode: phiguardv1alpha1.ModeEnforce,
			want: BreakGlassDecision{Message: "alice (groups [system:authenticated]) may not " + what + ": " + workload +
				" requires break-glass access to its pods (HIPAA §164.312(a)(2)(ii), accessControl.mode Enforce), and only members of sre, oncall may (accessControl.emergencyAccessGroups)"}},
		{name: "no group, Enforce", userGroups: list("system:masters"), mode: phiguardv1alpha1.ModeEnforce,
			want: BreakGlassDecision{Message: "alice (groups [system:masters]) may not " + what + ": " + workload +
				" requires break-glass access to its pods (HIPAA §164.312(a)(2)(ii), accessControl.mode Enforce), and no group may: " +
				"accessControl.emergencyAccessGroups is empty; list the groups allowed break-glass access"}},
		{name: "not a member, Audit", userGroups: list("system:authenticated"), groups: list("oncall"), mode: phiguardv1alpha1.ModeAudit,
			want: BreakGlassDecision{Allowed: true, Message: "alice (groups [system:authenticated]) may not " + what + ": " + workload +
				" requires break-glass access to its pods (HIPAA §164.312(a)(2)(ii), accessControl.mode Audit), and only members of oncall may (accessControl.emergencyAccessGroups)",
				Warnings: list("phiguard (Audit, allowed, recorded): alice (groups [system:authenticated]) may not " + what + ": " + workload +
					" requires break-glass access to its pods (HIPAA §164.312(a)(2)(ii), accessControl.mode Audit), and only members of oncall may (accessControl.emergencyAccessGroups)")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(BreakGlass("alice", tc.userGroups, tc.groups, tc.mode, what, workload)).To(Equal(tc.want))
		})
	}
}
