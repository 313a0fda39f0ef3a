package safeguard

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The handlers' own exemption, for a PHIWorkload that exists in an exempt
// namespace anyway (created while the PHIWorkload webhook was not installed).
// The apiserver cannot be made to hold one, so the handlers are called directly.
func TestHandlersSkipExemptNamespacesEvenWithAWorkloadThere(t *testing.T) {
	g := NewWithT(t)
	workload := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "records"},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}},
	}
	reader := &memReader{objs: []client.Object{workload}}
	exempt := []string{"kube-system"}

	pvc := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "data", Labels: map[string]string{"app": "records"}},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("plain")}}
	warnings, err := claimValidator{&encryptionAdmission{AdmissionEnv{Reader: reader, ExemptNamespaces: exempt, Registry: New(Options{})}}}.ValidateCreate(t.Context(), pvc)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(warnings).To(BeEmpty())

	_, covered, err := AdmissionEnv{Reader: reader, ExemptNamespaces: exempt, Registry: New(Options{})}.coverage(t.Context(), "kube-system", phiguardv1alpha1.AuditLogging, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(covered).To(BeFalse(), "an exempt namespace is never covered, so no pod there is mutated")

	_, covered, err = AdmissionEnv{Reader: reader, Registry: New(Options{})}.coverage(t.Context(), "kube-system", phiguardv1alpha1.AuditLogging,
		func(_ labels.Selector) (bool, error) { return true, nil })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(covered).To(BeTrue(), "the same workload covers when the namespace is not exempt (the test is not vacuous)")
}
