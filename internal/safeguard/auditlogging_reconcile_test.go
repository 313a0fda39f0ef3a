package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// withSidecar gives a pod the audit sidecar, as the webhook injects it.
func withSidecar(p *corev1.Pod) {
	p.Spec.InitContainers = append(p.Spec.InitContainers, corev1.Container{Name: AuditSidecarName,
		Image: DefaultAuditSidecarImage, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)})
}

func optedOut(p *corev1.Pod) {
	p.Annotations = map[string]string{AuditOptOutAnnotation: "false"}
}

// controlledBy makes owner the controller of a pod or ReplicaSet, as the
// controller-manager (which envtest does not run) would.
func controlledBy(obj metav1.Object, kind string, owner client.Object) {
	obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: kind,
		Name: owner.GetName(), UID: owner.GetUID(), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}})
}

func TestAuditLoggingNamesThePodsWithoutTheSidecar(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	labels := map[string]string{"app": "records"}
	newPod(t, ns, "records-b", labels, nil)
	newPod(t, ns, "records-a", labels, nil)
	newPod(t, ns, "records-c", labels, withSidecar)
	newPod(t, ns, "records-d", labels, optedOut)
	newPod(t, ns, "other-0", map[string]string{"app": "other"}, nil) // not selected
	c, writes := countingClient(t)

	r := AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsWithoutSidecar))
	g.Expect(r.Message).To(Equal("3 of 4 selected pods lack the audit sidecar: records-a, records-b, " +
		"records-d (opted out with phiguard.io/inject-audit-sidecar=false); " +
		"pods created before the PHIWorkload (or while phiguard was down) get it when re-created"))
	g.Expect(r.Events).To(BeEmpty(), "restartNonCompliant is off by default")
	g.Expect(writes.N()).To(BeZero())
}

func TestAuditLoggingRestartsTheOwningDeploymentOncePerGeneration(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{RestartNonCompliant: ptr.To(true)}
	})
	labels := map[string]string{"app": "records"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}}},
		},
	}
	create(t, dep)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api-5d4f8"},
		Spec:       appsv1.ReplicaSetSpec{Selector: dep.Spec.Selector, Template: dep.Spec.Template},
	}
	controlledBy(rs, "Deployment", dep)
	create(t, rs)
	for _, name := range []string{"api-5d4f8-x1", "api-5d4f8-x2"} {
		newPod(t, ns, name, labels, func(p *corev1.Pod) { controlledBy(p, "ReplicaSet", rs) })
	}
	c, writes := countingClient(t)

	first := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	r := AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, first))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsWithoutSidecar))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRolloutRestarted}), "two pods, one Deployment, one restart")
	g.Expect(r.Events[0].Message).To(Equal("restarted Deployment api so that its pods are re-created with the audit sidecar"))
	g.Expect(writes.N()).To(Equal(int64(1)))
	get(t, dep)
	g.Expect(dep.Spec.Template.Annotations).To(Equal(map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-03-01T09:00:00.123456789Z"}))
	g.Expect(r.Events[0].Related).To(HaveValue(Equal(corev1.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment",
		Namespace: ns, Name: "api", UID: dep.UID, ResourceVersion: dep.ResourceVersion})))

	// The pods are still the old ones (no controller-manager rolls them), but
	// this generation has restarted the Deployment already.
	r = AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, first.Add(time.Minute)))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsWithoutSidecar))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(int64(1)))

	// A new generation of the workload restarts it once more.
	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) { w.Spec.AuditLogging.LogPath = "/var/log/records-audit" })
	second := first.Add(time.Hour)
	r = AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, second))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRolloutRestarted}))
	g.Expect(writes.N()).To(Equal(int64(2)))
	get(t, dep)
	g.Expect(dep.Spec.Template.Annotations).To(HaveKeyWithValue("kubectl.kubernetes.io/restartedAt", "2026-03-01T10:00:00.123456789Z"))
}
