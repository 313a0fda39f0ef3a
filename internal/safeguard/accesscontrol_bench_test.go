package safeguard

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// BenchmarkJudgeAccess measures AccessControlled's judgment of one workload
// (two pods on their own ServiceAccount) in a cluster with 200 ClusterRoles
// and 200 ClusterRoleBindings (a cluster with a few operators installed has
// about that many) and 10 RoleBindings in its namespace: the apiserver's rule
// resolver over every binding, and the who-can-reach-inside report.
func BenchmarkJudgeAccess(b *testing.B) {
	in := &AccessInputs{Namespace: "clinic",
		ServiceAccounts: []corev1.ServiceAccount{{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records"},
			AutomountServiceAccountToken: ptr.To(false)}}}
	for i := range 2 {
		pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: fmt.Sprintf("records-%d", i)},
			Spec: corev1.PodSpec{ServiceAccountName: "records", AutomountServiceAccountToken: ptr.To(false)}}
		in.Selected = append(in.Selected, pod)
		in.NamespacePods = append(in.NamespacePods, pod)
	}
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods", "services", "configmaps"}, Verbs: []string{"get", "list", "watch"}},
		{APIGroups: []string{"apps"}, Resources: []string{"deployments", "statefulsets"}, Verbs: []string{"get", "list", "watch", "update"}},
		{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/log"}, Verbs: []string{"create", "get"}},
		{APIGroups: []string{"coordination.k8s.io"}, Resources: []string{"leases"}, Verbs: []string{"get", "create", "update"}},
		{NonResourceURLs: []string{"/healthz", "/metrics"}, Verbs: []string{"get"}},
	}
	for i := range 200 {
		name := fmt.Sprintf("operator-%03d", i)
		in.RBAC.ClusterRoles = append(in.RBAC.ClusterRoles, rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules})
		in.RBAC.ClusterRoleBindings = append(in.RBAC.ClusterRoleBindings, rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "operators", Name: name}}})
	}
	for i := range 10 {
		name := fmt.Sprintf("team-%d", i)
		in.RBAC.RoleBindings = append(in.RBAC.RoleBindings, rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: fmt.Sprintf("operator-%03d", i)},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: name + "@clinic.example"}}})
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := JudgeAccess(b.Context(), in); r.Reason != phiguardv1alpha1.ReasonLeastPrivilege {
			b.Fatalf("%s: %s", r.Reason, r.Message)
		}
	}
}
