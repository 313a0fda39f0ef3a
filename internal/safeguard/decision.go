package safeguard

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// EvaluateDecision decides the result of a safeguard whose mode is Off: True
// under a valid decision (with a requeue at its expiry), False otherwise. The API
// rejects the False cases on admission; this is the same rule, applied again so
// that nothing that got past admission is ever reported compliant.
func EvaluateDecision(name phiguardv1alpha1.SafeguardName, rule Rule, d *phiguardv1alpha1.Decision, now time.Time) Result {
	switch {
	case rule.Specification == phiguardv1alpha1.Required:
		return Result{
			Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonRequiredSafeguardOff,
			Message: fmt.Sprintf("%s is Required by HIPAA (%s) and cannot be turned off; set its mode to Enforce or Audit",
				name, rule.Section),
		}
	case d == nil:
		return Result{
			Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonDecisionMissing,
			Message: fmt.Sprintf("%s is off without a documented decision; add one to spec.decisions or set its mode to Enforce or Audit",
				name),
		}
	case !now.Before(d.Expires.Time):
		return Result{
			Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonDecisionExpired,
			Message: fmt.Sprintf("the decision (kind %s) approved by %s expired at %s; review and renew it, or turn %s on",
				d.Kind, d.ApprovedBy, d.Expires.UTC().Format(time.RFC3339), name),
		}
	default:
		return Result{
			Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonDocumentedDecision,
			Message: fmt.Sprintf("off under a documented decision (kind %s) approved by %s, valid until %s",
				d.Kind, d.ApprovedBy, d.Expires.UTC().Format(time.RFC3339)),
			RequeueAfter: d.Expires.Sub(now),
		}
	}
}
