package safeguard

import (
	"reflect"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// AccessControlled judges what the apiserver holds: the ServiceAccounts, every
// pod of the namespace, and the RBAC objects (the apiserver's own bootstrap
// ClusterRoles and ClusterRoleBindings among them), and writes nothing.
func TestAccessControlJudgesServiceAccountsAndRBAC(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	create(t, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}, AutomountServiceAccountToken: ptr.To(false)})
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "records" })
	c, writes := countingClient(t)
	judge := func() Result {
		t.Helper()
		r := AccessControl{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
		g.Expect(r.Err).NotTo(HaveOccurred())
		return r
	}

	r := judge()
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue), r.Message)
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonLeastPrivilege))
	g.Expect(r.Message).To(HavePrefix("the 1 selected pods run as ServiceAccounts of their own (records), used by no other pod; no pod mounts its ServiceAccount's token; "))
	g.Expect(r.Message).To(MatchRegexp(`Report: who may exec into, attach to, port-forward to or add ephemeral containers to pods in ` + ns + ` \(RBAC\): .*Group system:masters`))

	// A ClusterRoleBinding granting the namespace's ServiceAccounts every Secret, through their group.
	crb := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns + "-reads-secrets"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view-secrets-" + ns},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: "system:serviceaccounts:" + ns}}}
	create(t, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "view-secrets-" + ns},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}})
	create(t, crb)
	t.Cleanup(func() { _ = k8s.Delete(t.Context(), crb) })
	r = judge()
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonExcessivePrivilege))
	g.Expect(r.Message).To(HavePrefix("ServiceAccount records (pods records-0) is granted too much: " +
		`ClusterRoleBinding "` + ns + `-reads-secrets" of ClusterRole "view-secrets-` + ns + `" to Group "system:serviceaccounts:` + ns + `": ` +
		`verbs=[get list] apiGroups=[""] resources=[secrets] (get Secrets, list Secrets). To fix: narrow the roles named or remove their bindings. `))
	g.Expect(k8s.Delete(t.Context(), crb)).To(Succeed())

	// A RoleBinding letting a user exec into the namespace's pods: reported, not a failure.
	create(t, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "exec"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"create"}, APIGroups: []string{""}, Resources: []string{"pods/exec"}}}})
	create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "oncall-exec"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "exec"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "oncall-alice"}}})
	r = judge()
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue), r.Message)
	g.Expect(r.Message).To(ContainSubstring("User oncall-alice"))

	// A pod outside the workload running as the same ServiceAccount, and a selected pod as the default one.
	newPod(t, ns, "batch-0", map[string]string{"app": "batch"}, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "records" })
	newPod(t, ns, "records-1", map[string]string{"app": "records"}, func(p *corev1.Pod) {
		p.Spec.AutomountServiceAccountToken = ptr.To(false)
	})
	r = judge()
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonServiceAccountMissing), "envtest runs no controller that creates default ServiceAccounts")
	g.Expect(r.Message).To(HavePrefix("ServiceAccount default (pods records-1) does not exist; " +
		"ServiceAccount default (pods records-1) is the namespace's default; " +
		"ServiceAccount records (pods records-0) is also used by pods the workload does not select: batch-0. "))
	g.Expect(writes.N()).To(BeZero(), "AccessControlled only reports")
}

// The watches map an RBAC change to the workloads it can concern, and a pod to
// the workloads that select a pod running as its ServiceAccount.
func TestAccessControlWatchesMapToTheWorkloadsConcerned(t *testing.T) {
	g := NewWithT(t)
	clinic, billing := newNamespace(t), newNamespace(t)
	newWorkload(t, clinic, nil)
	newWorkload(t, billing, nil)
	newPod(t, clinic, "records-0", map[string]string{"app": "records"}, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "records" })
	newPod(t, clinic, "batch-0", map[string]string{"app": "batch"}, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "records" })
	newPod(t, clinic, "other-0", map[string]string{"app": "other"}, func(p *corev1.Pod) { p.Spec.ServiceAccountName = "other" })
	w := Workloads{Reader: k8s}
	workloads := func(reqs []reconcile.Request) []string {
		out := make([]string, 0, len(reqs))
		for _, r := range reqs {
			out = append(out, r.String())
		}
		return out
	}
	watches := (AccessControl{}).Watches()
	find := func(obj client.Object) Watch {
		for _, watch := range watches {
			if reflect.TypeOf(watch.Object) == reflect.TypeOf(obj) {
				return watch
			}
		}
		t.Fatalf("no watch of %T", obj)
		return Watch{}
	}
	records, billingRecords := clinic+"/records", billing+"/records"

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: clinic, Name: "batch-0"}, Spec: corev1.PodSpec{ServiceAccountName: "records"}}
	g.Expect(workloads(find(pod).Map(t.Context(), w, pod))).To(ConsistOf(records), "batch-0 shares records' ServiceAccount")
	pod = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: clinic, Name: "other-0"}, Spec: corev1.PodSpec{ServiceAccountName: "other"}}
	g.Expect(workloads(find(pod).Map(t.Context(), w, pod))).To(BeEmpty())

	binding := func(ns string, subjects ...rbacv1.Subject) *rbacv1.RoleBinding {
		return &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "b"}, Subjects: subjects}
	}
	rb := binding(billing, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Namespace: clinic, Name: "records"})
	g.Expect(workloads(find(rb).Map(t.Context(), w, rb))).To(ConsistOf(records, billingRecords))
	rb = binding(billing, rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "system:serviceaccounts:" + clinic})
	g.Expect(workloads(find(rb).Map(t.Context(), w, rb))).To(ConsistOf(records, billingRecords))
	rb = binding(billing, rbacv1.Subject{Kind: rbacv1.UserKind, Name: "alice"})
	g.Expect(workloads(find(rb).Map(t.Context(), w, rb))).To(ConsistOf(billingRecords), "who may reach inside billing's pods")
	rb = binding(billing, rbacv1.Subject{Kind: rbacv1.GroupKind, Name: "system:authenticated"})
	g.Expect(workloads(find(rb).Map(t.Context(), w, rb))).To(ContainElements(records, billingRecords))

	create(t, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: billing, Name: "clinic-reads"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "reader"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: clinic, Name: "records"}}})
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: billing, Name: "reader"}}
	g.Expect(workloads(find(role).Map(t.Context(), w, role))).To(ConsistOf(records, billingRecords))
	role.Name = "unbound"
	g.Expect(workloads(find(role).Map(t.Context(), w, role))).To(ConsistOf(billingRecords))

	crb := &rbacv1.ClusterRoleBinding{}
	g.Expect(workloads(find(crb).Map(t.Context(), w, crb))).To(ContainElements(records, billingRecords), "every workload")
}
