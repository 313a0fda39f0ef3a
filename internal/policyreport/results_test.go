package policyreport

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func TestOutcome(t *testing.T) {
	tests := []struct {
		status metav1.ConditionStatus
		reason string
		want   string
	}{
		{metav1.ConditionTrue, "NetworkPolicyInPlace", Pass},
		{metav1.ConditionTrue, phiguardv1alpha1.ReasonDocumentedDecision, Warn},
		{metav1.ConditionFalse, phiguardv1alpha1.ReasonDecisionExpired, Fail},
		{metav1.ConditionUnknown, phiguardv1alpha1.ReasonNoPodsSelected, Skip},
		{metav1.ConditionUnknown, phiguardv1alpha1.ReasonReadFailed, Error},
		{metav1.ConditionUnknown, phiguardv1alpha1.ReasonEvaluationError, Error},
		{metav1.ConditionUnknown, phiguardv1alpha1.ReasonInvalidSelector, Error},
		{metav1.ConditionUnknown, phiguardv1alpha1.ReasonNamespaceExempt, Skip},
	}
	for _, tt := range tests {
		t.Run(string(tt.status)+"/"+tt.reason, func(t *testing.T) {
			NewWithT(t).Expect(Outcome(tt.status, tt.reason)).To(Equal(tt.want))
		})
	}
}

func TestSeverity(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Severity(phiguardv1alpha1.Required)).To(Equal(SeverityHigh))
	g.Expect(Severity(phiguardv1alpha1.Addressable)).To(Equal(SeverityMedium))
}

func TestTruncate(t *testing.T) {
	g := NewWithT(t)
	g.Expect(Truncate("short", 10)).To(Equal("short"))
	long := strings.Repeat("é", 600) // two bytes each
	cut := Truncate(long, MaxMessageLength)
	g.Expect(len(cut)).To(BeNumerically("<=", MaxMessageLength))
	g.Expect(cut).To(HaveSuffix("…"))
	g.Expect(strings.TrimSuffix(cut, "…")).To(MatchRegexp("^(é)+$"))
}

func TestWorkloadResults(t *testing.T) {
	g := NewWithT(t)
	changed := metav1.NewTime(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC))
	expires := metav1.NewTime(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC))
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "api", UID: "u1"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{Decisions: []phiguardv1alpha1.Decision{{
			Safeguard: phiguardv1alpha1.EncryptedAtRest, ApprovedBy: "CISO", Expires: expires,
		}}},
		Status: phiguardv1alpha1.PHIWorkloadStatus{
			Conditions: []metav1.Condition{
				{Type: string(phiguardv1alpha1.NetworkIsolated), Status: metav1.ConditionFalse, Reason: "NoNetworkPolicy",
					Message: strings.Repeat("x", 2000), LastTransitionTime: changed},
				{Type: string(phiguardv1alpha1.EncryptedAtRest), Status: metav1.ConditionTrue,
					Reason: phiguardv1alpha1.ReasonDocumentedDecision, Message: "off under a decision", LastTransitionTime: changed},
			},
			Safeguards: []phiguardv1alpha1.SafeguardStatus{
				{Name: phiguardv1alpha1.NetworkIsolated, Section: "§164.312(e)(1)", Specification: phiguardv1alpha1.Required,
					Mode: phiguardv1alpha1.ModeAudit, Status: metav1.ConditionFalse, Reason: "NoNetworkPolicy"},
				{Name: phiguardv1alpha1.EncryptedAtRest, Section: "§164.312(a)(2)(iv)", Specification: phiguardv1alpha1.Addressable,
					Mode: phiguardv1alpha1.ModeOff, Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonDocumentedDecision},
			},
		},
	}
	results := WorkloadResults(w)
	g.Expect(results).To(HaveLen(2))
	g.Expect(results[0].Rule).To(Equal("NetworkIsolated"))
	g.Expect(results[0].Outcome).To(Equal(Fail))
	g.Expect(results[0].Severity).To(Equal(SeverityHigh))
	g.Expect(results[0].Category).To(Equal("§164.312(e)(1)"))
	g.Expect(len(results[0].Message)).To(BeNumerically("<=", MaxMessageLength))
	g.Expect(results[0].Timestamp).To(Equal(changed))
	g.Expect(results[0].Resource.Name).To(Equal("api"))
	g.Expect(results[0].Resource.Kind).To(Equal("PHIWorkload"))
	g.Expect(results[0].Properties).To(Equal(map[string]string{PropertyMode: "Audit", PropertyReason: "NoNetworkPolicy"}))
	g.Expect(results[1].Outcome).To(Equal(Warn))
	g.Expect(results[1].Severity).To(Equal(SeverityMedium))
	g.Expect(results[1].Properties).To(Equal(map[string]string{PropertyMode: "Off",
		PropertyReason: phiguardv1alpha1.ReasonDocumentedDecision, PropertyDecisionApprovedBy: "CISO",
		PropertyDecisionExpires: "2027-01-01T00:00:00Z"}))
	g.Expect(Summarize(results)).To(Equal(Summary{Fail: 1, Warn: 1}))
}

func TestComplianceResult(t *testing.T) {
	g := NewWithT(t)
	w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "api"}}
	g.Expect(ComplianceResult(w).Outcome).To(Equal(Skip))
	w.Status.Compliance, w.Status.Score = phiguardv1alpha1.NonCompliant, "6/8"
	r := ComplianceResult(w)
	g.Expect(r.Outcome).To(Equal(Fail))
	g.Expect(r.Message).To(Equal("PHIWorkload ns/api is NonCompliant (6/8 safeguards hold)"))
	w.Status.Compliance = phiguardv1alpha1.Compliant
	g.Expect(ComplianceResult(w).Outcome).To(Equal(Pass))
}

func TestFormatNamed(t *testing.T) {
	g := NewWithT(t)
	f, err := FormatNamed("openreports")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(f.GVK(f.Namespaced).String()).To(Equal("openreports.io/v1alpha1, Kind=Report"))
	_, err = FormatNamed("nope")
	g.Expect(err).To(HaveOccurred())
}
