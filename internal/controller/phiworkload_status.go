package controller

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// outcome is one safeguard's contribution to status.
type outcome struct {
	name   phiguardv1alpha1.SafeguardName
	mode   phiguardv1alpha1.Mode
	source phiguardv1alpha1.SettingSource
	result safeguard.Result
}

// computeStatus returns the status for the given outcomes, starting from the
// previous status so that condition transition times survive unchanged results.
// When stalled is set, the outcomes are the safeguards left unevaluated, and
// Stalled and Ready carry its reason. It is a pure function: no client, no
// clock (transition times come from now).
func computeStatus(prev phiguardv1alpha1.PHIWorkloadStatus, generation int64, policy string, pods int,
	outcomes []outcome, stalled *safeguard.StalledError, now metav1.Time) phiguardv1alpha1.PHIWorkloadStatus {
	st := *prev.DeepCopy()
	st.MatchedPods = int32(pods) //nolint:gosec // pod counts fit in int32.
	st.Policy = policy

	if stalled == nil {
		meta.RemoveStatusCondition(&st.Conditions, phiguardv1alpha1.StalledCondition)
	}
	var failing, unknown []string
	holding, complete := 0, true
	st.Safeguards = make([]phiguardv1alpha1.SafeguardStatus, 0, len(outcomes))
	for _, o := range outcomes {
		rule := safeguard.RuleFor(o.name)
		r := o.result
		if r.Err != nil {
			complete = false
			if r.Reason == "" {
				r.Status, r.Reason, r.Message = metav1.ConditionUnknown, phiguardv1alpha1.ReasonEvaluationError, r.Err.Error()
			}
		}
		setCondition(&st, string(o.name), r.Status, r.Reason, r.Message, generation, now)
		st.Safeguards = append(st.Safeguards, phiguardv1alpha1.SafeguardStatus{
			Name: o.name, Section: rule.Section, Specification: rule.Specification,
			Mode: o.mode, ModeSource: o.source, Status: r.Status, Reason: r.Reason,
		})
		switch r.Status {
		case metav1.ConditionTrue:
			holding++
		case metav1.ConditionFalse:
			failing = append(failing, string(o.name))
		default:
			unknown = append(unknown, string(o.name))
		}
	}
	st.Score = fmt.Sprintf("%d/%d", holding, len(outcomes))

	switch {
	case stalled != nil:
		setCondition(&st, phiguardv1alpha1.StalledCondition, metav1.ConditionTrue, stalled.Reason, stalled.Error(), generation, now)
		setCondition(&st, phiguardv1alpha1.ReadyCondition, metav1.ConditionFalse, stalled.Reason, stalled.Error(), generation, now)
		st.Compliance = phiguardv1alpha1.NonCompliant
		// The generation was fully handled: it cannot be acted on until it changes.
		st.ObservedGeneration = generation
		return st
	case len(failing) > 0:
		st.Compliance = phiguardv1alpha1.NonCompliant
		msg := "failing: " + strings.Join(failing, ", ")
		if len(unknown) > 0 {
			msg += "; not evaluated: " + strings.Join(unknown, ", ")
		}
		setCondition(&st, phiguardv1alpha1.ReadyCondition, metav1.ConditionFalse, phiguardv1alpha1.SafeguardsFailingReason, msg, generation, now)
	case len(unknown) > 0:
		st.Compliance = phiguardv1alpha1.Pending
		setCondition(&st, phiguardv1alpha1.ReadyCondition, metav1.ConditionFalse, phiguardv1alpha1.SafeguardsNotEvaluatedReason,
			"not evaluated: "+strings.Join(unknown, ", "), generation, now)
	default:
		st.Compliance = phiguardv1alpha1.Compliant
		setCondition(&st, phiguardv1alpha1.ReadyCondition, metav1.ConditionTrue, phiguardv1alpha1.CompliantReason,
			fmt.Sprintf("all %d safeguards hold", len(outcomes)), generation, now)
	}
	// observedGeneration moves only when every safeguard finished, so that a
	// reader never takes a half-evaluated generation for a settled one.
	if complete {
		st.ObservedGeneration = generation
	}
	return st
}

func setCondition(st *phiguardv1alpha1.PHIWorkloadStatus, typ string, status metav1.ConditionStatus,
	reason, message string, generation int64, now metav1.Time) {
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: truncate(message, 32768),
		ObservedGeneration: generation, LastTransitionTime: now,
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
