package safeguard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// AccessControl reports whether the selected pods run with dedicated,
// least-privilege identities (HIPAA §164.312(a)(1) access control,
// §164.308(a)(4) information access management; Required): each pod runs as
// a ServiceAccount that exists, is not the namespace's default and no pod
// outside the workload uses; its token is not mounted unless
// accessControl.allowTokenAutomount; and the RBAC that applies to it,
// resolved with the apiserver's own resolver (accesscontrol_rbac.go), grants
// no wildcard, no Secrets outside its namespace, no escalate, bind,
// impersonate or create pods/exec. The condition also reports who may reach
// inside the pods (exec, attach, port-forward, ephemeral containers): a
// report, never a failure by itself, as cluster administrators always can.
//
// It changes nothing in the cluster. Its webhook (accesscontrol_admission.go)
// records every exec, attach, port-forward and ephemeral container on a
// selected pod as an Event, and in Enforce admits only members of
// accessControl.emergencyAccessGroups (§164.312(a)(2)(ii) emergency access).
//
// Limits: RoleBindings of other namespaces count when they name the
// workload's ServiceAccounts (directly, or through system:serviceaccounts,
// system:serviceaccounts:<namespace> or system:authenticated); the rules of an
// aggregated ClusterRole are what its aggregation controller stored.
type AccessControl struct{}

// What AccessControl reads and watches.
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=get;list;watch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings;clusterroles;clusterrolebindings,verbs=get;list;watch

// Every input of AccessControl is only read (the judgment, and the
// apiserver's RBAC resolver, which reads its informers' objects as these), so
// Shared.
var (
	// ServiceAccounts are the ServiceAccounts of the workload's namespace.
	ServiceAccounts = ListIn("ServiceAccounts", Shared, func(l *corev1.ServiceAccountList) []corev1.ServiceAccount { return l.Items })
	// NamespacePods are every pod of the workload's namespace, selected or not.
	NamespacePods = ListIn("Pods", Shared, func(l *corev1.PodList) []corev1.Pod { return l.Items })
	// ClusterRoles are every ClusterRole.
	ClusterRoles = ListCluster("ClusterRoles", Shared, func(l *rbacv1.ClusterRoleList) []rbacv1.ClusterRole { return l.Items })
	// ClusterRoleBindings are every ClusterRoleBinding.
	ClusterRoleBindings = ListCluster("ClusterRoleBindings", Shared, func(l *rbacv1.ClusterRoleBindingList) []rbacv1.ClusterRoleBinding { return l.Items })
	// NamespacedRBAC are the RoleBindings (and their namespaces' Roles) that
	// can grant the workload's namespace's ServiceAccounts something, or let
	// someone reach into its pods: see RBACObjects.
	NamespacedRBAC = &InputOf[RBACObjects]{Name: "Roles and RoleBindings", Sharing: Shared, Read: readNamespacedRBAC}
)

// readNamespacedRBAC reads every RoleBinding of the namespace, those of other
// namespaces that name one of its ServiceAccounts, and the Roles of the
// namespaces they are in: the cache's own objects (NamespacedRBAC is Shared).
func readNamespacedRBAC(ctx context.Context, r client.Reader, s *Scope) (RBACObjects, error) {
	ns := s.Workload.Namespace
	var bindings rbacv1.RoleBindingList
	if err := r.List(ctx, &bindings); err != nil {
		return RBACObjects{}, fmt.Errorf("listing RoleBindings: %w", err)
	}
	var out RBACObjects
	namespaces := map[string]bool{}
	for i := range bindings.Items {
		b := &bindings.Items[i]
		if b.Namespace == ns || slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool { return namesNamespaceSA(s, b.Namespace, ns) }) {
			out.RoleBindings = append(out.RoleBindings, *b)
			namespaces[b.Namespace] = true
		}
	}
	for _, bns := range sortedKeys(namespaces) {
		var roles rbacv1.RoleList
		if err := r.List(ctx, &roles, client.InNamespace(bns)); err != nil {
			return RBACObjects{}, fmt.Errorf("listing Roles in %s: %w", bns, err)
		}
		out.Roles = append(out.Roles, roles.Items...)
	}
	return out, nil
}

// Name implements Safeguard.
func (AccessControl) Name() phiguardv1alpha1.SafeguardName { return phiguardv1alpha1.AccessControlled }

// Rule implements Safeguard.
func (AccessControl) Rule() Rule {
	// §164.308(a)(4) (information access management) is served too; the
	// section is the one the PolicyReport's category and status show.
	// Proposed: §164.312(a), access control (unique identification of each
	// user and technology asset, separate privileged identities).
	return Rule{Section: "§164.312(a)(1)", Specification: phiguardv1alpha1.Required,
		ProposedSection: "§164.312(a)",
		Summary:         "ePHI pods run with dedicated, least-privilege identities"}
}

// Defaults implements Safeguard: Audit, no token mounted, no emergency group.
func (AccessControl) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.AccessControl = &phiguardv1alpha1.AccessControlSpec{Mode: phiguardv1alpha1.ModeAudit, AllowTokenAutomount: ptr.To(false)}
}

// Inputs implements Reader.
func (AccessControl) Inputs() []Input {
	return []Input{ServiceAccounts, NamespacePods, ClusterRoles, ClusterRoleBindings, NamespacedRBAC}
}

// Reconcile implements Safeguard.
func (AccessControl) Reconcile(ctx context.Context, s *Scope) Result {
	in := AccessInputs{
		Namespace: s.Workload.Namespace, Selected: s.Pods, NamespacePods: NamespacePods.Get(s),
		ServiceAccounts: ServiceAccounts.Get(s), RBAC: NamespacedRBAC.Get(s),
		AllowTokenAutomount: allowTokenAutomount(&s.Settings),
	}
	in.RBAC.ClusterRoles, in.RBAC.ClusterRoleBindings = ClusterRoles.Get(s), ClusterRoleBindings.Get(s)
	return NoPods(s, JudgeAccess(ctx, &in))
}

// allowTokenAutomount is accessControl.allowTokenAutomount in effective
// settings (false when unset).
func allowTokenAutomount(s *phiguardv1alpha1.SafeguardSettings) bool {
	return s.AccessControl != nil && ptr.Deref(s.AccessControl.AllowTokenAutomount, false)
}

// AccessInputs are what the judgment of a workload's identities reads.
type AccessInputs struct {
	// Namespace is the workload's.
	Namespace string
	// Selected are the pods the workload selects.
	Selected []corev1.Pod
	// NamespacePods are every pod of the namespace.
	NamespacePods []corev1.Pod
	// ServiceAccounts are the namespace's.
	ServiceAccounts []corev1.ServiceAccount
	// RBAC is what RBACObjects says.
	RBAC RBACObjects
	// AllowTokenAutomount is accessControl.allowTokenAutomount.
	AllowTokenAutomount bool
}

// accessFindingOrder is the order of the False reasons: the condition carries
// the first that holds.
var accessFindingOrder = []string{
	phiguardv1alpha1.ReasonExcessivePrivilege,
	phiguardv1alpha1.ReasonServiceAccountMissing,
	phiguardv1alpha1.ReasonDefaultServiceAccount,
	phiguardv1alpha1.ReasonSharedServiceAccount,
	phiguardv1alpha1.ReasonTokenMounted,
}

var accessFixes = map[string]string{
	phiguardv1alpha1.ReasonExcessivePrivilege:    "narrow the roles named or remove their bindings",
	phiguardv1alpha1.ReasonServiceAccountMissing: "create the ServiceAccount or point spec.serviceAccountName at one that exists",
	phiguardv1alpha1.ReasonDefaultServiceAccount: "give the workload a ServiceAccount of its own (spec.serviceAccountName)",
	phiguardv1alpha1.ReasonSharedServiceAccount:  "give the workload a ServiceAccount no other pod uses",
	phiguardv1alpha1.ReasonTokenMounted: "set automountServiceAccountToken: false on the pods or their ServiceAccount and mount no serviceAccountToken volume " +
		"(or set accessControl.allowTokenAutomount: true if the pods call the Kubernetes API)",
}

// AccessFindings judges each ServiceAccount the selected pods run as and
// returns what keeps them from least privilege, by reason, each entry naming
// the ServiceAccount, the pods and the objects at fault.
func AccessFindings(ctx context.Context, in *AccessInputs) map[string][]string {
	out := map[string][]string{}
	add := func(reason, format string, args ...any) {
		out[reason] = append(out[reason], fmt.Sprintf(format, args...))
	}
	bySA := map[string][]*corev1.Pod{}
	for i := range in.Selected {
		sa := podServiceAccount(&in.Selected[i].Spec)
		bySA[sa] = append(bySA[sa], &in.Selected[i])
	}
	for _, name := range sortedKeys(bySA) {
		pods := bySA[name]
		subject := fmt.Sprintf("ServiceAccount %s (pods %s)", name, strings.Join(named(podNames(pods)), ", "))
		sa, faults := serviceAccountFaults(name, in.ServiceAccounts)
		for _, reason := range faults {
			add(reason, serviceAccountFaultFormats[reason], subject)
		}
		if others := otherPodsOf(in, name); len(others) > 0 {
			add(phiguardv1alpha1.ReasonSharedServiceAccount, "%s is also used by pods the workload does not select: %s",
				subject, strings.Join(named(others), ", "))
		}
		var mounts []string
		for _, p := range pods {
			if how := forbiddenTokenMounts(p, sa, in.AllowTokenAutomount); len(how) > 0 {
				mounts = append(mounts, fmt.Sprintf("%s (%s)", p.Name, strings.Join(how, ", ")))
			}
		}
		if len(mounts) > 0 {
			add(phiguardv1alpha1.ReasonTokenMounted, "ServiceAccount %s's token is mounted in pods %s", name, strings.Join(named(mounts), ", "))
		}
		if grants := ExcessivePrivileges(ctx, &in.RBAC, in.Namespace, name); len(grants) > 0 {
			add(phiguardv1alpha1.ReasonExcessivePrivilege, "%s is granted too much: %s", subject, strings.Join(named(grants), "; "))
		}
	}
	return out
}

// JudgeAccess turns the findings into a result; the who-may-reach-inside
// report ends the message either way.
func JudgeAccess(ctx context.Context, in *AccessInputs) Result {
	findings := AccessFindings(ctx, in)
	reach := fmt.Sprintf("who may exec into, attach to, port-forward to or add ephemeral containers to pods in %s (RBAC): %s",
		in.Namespace, strings.Join(named(ReachInside(ctx, &in.RBAC, in.Namespace)), ", "))
	var reason string
	var problems, fixes []string
	for _, r := range accessFindingOrder {
		if len(findings[r]) == 0 {
			continue
		}
		reason = cmp.Or(reason, r)
		problems = append(problems, findings[r]...)
		fixes = append(fixes, accessFixes[r])
	}
	if reason != "" {
		return Result{Status: metav1.ConditionFalse, Reason: reason,
			Message: fmt.Sprintf("%s. To fix: %s. Report: %s", strings.Join(problems, "; "), strings.Join(fixes, "; "), reach)}
	}
	automount := "no pod mounts its ServiceAccount's token"
	if in.AllowTokenAutomount {
		automount = "tokens may be mounted (accessControl.allowTokenAutomount)"
	}
	return Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonLeastPrivilege,
		Message: fmt.Sprintf("the %d selected pods run as ServiceAccounts of their own (%s), used by no other pod; %s; "+
			"their RBAC grants no wildcard, no Secrets outside %s, no escalate, bind, impersonate or create pods/exec. Report: %s",
			len(in.Selected), strings.Join(selectedSAs(in.Selected), ", "), automount, in.Namespace, reach)}
}

// defaultServiceAccount is the ServiceAccount a pod that names none runs as.
const defaultServiceAccount = "default"

// podServiceAccount names the ServiceAccount a pod spec runs as:
// spec.serviceAccountName, else the namespace's default.
func podServiceAccount(spec *corev1.PodSpec) string {
	return cmp.Or(spec.ServiceAccountName, defaultServiceAccount)
}

// serviceAccountFaultFormats say, of a subject naming the ServiceAccount and
// its pods, what each reason serviceAccountFaults returns means.
var serviceAccountFaultFormats = map[string]string{
	phiguardv1alpha1.ReasonServiceAccountMissing: "%s does not exist",
	phiguardv1alpha1.ReasonDefaultServiceAccount: "%s is the namespace's default",
}

// serviceAccountFaults judges the ServiceAccount name on its own, whatever
// the other pods and RBAC say: it returns that ServiceAccount among sas (nil
// when it does not exist) and what keeps it from being a pod's dedicated
// identity, as reasons: ReasonServiceAccountMissing, then
// ReasonDefaultServiceAccount.
func serviceAccountFaults(name string, sas []corev1.ServiceAccount) (*corev1.ServiceAccount, []string) {
	var sa *corev1.ServiceAccount
	var faults []string
	if i := slices.IndexFunc(sas, func(sa corev1.ServiceAccount) bool { return sa.Name == name }); i >= 0 {
		sa = &sas[i]
	} else {
		faults = append(faults, phiguardv1alpha1.ReasonServiceAccountMissing)
	}
	if name == defaultServiceAccount {
		faults = append(faults, phiguardv1alpha1.ReasonDefaultServiceAccount)
	}
	return sa, faults
}

// forbiddenTokenMounts says how a pod gets the token of its ServiceAccount sa
// (nil when it does not exist) that accessControl.allowTokenAutomount (allow)
// does not permit: TokenMounts, or nil when allowed.
func forbiddenTokenMounts(pod *corev1.Pod, sa *corev1.ServiceAccount, allow bool) []string {
	if allow {
		return nil
	}
	return TokenMounts(pod, sa)
}

func podNames(pods []*corev1.Pod) []string {
	out := make([]string, 0, len(pods))
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

func selectedSAs(pods []corev1.Pod) []string {
	var out []string
	for i := range pods {
		if sa := cmp.Or(pods[i].Spec.ServiceAccountName, "default"); !slices.Contains(out, sa) {
			out = append(out, sa)
		}
	}
	slices.Sort(out)
	return out
}

// otherPodsOf names the pods of the namespace, not selected and not being
// deleted, that run as ServiceAccount sa.
func otherPodsOf(in *AccessInputs, sa string) []string {
	var out []string
	for i := range in.NamespacePods {
		p := &in.NamespacePods[i]
		if cmp.Or(p.Spec.ServiceAccountName, "default") != sa || !p.DeletionTimestamp.IsZero() ||
			slices.ContainsFunc(in.Selected, func(s corev1.Pod) bool { return s.Name == p.Name }) {
			continue
		}
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return out
}

// TokenMounts says how a pod gets its ServiceAccount's token (sa nil when it
// does not exist): automountServiceAccountToken in effect (the pod's, else
// the ServiceAccount's, else true), and each projected serviceAccountToken
// volume a container mounts. Nil when it gets none.
func TokenMounts(pod *corev1.Pod, sa *corev1.ServiceAccount) []string {
	var out []string
	if how := tokenAutomount(pod, sa); how != "" {
		out = append(out, how)
	}
	for _, v := range tokenVolumes(pod) {
		out = append(out, v.String())
	}
	return out
}

// tokenAutomount says why the token is automounted in a pod (sa nil when its
// ServiceAccount does not exist): automountServiceAccountToken in effect, the
// pod's, else the ServiceAccount's, else true; "" when it is not.
func tokenAutomount(pod *corev1.Pod, sa *corev1.ServiceAccount) string {
	switch {
	case pod.Spec.AutomountServiceAccountToken != nil:
		if *pod.Spec.AutomountServiceAccountToken {
			return "automountServiceAccountToken: true on the pod"
		}
	case sa != nil && sa.AutomountServiceAccountToken != nil:
		if *sa.AutomountServiceAccountToken {
			return "automountServiceAccountToken: true on the ServiceAccount"
		}
	default:
		return "automountServiceAccountToken unset on the pod and the ServiceAccount, which mounts it"
	}
	return ""
}

// tokenVolume is a projected serviceAccountToken volume a container mounts.
type tokenVolume struct{ volume, container string }

func (v tokenVolume) String() string {
	return fmt.Sprintf("serviceAccountToken volume %s mounted by container %s", v.volume, v.container)
}

// tokenVolumes are a pod's projected serviceAccountToken volumes that a
// container mounts, in the order of spec.volumes.
func tokenVolumes(pod *corev1.Pod) []tokenVolume {
	var out []tokenVolume
	for _, v := range pod.Spec.Volumes {
		if v.Projected == nil || !slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil }) {
			continue
		}
		if c := containerMounting(pod, v.Name); c != "" {
			out = append(out, tokenVolume{volume: v.Name, container: c})
		}
	}
	return out
}

// containerMounting names the first container (init and ephemeral ones
// included) that mounts a volume; "" when none does.
func containerMounting(pod *corev1.Pod, volume string) string {
	mounts := func(ms []corev1.VolumeMount) bool {
		return slices.ContainsFunc(ms, func(m corev1.VolumeMount) bool { return m.Name == volume })
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if mounts(c.VolumeMounts) {
				return c.Name
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if mounts(c.VolumeMounts) {
			return c.Name
		}
	}
	return ""
}

// Watches implements Watcher. ServiceAccounts re-judge their namespace's
// workloads; a pod that comes, goes or changes labels re-judges the
// workloads that select a pod running as its ServiceAccount (it may share
// it); a Role or RoleBinding re-judges its namespace's workloads and those of
// the namespaces whose ServiceAccounts it names (every namespace for
// system:serviceaccounts or system:authenticated); a ClusterRole or
// ClusterRoleBinding re-judges every workload, for it can change both what
// an identity may do and who may reach inside anywhere (they change rarely).
func (AccessControl) Watches() []Watch {
	all := func(ctx context.Context, w Workloads, _ client.Object) []reconcile.Request { return w.In(ctx, "") }
	return []Watch{
		{Object: &corev1.ServiceAccount{}, Map: func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
			return w.In(ctx, obj.GetNamespace())
		}},
		{Object: &corev1.Pod{}, Map: workloadsSharingServiceAccount, Predicates: []predicate.Predicate{predicate.LabelChangedPredicate{}}},
		{Object: &rbacv1.RoleBinding{}, Map: func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
			b, ok := obj.(*rbacv1.RoleBinding)
			if !ok {
				return w.In(ctx, obj.GetNamespace())
			}
			return workloadsReached(ctx, w, b.Namespace, b.Subjects)
		}},
		{Object: &rbacv1.Role{}, Map: workloadsOfRole},
		{Object: &rbacv1.ClusterRole{}, Map: all},
		{Object: &rbacv1.ClusterRoleBinding{}, Map: all},
	}
}

// workloadsSharingServiceAccount maps a pod to the workloads of its namespace
// that select a pod running as the same ServiceAccount.
func workloadsSharingServiceAccount(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil
	}
	sa := cmp.Or(pod.Spec.ServiceAccountName, "default")
	var pods corev1.PodList
	if err := w.Reader.List(ctx, &pods, client.InNamespace(pod.Namespace)); err != nil {
		logf.FromContext(ctx).Error(err, "listing pods", "namespace", pod.Namespace)
		return w.In(ctx, pod.Namespace)
	}
	var workloads phiguardv1alpha1.PHIWorkloadList
	if err := w.Reader.List(ctx, &workloads, client.InNamespace(pod.Namespace)); err != nil {
		logf.FromContext(ctx).Error(err, "listing PHIWorkloads", "namespace", pod.Namespace)
		return nil
	}
	// The label sets of the pods running as sa.
	sharing := make([]map[string]string, 0, len(pods.Items))
	for i := range pods.Items {
		if p := &pods.Items[i]; cmp.Or(p.Spec.ServiceAccountName, "default") == sa {
			sharing = append(sharing, p.Labels)
		}
	}
	var reqs []reconcile.Request
	for i := range workloads.Items {
		sel := &workloads.Items[i].Spec.Selector
		if slices.ContainsFunc(sharing, func(l map[string]string) bool { return selectsPod(sel, l) }) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&workloads.Items[i])})
		}
	}
	return reqs
}

// workloadsReached maps a binding's subjects to the workloads whose judgment
// it can change: those of its namespace (who may reach inside) and of every
// namespace whose ServiceAccounts it names.
func workloadsReached(ctx context.Context, w Workloads, namespace string, subjects []rbacv1.Subject) []reconcile.Request {
	namespaces := []string{namespace}
	for _, s := range subjects {
		switch {
		case s.Kind == rbacv1.ServiceAccountKind:
			namespaces = append(namespaces, cmp.Or(s.Namespace, namespace))
		case s.Kind == rbacv1.GroupKind && (s.Name == "system:serviceaccounts" || s.Name == "system:authenticated"):
			return w.In(ctx, "")
		case s.Kind == rbacv1.GroupKind && strings.HasPrefix(s.Name, "system:serviceaccounts:"):
			namespaces = append(namespaces, strings.TrimPrefix(s.Name, "system:serviceaccounts:"))
		}
	}
	slices.Sort(namespaces)
	var reqs []reconcile.Request
	for _, ns := range slices.Compact(namespaces) {
		reqs = append(reqs, w.In(ctx, ns)...)
	}
	return reqs
}

// workloadsOfRole maps a Role to the workloads the RoleBindings that refer to
// it reach.
func workloadsOfRole(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
	var bindings rbacv1.RoleBindingList
	if err := w.Reader.List(ctx, &bindings, client.InNamespace(obj.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "listing RoleBindings", "namespace", obj.GetNamespace())
		return w.In(ctx, obj.GetNamespace())
	}
	var subjects []rbacv1.Subject
	for _, b := range bindings.Items {
		if b.RoleRef.Kind == "Role" && b.RoleRef.Name == obj.GetName() {
			subjects = append(subjects, b.Subjects...)
		}
	}
	reqs := workloadsReached(ctx, w, obj.GetNamespace(), subjects)
	slices.SortFunc(reqs, func(a, b reconcile.Request) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(reqs)
}
