package controller

import (
	"errors"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

func outcomes(results ...metav1.ConditionStatus) []outcome {
	reg := safeguard.New(safeguard.Options{})
	out := make([]outcome, 0, len(results))
	for i, st := range results {
		out = append(out, outcome{
			name: reg[i].Name(), rule: reg[i].Rule(), mode: phiguardv1alpha1.ModeEnforce, source: phiguardv1alpha1.SourceDefault,
			result: safeguard.Result{Status: st, Reason: "Because", Message: "m"},
		})
	}
	return out
}

func allTrue() []metav1.ConditionStatus {
	out := make([]metav1.ConditionStatus, len(safeguard.New(safeguard.Options{}).Names()))
	for i := range out {
		out[i] = metav1.ConditionTrue
	}
	return out
}

func TestComputeStatusSummary(t *testing.T) {
	T, F, U := metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown
	cases := []struct {
		name       string
		results    []metav1.ConditionStatus
		compliance phiguardv1alpha1.Compliance
		ready      metav1.ConditionStatus
		reason     string
		score      string
		message    string
	}{
		{"all hold", allTrue(), phiguardv1alpha1.Compliant, T, phiguardv1alpha1.CompliantReason, "8/8", "all 8 safeguards hold"},
		{"one fails", []metav1.ConditionStatus{T, T, F, T, T, T, T, T}, phiguardv1alpha1.NonCompliant, F,
			phiguardv1alpha1.SafeguardsFailingReason, "7/8", "failing: BackupScheduled"},
		{"fails and unknowns", []metav1.ConditionStatus{U, F, T, T, T, T, T, U}, phiguardv1alpha1.NonCompliant, F,
			phiguardv1alpha1.SafeguardsFailingReason, "5/8", "failing: EncryptedAtRest; not evaluated: NetworkIsolated, Available"},
		{"unknown is never compliant", []metav1.ConditionStatus{T, T, T, T, T, T, T, U}, phiguardv1alpha1.Pending, F,
			phiguardv1alpha1.SafeguardsNotEvaluatedReason, "7/8", "not evaluated: Available"},
	}
	now := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			st := computeStatus(phiguardv1alpha1.PHIWorkloadStatus{}, statusInput{generation: 3, policy: "default", pods: 2, outcomes: outcomes(tc.results...)}, now)
			g.Expect(st.Compliance).To(Equal(tc.compliance))
			g.Expect(st.Score).To(Equal(tc.score))
			g.Expect(st.ObservedGeneration).To(BeEquivalentTo(3))
			g.Expect(st.MatchedPods).To(BeEquivalentTo(2))
			g.Expect(st.Policy).To(Equal("default"))
			g.Expect(st.Safeguards).To(HaveLen(len(tc.results)))
			g.Expect(st.Conditions).To(HaveLen(len(tc.results) + 1))
			ready := meta.FindStatusCondition(st.Conditions, phiguardv1alpha1.ReadyCondition)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(tc.ready))
			g.Expect(ready.Reason).To(Equal(tc.reason))
			g.Expect(ready.Message).To(Equal(tc.message))
		})
	}
}

func TestComputeStatusKeepsTransitionTimes(t *testing.T) {
	g := NewWithT(t)
	t0 := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	first := computeStatus(phiguardv1alpha1.PHIWorkloadStatus{}, statusInput{generation: 1, outcomes: outcomes(allTrue()...)}, t0)
	again := computeStatus(first, statusInput{generation: 1, outcomes: outcomes(allTrue()...)}, t1)
	g.Expect(again).To(Equal(first), "an unchanged result yields an identical status, so nothing is written")

	flipped := outcomes(allTrue()...)
	flipped[0].result.Status = metav1.ConditionFalse
	next := computeStatus(first, statusInput{generation: 1, outcomes: flipped}, t1)
	g.Expect(meta.FindStatusCondition(next.Conditions, "NetworkIsolated").LastTransitionTime).To(Equal(t1))
	g.Expect(meta.FindStatusCondition(next.Conditions, "Available").LastTransitionTime).To(Equal(t0))
}

func TestComputeStatusStalled(t *testing.T) {
	g := NewWithT(t)
	now := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	prev := computeStatus(phiguardv1alpha1.PHIWorkloadStatus{}, statusInput{generation: 1, outcomes: outcomes(allTrue()...)}, now)
	stalled := safeguard.AsStalled(safeguard.Stalled(phiguardv1alpha1.ReasonInvalidSelector, "spec.selector is invalid: %s", "x"))

	unevaluated := outcomes(allTrue()...)
	for i := range unevaluated {
		unevaluated[i].result = safeguard.Result{Status: metav1.ConditionUnknown, Reason: stalled.Reason, Message: "not evaluated"}
	}
	st := computeStatus(prev, statusInput{generation: 2, outcomes: unevaluated, stalled: stalled}, now)
	g.Expect(st.Compliance).To(Equal(phiguardv1alpha1.NonCompliant))
	g.Expect(st.Score).To(Equal("0/8"), "no earlier result stays on display")
	g.Expect(st.Safeguards).To(HaveEach(HaveField("Status", metav1.ConditionUnknown)))
	g.Expect(meta.FindStatusCondition(st.Conditions, "BackupScheduled")).To(And(
		HaveField("Status", metav1.ConditionUnknown), HaveField("Reason", phiguardv1alpha1.ReasonInvalidSelector),
		HaveField("ObservedGeneration", BeEquivalentTo(2))))
	g.Expect(st.ObservedGeneration).To(BeEquivalentTo(2), "a stalled generation has been fully handled")
	g.Expect(meta.IsStatusConditionTrue(st.Conditions, phiguardv1alpha1.StalledCondition)).To(BeTrue())
	g.Expect(meta.FindStatusCondition(st.Conditions, phiguardv1alpha1.ReadyCondition)).To(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", phiguardv1alpha1.ReasonInvalidSelector)))

	recovered := computeStatus(st, statusInput{generation: 3, outcomes: outcomes(allTrue()...)}, now)
	g.Expect(meta.FindStatusCondition(recovered.Conditions, phiguardv1alpha1.StalledCondition)).To(BeNil())
	g.Expect(recovered.Compliance).To(Equal(phiguardv1alpha1.Compliant))
}

func TestComputeStatusTransientErrorHoldsGeneration(t *testing.T) {
	g := NewWithT(t)
	now := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	res := outcomes(allTrue()...)
	res[2].result = safeguard.Result{Err: errors.New("the server is currently unable to handle the request")}

	st := computeStatus(phiguardv1alpha1.PHIWorkloadStatus{ObservedGeneration: 4}, statusInput{generation: 5, outcomes: res}, now)
	g.Expect(st.ObservedGeneration).To(BeEquivalentTo(4), "a half-evaluated generation is not observed")
	c := meta.FindStatusCondition(st.Conditions, string(safeguard.New(safeguard.Options{}).Names()[2]))
	g.Expect(c.Status).To(Equal(metav1.ConditionUnknown))
	g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonEvaluationError))
	g.Expect(c.Message).To(ContainSubstring("unable to handle"))
	g.Expect(st.Compliance).To(Equal(phiguardv1alpha1.Pending))
}

// BenchmarkComputeStatusUnchanged measures the status computation of a steady
// reconcile: every result the same as the stored status.
func BenchmarkComputeStatusUnchanged(b *testing.B) {
	now := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	res := outcomes(allTrue()...)
	prev := computeStatus(phiguardv1alpha1.PHIWorkloadStatus{}, statusInput{generation: 1, policy: "default", pods: 3, outcomes: res}, now)
	b.ReportAllocs()
	for b.Loop() {
		_ = computeStatus(prev, statusInput{generation: 1, policy: "default", pods: 3, outcomes: res}, now)
	}
}

func TestComputeStatusStalledSafeguardStallsTheWorkload(t *testing.T) {
	g := NewWithT(t)
	now := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	res := outcomes(allTrue()...)
	stalled := safeguard.AsStalled(safeguard.Stalled(phiguardv1alpha1.ReasonInvalidSchedule, "backup.schedule %q is not a valid cron schedule", "61 * * * *"))
	res[2].result = safeguard.Result{Err: stalled}

	st := computeStatus(phiguardv1alpha1.PHIWorkloadStatus{ObservedGeneration: 1}, statusInput{generation: 2, outcomes: res, stalled: stalled}, now)
	g.Expect(meta.FindStatusCondition(st.Conditions, phiguardv1alpha1.StalledCondition)).To(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", phiguardv1alpha1.ReasonInvalidSchedule)))
	g.Expect(meta.FindStatusCondition(st.Conditions, phiguardv1alpha1.ReadyCondition)).To(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", phiguardv1alpha1.ReasonInvalidSchedule)))
	g.Expect(meta.FindStatusCondition(st.Conditions, string(phiguardv1alpha1.BackupScheduled))).To(And(
		HaveField("Status", metav1.ConditionUnknown), HaveField("Reason", phiguardv1alpha1.ReasonInvalidSchedule),
		HaveField("Message", ContainSubstring(`"61 * * * *" is not a valid cron schedule`))))
	g.Expect(meta.FindStatusCondition(st.Conditions, string(phiguardv1alpha1.NetworkIsolated))).To(
		HaveField("Status", metav1.ConditionTrue), "the other safeguards are still evaluated")
	g.Expect(st.Score).To(Equal("7/8"))
	g.Expect(st.Compliance).To(Equal(phiguardv1alpha1.NonCompliant))
	g.Expect(st.ObservedGeneration).To(BeEquivalentTo(2), "a stalled generation has been fully handled")
	g.Expect(meta.FindStatusCondition(st.Conditions, phiguardv1alpha1.ReconcilingCondition)).To(BeNil())
}

func TestComputeStatusFailureKeepsResultsAndSaysWhyNotReady(t *testing.T) {
	g := NewWithT(t)
	now := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	prev := computeStatus(phiguardv1alpha1.PHIWorkloadStatus{}, statusInput{generation: 1, pods: 2, outcomes: outcomes(allTrue()...)}, now)
	g.Expect(meta.IsStatusConditionTrue(prev.Conditions, phiguardv1alpha1.ReadyCondition)).To(BeTrue())

	later := metav1.NewTime(now.Add(time.Minute))
	failure := &reasonedError{Reason: phiguardv1alpha1.ReasonReadFailed, Err: errors.New("listing pods of clinic/records: etcdserver: request timed out")}
	st := computeStatus(prev, statusInput{generation: 2, failure: failure}, later)
	g.Expect(meta.FindStatusCondition(st.Conditions, phiguardv1alpha1.ReadyCondition)).To(And(
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", phiguardv1alpha1.ReasonReadFailed),
		HaveField("Message", ContainSubstring("request timed out")), HaveField("LastTransitionTime", later)))
	g.Expect(meta.FindStatusCondition(st.Conditions, phiguardv1alpha1.ReconcilingCondition)).To(And(
		HaveField("Status", metav1.ConditionTrue), HaveField("Reason", phiguardv1alpha1.ReasonProgressing),
		HaveField("Message", Equal("generation 2 is not fully evaluated yet (observedGeneration 1)"))))
	g.Expect(st.ObservedGeneration).To(BeEquivalentTo(1))
	g.Expect(st.Safeguards).To(Equal(prev.Safeguards), "the last results stay, under a Ready that says they may be old")
	g.Expect(st.MatchedPods).To(BeEquivalentTo(2))

	done := computeStatus(st, statusInput{generation: 2, pods: 2, outcomes: outcomes(allTrue()...)}, later)
	g.Expect(meta.FindStatusCondition(done.Conditions, phiguardv1alpha1.ReconcilingCondition)).To(BeNil())
	g.Expect(meta.FindStatusCondition(done.Conditions, phiguardv1alpha1.ReadyCondition)).To(
		HaveField("Reason", phiguardv1alpha1.CompliantReason))
}

func TestDecisionRecordsNameTheApproverAndTheRequester(t *testing.T) {
	g := NewWithT(t)
	w := &phiguardv1alpha1.PHIWorkload{}
	g.Expect(decisionRecords(w)).To(BeNil(), "no decisions, no records: a workload without any is not written")

	w.Annotations = map[string]string{phiguardv1alpha1.DecisionsRecordedByAnnotation: `{"TransmissionSecure":"alice"}`}
	w.Spec.Decisions = []phiguardv1alpha1.Decision{
		{Safeguard: phiguardv1alpha1.TransmissionSecure, ApprovedBy: "ciso@clinic.example"},
		{Safeguard: phiguardv1alpha1.EncryptedAtRest, ApprovedBy: "ciso@clinic.example"},
	}
	g.Expect(decisionRecords(w)).To(Equal([]phiguardv1alpha1.DecisionStatus{
		{Safeguard: phiguardv1alpha1.TransmissionSecure, ApprovedBy: "ciso@clinic.example", RecordedBy: "alice"},
		{Safeguard: phiguardv1alpha1.EncryptedAtRest, ApprovedBy: "ciso@clinic.example"},
	}))
	now := metav1.NewTime(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	st := computeStatus(phiguardv1alpha1.PHIWorkloadStatus{}, statusInput{generation: 1, outcomes: outcomes(allTrue()...), decisions: decisionRecords(w)}, now)
	g.Expect(st.Decisions).To(HaveLen(2))
}
