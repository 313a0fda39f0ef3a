package safeguard

import (
	"fmt"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// BenchmarkScope measures what every reconcile reads before a safeguard runs:
// the scope of one workload of a namespace holding 100 workloads of 2 pods
// each (a Deployment, its ReplicaSet, a Service and phiguard's NetworkPolicy
// per workload) in a cluster with 60 ClusterRoles and ClusterRoleBindings,
// read from memReader, which answers as the manager's cache does (deep
// copies, unless an input lists the cache's own objects).
func BenchmarkScope(b *testing.B) {
	const workloads, podsPer = 100, 2
	const clusterRoles = 60
	objs := make([]client.Object, 0, 1+(5+podsPer)*workloads+2*clusterRoles)
	objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clinic"}})
	for i := range workloads {
		name := fmt.Sprintf("app-%d", i)
		app := map[string]string{"app": name}
		objs = append(objs,
			&phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name},
				Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: app}}},
			&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name, Labels: app},
				Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](podsPer), Selector: &metav1.LabelSelector{MatchLabels: app},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: app}, Spec: benchPodSpec(name)}}},
			&appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name + "-5d4f8", Labels: app},
				Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](podsPer), Selector: &metav1.LabelSelector{MatchLabels: app},
					Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: app}, Spec: benchPodSpec(name)}}},
			&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name},
				Spec: corev1.ServiceSpec{Selector: app, Ports: []corev1.ServicePort{{Name: "web", Port: 8443, TargetPort: intstr.FromInt32(8443)}}}},
			&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: NetworkPolicyName(name)},
				Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: app},
					PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
					Ingress:     []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: app}}}}},
					Egress:      []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: app}}}}}}})
		for j := range podsPer {
			objs = append(objs, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: fmt.Sprintf("%s-5d4f8-%d", name, j), Labels: app,
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: name + "-5d4f8", Controller: ptr.To(true)}}},
				Spec: benchPodSpec(name),
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", Conditions: []corev1.PodCondition{
					{Type: corev1.PodReady, Status: corev1.ConditionTrue}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}},
			})
		}
	}
	rules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods", "services"}, Verbs: []string{"get", "list", "watch"}}}
	for i := range clusterRoles {
		name := fmt.Sprintf("operator-%02d", i)
		objs = append(objs, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules},
			&rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
				Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "operators", Name: name}}})
	}
	env := Env{Reader: &memReader{objs: objs}}
	w := objs[1].(*phiguardv1alpha1.PHIWorkload)
	reg := New(Options{})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		s, err := reg.Scope(b.Context(), env, w, now)
		if err != nil {
			b.Fatal(err)
		}
		if len(s.Pods) != podsPer || len(NamespacePods.Get(s)) != workloads*podsPer {
			b.Fatalf("%d selected pods of %d", len(s.Pods), len(NamespacePods.Get(s)))
		}
	}
}

// benchPodSpec is the spec of a workload's pods: an app container with its
// probes, environment and resources, and the audit sidecar.
func benchPodSpec(name string) corev1.PodSpec {
	spec := corev1.PodSpec{ServiceAccountName: name, Containers: []corev1.Container{{
		Name: "app", Image: "registry.example/" + name + "@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: 8443}},
		Env:   []corev1.EnvVar{{Name: "MODE", Value: "production"}, {Name: "LOG_PATH", Value: DefaultAuditLogPath}},
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("web")}}},
		SecurityContext: &corev1.SecurityContext{ReadOnlyRootFilesystem: ptr.To(true), AllowPrivilegeEscalation: ptr.To(false),
			RunAsNonRoot: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
	}}}
	pod := &corev1.Pod{Spec: spec}
	InjectAuditSidecar(pod, name, &phiguardv1alpha1.AuditLoggingSpec{LogPath: DefaultAuditLogPath,
		Sidecar: &phiguardv1alpha1.AuditSidecar{Image: DefaultAuditSidecarImage}})
	return pod.Spec
}
