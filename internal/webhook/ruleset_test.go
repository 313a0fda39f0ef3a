package webhook_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Covers the PHIPolicy's ruleset at admission: under ProposedRule2025 every
// safeguard is Required, so a request that turns one off (or adds or changes
// the decision that does) is refused naming the rule; a workload admitted
// before keeps its other changes, with a warning; a decision that turns
// nothing off is unaffected.
var _ = Describe("Ruleset at admission", Ordered, func() {
	const timeout, poll = 10 * time.Second, 50 * time.Millisecond
	const refusal = `admission webhook "vphiworkload.phiguard.io" denied the request: ` +
		"the decision for TransmissionSecure would turn it off, which PHIPolicy default does not allow: " +
		"under ruleset ProposedRule2025 (HHS NPRM 90 FR 898) every safeguard is Required: no decision turns one off; " +
		"set the mode to Audit or Enforce (or leave it empty to inherit) and remove the decision"

	decision := func(safeguard phiguardv1alpha1.SafeguardName) phiguardv1alpha1.Decision {
		return phiguardv1alpha1.Decision{Safeguard: safeguard, Kind: phiguardv1alpha1.DecisionNotReasonable,
			Justification: "traffic stays on an isolated node pool", ApprovedBy: "ciso@clinic.example",
			Expires: metav1.NewTime(time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second))}
	}
	// offUnderDecision turns TransmissionSecure off under a decision.
	offUnderDecision := func(ns, name string) *phiguardv1alpha1.PHIWorkload {
		return &phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: records},
				SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
					TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}},
				Decisions: []phiguardv1alpha1.Decision{decision(phiguardv1alpha1.TransmissionSecure)}},
		}
	}
	var ns string
	var admittedBefore *phiguardv1alpha1.PHIWorkload
	policy := &phiguardv1alpha1.PHIPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
		Spec:       phiguardv1alpha1.PHIPolicySpec{Ruleset: phiguardv1alpha1.RulesetProposedRule2025},
	}

	BeforeAll(func() {
		ns = newNamespace()
		By("under the rule in force, a decision turns an Addressable safeguard off")
		admittedBefore = offUnderDecision(ns, "admitted-before")
		Eventually(func() error { return k8s.Create(ctx, admittedBefore.DeepCopy()) }, timeout, poll).Should(Succeed())

		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })
	})

	It("refuses a decision that turns a safeguard off, naming the rule, and records the denial", func() {
		w := offUnderDecision(ns, "records")
		// A dry run until the webhook's cache holds the policy: it stores
		// nothing, so an early admission leaves nothing behind.
		Eventually(func() error { return k8s.Create(ctx, w.DeepCopy(), client.DryRunAll) }, timeout, poll).Should(MatchError(refusal))
		Expect(k8s.Create(ctx, w.DeepCopy())).To(MatchError(refusal))

		Eventually(func(g Gomega) {
			g.Expect(admissionEvents(g, w)).To(ContainElement(And(
				HaveField("Reason", phiguardv1alpha1.ReasonAdmissionDenied), HaveField("Type", corev1.EventTypeWarning),
				HaveField("Note", MatchRegexp(`^denied .*'s create of PHIWorkload `+ns+`/records: the decision for TransmissionSecure would turn it off, `+
					`which PHIPolicy default does not allow: under ruleset ProposedRule2025 \(HHS NPRM 90 FR 898\) every safeguard is Required`)))))
		}, timeout, poll).Should(Succeed())

		By("the same workload with the safeguard in Audit is admitted")
		w.Spec.TransmissionSecurity.Mode = phiguardv1alpha1.ModeAudit
		w.Spec.Decisions = nil
		Expect(k8s.Create(ctx, w)).To(Succeed())
	})

	It("admits a decision that turns nothing off", func() {
		w := offUnderDecision(ns, "decision-only")
		w.Spec.TransmissionSecurity.Mode = phiguardv1alpha1.ModeAudit
		warnings.take()
		Expect(k8s.Create(ctx, w)).To(Succeed())
		Expect(warnings.take()).To(BeEmpty())
	})

	It("lets a workload admitted before change what is not its decision, with a warning, and refuses a changed decision", func() {
		got := &phiguardv1alpha1.PHIWorkload{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(admittedBefore), got)).To(Succeed())
		got.Labels = map[string]string{"team": "records"}
		warnings.take()
		Expect(k8s.Update(ctx, got)).To(Succeed())
		Expect(warnings.take()).To(ConsistOf("TransmissionSecure is off under a decision that ruleset ProposedRule2025 (HHS NPRM 90 FR 898) " +
			"does not recognise: it runs in Audit and is judged, and counts as it is found; set its mode to Audit or Enforce and remove the decision"))

		By("renewing the decision is refused")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(admittedBefore), got)).To(Succeed())
		got.Spec.Decisions[0].Expires = metav1.NewTime(got.Spec.Decisions[0].Expires.Add(24 * time.Hour))
		Expect(k8s.Update(ctx, got)).To(MatchError(refusal))
	})

	It("admits the decision again once the policy returns to the rule in force", func() {
		Expect(k8s.Patch(ctx, policy, client.RawPatch(client.Merge.Type(), []byte(`{"spec":{"ruleset":"SecurityRule2013"}}`)))).To(Succeed())
		Eventually(func() error { return k8s.Create(ctx, offUnderDecision(ns, "after")) }, timeout, poll).Should(Succeed())
	})
})
