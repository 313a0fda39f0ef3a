package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// IntegrityProtected judges the pods as the apiserver stored them (defaults
// applied), names what fails, and writes nothing.
func TestIntegrityReportsAMutableContainerAndHoldsWhenFixed(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, func(p *corev1.Pod) {
		p.Spec.Containers[0] = hardened("app")
	})
	newPod(t, ns, "records-1", map[string]string{"app": "records"}, func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{hardened("migrate")}
		p.Spec.InitContainers[0].SecurityContext.ReadOnlyRootFilesystem = nil
		p.Spec.Containers[0] = hardened("app")
		p.Spec.Containers[0].Image = "registry.example/records:1"
	})
	c, writes := countingClient(t)

	r := Integrity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonContainersMutable))
	g.Expect(r.Message).To(HavePrefix("1 of 2 selected pods run containers that could alter their own software: records-1 (" +
		"init container migrate: root filesystem not read-only (securityContext.readOnlyRootFilesystem must be true); " +
		"container app: image registry.example/records:1 not pinned by digest); "))
	g.Expect(writes.N()).To(BeZero(), "IntegrityProtected only reports")

	// Without the digest requirement only the init container fails.
	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.Integrity = &phiguardv1alpha1.IntegritySpec{RequireImageDigest: new(bool)}
	})
	r = Integrity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Message).To(HavePrefix("1 of 2 selected pods run containers that could alter their own software: records-1 (" +
		"init container migrate: root filesystem not read-only (securityContext.readOnlyRootFilesystem must be true)); "))

	g.Expect(k8s.Delete(t.Context(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-1"}})).To(Succeed())
	r = Integrity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonContainersImmutable))
	g.Expect(writes.N()).To(BeZero())
}
