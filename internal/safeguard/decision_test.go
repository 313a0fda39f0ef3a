package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func TestEvaluateDecision(t *testing.T) {
	now := time.Date(2030, 6, 1, 9, 0, 0, 0, time.UTC)
	decision := func(expires time.Time) *phiguardv1alpha1.Decision {
		return &phiguardv1alpha1.Decision{
			Safeguard: phiguardv1alpha1.EncryptedAtRest, Kind: phiguardv1alpha1.DecisionAlternative,
			Justification: "the SAN encrypts every block it writes", ApprovedBy: "ciso",
			Expires: metav1.NewTime(expires),
		}
	}
	cases := []struct {
		name     string
		safe     phiguardv1alpha1.SafeguardName
		decision *phiguardv1alpha1.Decision
		status   metav1.ConditionStatus
		reason   string
		message  string
		requeue  time.Duration
	}{
		{"valid decision", phiguardv1alpha1.EncryptedAtRest, decision(now.Add(48 * time.Hour)),
			metav1.ConditionTrue, phiguardv1alpha1.ReasonDocumentedDecision, "approved by ciso, valid until 2030-06-03T09:00:00Z", 48 * time.Hour},
		{"expires this instant", phiguardv1alpha1.EncryptedAtRest, decision(now),
			metav1.ConditionFalse, phiguardv1alpha1.ReasonDecisionExpired, "expired at 2030-06-01T09:00:00Z; review and renew it", 0},
		{"expired", phiguardv1alpha1.EncryptedAtRest, decision(now.Add(-time.Hour)),
			metav1.ConditionFalse, phiguardv1alpha1.ReasonDecisionExpired, "expired", 0},
		{"no decision", phiguardv1alpha1.TransmissionSecure, nil,
			metav1.ConditionFalse, phiguardv1alpha1.ReasonDecisionMissing, "TransmissionSecure is off without a documented decision", 0},
		{"required safeguard, even with a decision", phiguardv1alpha1.AuditLogging, decision(now.Add(time.Hour)),
			metav1.ConditionFalse, phiguardv1alpha1.ReasonRequiredSafeguardOff, "AuditLogging is Required by HIPAA (§164.312(b))", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := EvaluateDecision(tc.safe, New(Options{}).Rule(tc.safe), tc.decision, now)
			g.Expect(r.Status).To(Equal(tc.status))
			g.Expect(r.Reason).To(Equal(tc.reason))
			g.Expect(r.Message).To(ContainSubstring(tc.message))
			g.Expect(r.RequeueAfter).To(Equal(tc.requeue))
		})
	}
}
