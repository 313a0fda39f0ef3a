// Package policyreport publishes the compliance of PHIWorkloads as policy
// reports, the format Policy Reporter, Kyverno's UI and other dashboards read:
// in each namespace with PHIWorkloads, one namespaced report with a result per
// workload and safeguard, and one cluster report with a result per workload.
// The reports follow the PHIWorkloads' status; phiguard never reads them back
// as input.
package policyreport

import (
	"cmp"
	"slices"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

const (
	// Policy is the policy of every result, and the name of every report.
	Policy = "phiguard-hipaa"
	// Source is the tool named as the source of every result.
	Source = "phiguard"
	// ComplianceRule is the rule of the cluster report's results, one per workload.
	ComplianceRule = "Compliance"
	// MaxMessageLength bounds a result's message (a condition's message can be
	// long: it lists pods and objects), so that a namespace with many workloads
	// stays well below an object's size limit.
	MaxMessageLength = 512
)

// The outcomes of a result, as both report APIs spell them.
const (
	Pass  = "pass"
	Fail  = "fail"
	Warn  = "warn"
	Error = "error"
	Skip  = "skip"
)

// The severities phiguard uses: a Required safeguard is high, an Addressable one medium.
const (
	SeverityHigh   = "high"
	SeverityMedium = "medium"
)

// Keys of a result's properties.
const (
	PropertyMode               = "mode"
	PropertyReason             = "reason"
	PropertyDecisionApprovedBy = "decisionApprovedBy"
	PropertyDecisionExpires    = "decisionExpires"
	PropertyScore              = "score"
)

// errorReasons are the reasons of an Unknown safeguard that mean phiguard
// failed (to read what it judges, or to evaluate), or that the spec cannot be
// acted on: their results are error rather than skip.
var errorReasons = []string{
	phiguardv1alpha1.ReasonReadFailed,
	phiguardv1alpha1.ReasonEvaluationError,
	phiguardv1alpha1.ReasonInvalidSchedule,
	phiguardv1alpha1.ReasonInvalidSelector,
	phiguardv1alpha1.ReasonInvalidDuration,
}

// Result is one result of a report, in the terms both report APIs share.
type Result struct {
	Rule, Category, Severity, Outcome, Message string
	// Resource is the PHIWorkload the result is about.
	Resource corev1.ObjectReference
	// Properties hold mode, reason and a decision's approver and expiry.
	Properties map[string]string
	// Timestamp is when the condition last changed status: stable across
	// reconciles, so that a steady state writes nothing.
	Timestamp metav1.Time
}

// Summary counts results by outcome.
type Summary struct{ Pass, Fail, Warn, Error, Skip int }

// Summarize counts results by outcome.
func Summarize(results []Result) Summary {
	var s Summary
	for _, r := range results {
		switch r.Outcome {
		case Pass:
			s.Pass++
		case Fail:
			s.Fail++
		case Warn:
			s.Warn++
		case Error:
			s.Error++
		case Skip:
			s.Skip++
		}
	}
	return s
}

// Outcome maps a safeguard's condition to a result: True is pass, except
// under a documented decision (warn: the safeguard is off, knowingly); False
// is fail; Unknown is skip, except for reasons that mean an error (error).
func Outcome(status metav1.ConditionStatus, reason string) string {
	switch status {
	case metav1.ConditionTrue:
		if reason == phiguardv1alpha1.ReasonDocumentedDecision {
			return Warn
		}
		return Pass
	case metav1.ConditionFalse:
		return Fail
	default:
		if slices.Contains(errorReasons, reason) {
			return Error
		}
		return Skip
	}
}

// Severity maps a safeguard's specification to a severity.
func Severity(spec phiguardv1alpha1.Specification) string {
	if spec == phiguardv1alpha1.Required {
		return SeverityHigh
	}
	return SeverityMedium
}

// WorkloadResults returns one result per safeguard in the workload's status
// (none before its first reconcile), in the status's order.
func WorkloadResults(w *phiguardv1alpha1.PHIWorkload) []Result {
	ref := reference(w)
	results := make([]Result, 0, len(w.Status.Safeguards))
	for _, sg := range w.Status.Safeguards {
		r := Result{
			Rule: string(sg.Name), Category: sg.Section, Severity: Severity(sg.Specification),
			Outcome: Outcome(sg.Status, sg.Reason), Resource: ref,
			Properties: map[string]string{PropertyMode: string(sg.Mode), PropertyReason: sg.Reason},
		}
		if c := meta.FindStatusCondition(w.Status.Conditions, string(sg.Name)); c != nil {
			r.Message = Truncate(c.Message, MaxMessageLength)
			r.Timestamp = c.LastTransitionTime
		}
		if i := slices.IndexFunc(w.Spec.Decisions, func(d phiguardv1alpha1.Decision) bool { return d.Safeguard == sg.Name }); i >= 0 {
			d := w.Spec.Decisions[i]
			r.Properties[PropertyDecisionApprovedBy] = d.ApprovedBy
			r.Properties[PropertyDecisionExpires] = d.Expires.UTC().Format(time.RFC3339)
		}
		results = append(results, r)
	}
	return results
}

// ComplianceResult is the cluster report's result for a workload: pass when
// Compliant, fail when NonCompliant, skip while Pending (or never reconciled).
func ComplianceResult(w *phiguardv1alpha1.PHIWorkload) Result {
	r := Result{
		Rule: ComplianceRule, Category: "HIPAA Security Rule", Severity: SeverityHigh, Outcome: Skip,
		Resource: reference(w), Properties: map[string]string{PropertyScore: w.Status.Score},
		Message: "PHIWorkload " + w.Namespace + "/" + w.Name + " is " + cmp.Or(string(w.Status.Compliance), "not evaluated yet"),
	}
	switch w.Status.Compliance {
	case phiguardv1alpha1.Compliant:
		r.Outcome = Pass
	case phiguardv1alpha1.NonCompliant:
		r.Outcome = Fail
	}
	if w.Status.Score != "" {
		r.Message += " (" + w.Status.Score + " safeguards hold)"
	}
	if c := meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition); c != nil {
		r.Timestamp = c.LastTransitionTime
	}
	return r
}

// Truncate cuts s to at most n bytes, on a rune boundary, ending in "…" when cut.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

func reference(w *phiguardv1alpha1.PHIWorkload) corev1.ObjectReference {
	return corev1.ObjectReference{
		APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload",
		Namespace: w.Namespace, Name: w.Name, UID: w.UID,
	}
}
