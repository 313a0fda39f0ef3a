package safeguard

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Covers the rules per ruleset: each safeguard states its section under the
// Security Rule in force and under HHS's proposed update, and the registry
// answers either; under the proposal every safeguard is Required, and an Off
// runs in Audit.

func TestRegistryAnswersEachSafeguardsRuleUnderEitherRuleset(t *testing.T) {
	g := NewWithT(t)
	want := []struct {
		name          phiguardv1alpha1.SafeguardName
		current, nprm string
		currentSpec   phiguardv1alpha1.Specification
	}{
		{phiguardv1alpha1.NetworkIsolated, "§164.312(e)(1)", "§164.308(a)(10)", phiguardv1alpha1.Required},
		{phiguardv1alpha1.EncryptedAtRest, "§164.312(a)(2)(iv)", "§164.312(b)", phiguardv1alpha1.Addressable},
		{phiguardv1alpha1.BackupScheduled, "§164.308(a)(7)(ii)(A)", "§164.312(i)", phiguardv1alpha1.Required},
		{phiguardv1alpha1.AuditLogging, "§164.312(b)", "§164.312(d)", phiguardv1alpha1.Required},
		{phiguardv1alpha1.TransmissionSecure, "§164.312(e)(2)(ii)", "§164.312(g)", phiguardv1alpha1.Addressable},
		{phiguardv1alpha1.AccessControlled, "§164.312(a)(1)", "§164.312(a)", phiguardv1alpha1.Required},
		{phiguardv1alpha1.IntegrityProtected, "§164.312(c)(1)", "§164.312(c)", phiguardv1alpha1.Required},
		{phiguardv1alpha1.Available, "§164.308(a)(7)(ii)(C)", "§164.308(a)(13)", phiguardv1alpha1.Required},
	}
	reg := New(Options{})
	g.Expect(reg.Names()).To(HaveLen(len(want)))
	for i, name := range reg.Names() {
		w := want[i]
		g.Expect(name).To(Equal(w.name))

		current := reg.RuleUnder(name, phiguardv1alpha1.RulesetSecurityRule2013)
		g.Expect(current.Section).To(Equal(w.current), string(name))
		g.Expect(current.Specification).To(Equal(w.currentSpec), string(name))
		g.Expect(reg.Rule(name)).To(Equal(current), "Rule is the rule in force: %s", name)
		g.Expect(reg.RuleUnder(name, "")).To(Equal(current), "no ruleset is the default: %s", name)

		proposed := reg.RuleUnder(name, phiguardv1alpha1.RulesetProposedRule2025)
		g.Expect(proposed.Section).To(Equal(w.nprm), string(name))
		g.Expect(proposed.Specification).To(Equal(phiguardv1alpha1.Required), "nothing is Addressable under the proposal: %s", name)
		g.Expect(proposed.Summary).To(Equal(current.Summary), string(name))
	}
	g.Expect(reg.RuleUnder("NoSuchSafeguard", phiguardv1alpha1.RulesetProposedRule2025)).To(Equal(Rule{}))
}

func TestEffectiveRunsOffInAuditUnderTheProposedRule(t *testing.T) {
	workload := phiguardv1alpha1.SafeguardSettings{
		EncryptionAtRest:     &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff},
		TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff},
		Integrity:            &phiguardv1alpha1.IntegritySpec{Mode: phiguardv1alpha1.ModeEnforce},
	}
	policy := func(rs phiguardv1alpha1.Ruleset, minimums ...phiguardv1alpha1.MinimumMode) *phiguardv1alpha1.PHIPolicy {
		return &phiguardv1alpha1.PHIPolicy{Spec: phiguardv1alpha1.PHIPolicySpec{Ruleset: rs, MinimumModes: minimums}}
	}

	t.Run("SecurityRule2013 keeps Off", func(t *testing.T) {
		g := NewWithT(t)
		got, sources, err := New(Options{}).Effective(&workload, policy(phiguardv1alpha1.RulesetSecurityRule2013))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.EncryptionAtRest.Mode).To(Equal(phiguardv1alpha1.ModeOff))
		g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.SourceWorkload))
	})
	t.Run("ProposedRule2025 runs Off in Audit, set by the policy", func(t *testing.T) {
		g := NewWithT(t)
		got, sources, err := New(Options{}).Effective(&workload, policy(phiguardv1alpha1.RulesetProposedRule2025))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.EncryptionAtRest.Mode).To(Equal(phiguardv1alpha1.ModeAudit))
		g.Expect(got.TransmissionSecurity.Mode).To(Equal(phiguardv1alpha1.ModeAudit))
		g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.SourcePolicy))
		g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.TransmissionSecure, phiguardv1alpha1.SourcePolicy))
		// What is not off is left alone.
		g.Expect(got.Integrity.Mode).To(Equal(phiguardv1alpha1.ModeEnforce))
		g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.IntegrityProtected, phiguardv1alpha1.SourceWorkload))
		g.Expect(got.NetworkIsolation.Mode).To(Equal(phiguardv1alpha1.ModeEnforce))
		g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.NetworkIsolated, phiguardv1alpha1.SourceDefault))
		// The workload's own settings are not modified.
		g.Expect(workload.EncryptionAtRest.Mode).To(Equal(phiguardv1alpha1.ModeOff))
	})
	t.Run("a minimum above Audit wins", func(t *testing.T) {
		g := NewWithT(t)
		got, _, err := New(Options{}).Effective(&workload, policy(phiguardv1alpha1.RulesetProposedRule2025,
			phiguardv1alpha1.MinimumMode{Safeguard: phiguardv1alpha1.EncryptedAtRest, Mode: phiguardv1alpha1.ModeEnforce}))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.EncryptionAtRest.Mode).To(Equal(phiguardv1alpha1.ModeEnforce))
		g.Expect(got.TransmissionSecurity.Mode).To(Equal(phiguardv1alpha1.ModeAudit))
	})
}

func TestOffNotRecognisedOnlyUnderTheProposedRuleForTheWorkloadsOwnOff(t *testing.T) {
	g := NewWithT(t)
	w := &phiguardv1alpha1.PHIWorkload{Spec: phiguardv1alpha1.PHIWorkloadSpec{SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
		EncryptionAtRest: &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff},
	}}}
	proposed := &phiguardv1alpha1.PHIPolicy{Spec: phiguardv1alpha1.PHIPolicySpec{Ruleset: phiguardv1alpha1.RulesetProposedRule2025}}
	current := &phiguardv1alpha1.PHIPolicy{Spec: phiguardv1alpha1.PHIPolicySpec{Ruleset: phiguardv1alpha1.RulesetSecurityRule2013}}

	g.Expect(OffNotRecognised(proposed, w, phiguardv1alpha1.EncryptedAtRest)).To(BeTrue())
	g.Expect(OffNotRecognised(proposed, w, phiguardv1alpha1.TransmissionSecure)).To(BeFalse(), "not off")
	g.Expect(OffNotRecognised(current, w, phiguardv1alpha1.EncryptedAtRest)).To(BeFalse())
	g.Expect(OffNotRecognised(nil, w, phiguardv1alpha1.EncryptedAtRest)).To(BeFalse(), "no policy is the rule in force")
	g.Expect((&phiguardv1alpha1.PHIPolicy{}).Ruleset()).To(Equal(phiguardv1alpha1.RulesetSecurityRule2013))
}

func TestDecisionNotRecognisedKeepsTheJudgementAndSaysWhy(t *testing.T) {
	d := &phiguardv1alpha1.Decision{Safeguard: phiguardv1alpha1.EncryptedAtRest, Kind: phiguardv1alpha1.DecisionAlternative,
		ApprovedBy: "ciso", Expires: metav1.NewTime(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))}
	judged := Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonUnencryptedVolumes,
		Message: "1 of 1 persistent volume claims are not encrypted at rest: data", RequeueAfter: time.Minute}

	t.Run("with a decision", func(t *testing.T) {
		g := NewWithT(t)
		got := DecisionNotRecognised(phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.RulesetProposedRule2025, d, phiguardv1alpha1.ModeAudit, judged)
		g.Expect(got.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(got.Reason).To(Equal(phiguardv1alpha1.ReasonDecisionNotRecognised))
		g.Expect(got.RequeueAfter).To(Equal(time.Minute))
		g.Expect(got.Message).To(Equal("EncryptedAtRest is turned off under a decision (kind Alternative, approved by ciso) that " +
			"ruleset ProposedRule2025 (HHS NPRM 90 FR 898) does not recognise: every safeguard is Required there. " +
			"Set its mode to Audit or Enforce and remove the decision. Meanwhile it runs in Audit and is judged not to hold: " +
			"UnencryptedVolumes: 1 of 1 persistent volume claims are not encrypted at rest: data"))
	})
	t.Run("without a decision, judged to hold", func(t *testing.T) {
		g := NewWithT(t)
		holds := Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonEncryptedInTransit, Message: "all encrypted"}
		got := DecisionNotRecognised(phiguardv1alpha1.TransmissionSecure, phiguardv1alpha1.RulesetProposedRule2025, nil, phiguardv1alpha1.ModeEnforce, holds)
		g.Expect(got.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(got.Reason).To(Equal(phiguardv1alpha1.ReasonDecisionNotRecognised))
		g.Expect(got.Message).To(Equal("TransmissionSecure is turned off, which ruleset ProposedRule2025 (HHS NPRM 90 FR 898) does not allow: " +
			"every safeguard is Required there. Set its mode to Audit or Enforce. Meanwhile it runs in Enforce and is judged to hold: " +
			"EncryptedInTransit: all encrypted"))
	})
	t.Run("an error decides", func(t *testing.T) {
		g := NewWithT(t)
		failed := Result{Status: metav1.ConditionUnknown, Err: errors.New("listing claims: timeout")}
		g.Expect(DecisionNotRecognised(phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.RulesetProposedRule2025, d, phiguardv1alpha1.ModeAudit, failed)).
			To(Equal(failed))
	})
}
