package webhook_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Covers the PHIWorkload webhook: the PHIPolicy's exempt namespaces and
// minimum modes, applied at admission by the real apiserver's call.
var _ = Describe("PHIWorkload admission", Ordered, func() {
	var policy *phiguardv1alpha1.PHIPolicy
	newPHIWorkload := func(ns string, settings phiguardv1alpha1.SafeguardSettings) *phiguardv1alpha1.PHIWorkload {
		return &phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: records}, SafeguardSettings: settings},
		}
	}

	BeforeAll(func() {
		policy = &phiguardv1alpha1.PHIPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
			Spec: phiguardv1alpha1.PHIPolicySpec{
				ExemptNamespaces: []string{"legacy-lab"},
				MinimumModes: []phiguardv1alpha1.MinimumMode{
					{Safeguard: phiguardv1alpha1.NetworkIsolated, Mode: phiguardv1alpha1.ModeEnforce},
					{Safeguard: phiguardv1alpha1.AuditLogging, Mode: phiguardv1alpha1.ModeEnforce},
				},
			},
		}
		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy-lab"}})).To(Succeed())
	})

	It("refuses modes below the policy's minimum, naming the policy", func() {
		ns := newNamespace()
		w := newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{
			NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{Mode: phiguardv1alpha1.ModeAudit},
			AuditLogging:     &phiguardv1alpha1.AuditLoggingSpec{Mode: phiguardv1alpha1.ModeAudit},
			Backup:           &phiguardv1alpha1.BackupSpec{Mode: phiguardv1alpha1.ModeAudit},
		})
		var err error
		Eventually(func() error { err = k8s.Create(ctx, w.DeepCopy()); return err }, 10*time.Second, 50*time.Millisecond).Should(HaveOccurred())
		Expect(err.Error()).To(Equal(`admission webhook "vphiworkload.phiguard.io" denied the request: ` +
			"NetworkIsolated mode Audit is below the minimum Enforce; AuditLogging mode Audit is below the minimum Enforce " +
			"set by PHIPolicy default (spec.minimumModes); raise the mode or leave it empty to inherit"))

		By("leaving the modes empty inherits, and is admitted")
		Expect(k8s.Create(ctx, newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{}))).To(Succeed())
	})

	It("refuses PHIWorkloads in exempt namespaces, built-in or the policy's", func() {
		for _, ns := range []string{"kube-system", "legacy-lab"} {
			err := k8s.Create(ctx, newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{}))
			Expect(err).To(MatchError(ContainSubstring("namespace "+ns+" is exempt from phiguard")), ns)
		}
	})

	It("warns about a decision that has already expired", func() {
		ns := newNamespace()
		w := newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{
			TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}})
		w.Spec.Decisions = []phiguardv1alpha1.Decision{{
			Safeguard: phiguardv1alpha1.TransmissionSecure, Kind: phiguardv1alpha1.DecisionNotReasonable,
			Justification: "traffic stays on an isolated node pool", ApprovedBy: "ciso",
			Expires: metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second)),
		}}
		warnings.take()
		Expect(k8s.Create(ctx, w)).To(Succeed())
		Expect(warnings.take()).To(ContainElement(ContainSubstring("the decision for TransmissionSecure expired at")))
	})
})
