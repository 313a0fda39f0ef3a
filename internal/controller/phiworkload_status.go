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
	rule   safeguard.Rule
	mode   phiguardv1alpha1.Mode
	source phiguardv1alpha1.SettingSource
	result safeguard.Result
}

// statusInput is what a reconcile found, as computeStatus reads it.
type statusInput struct {
	generation int64
	// policy names the PHIPolicy that applied ("" for none); pods counts the
	// selected pods.
	policy string
	pods   int
	// outcomes are the safeguards' results (for a stalled scope, every one
	// Unknown with the stalled reason).
	outcomes []outcome
	// stalled, when set, says the spec cannot be acted on: from the scope, or
	// from a safeguard.
	stalled *safeguard.StalledError
	// failure, when set, kept the reconcile from finishing: the safeguards keep
	// their last results and Ready says why.
	failure *reasonedError
	// decisions are the records of the spec's decisions.
	decisions []phiguardv1alpha1.DecisionStatus
}

// decisionRecords lists, for each decision of the spec, who it says approved
// it and who made the request that added or last changed it.
func decisionRecords(w *phiguardv1alpha1.PHIWorkload) []phiguardv1alpha1.DecisionStatus {
	if len(w.Spec.Decisions) == 0 {
		return nil
	}
	recorded := w.DecisionsRecordedBy()
	out := make([]phiguardv1alpha1.DecisionStatus, 0, len(w.Spec.Decisions))
	for _, d := range w.Spec.Decisions {
		out = append(out, phiguardv1alpha1.DecisionStatus{Safeguard: d.Safeguard, ApprovedBy: d.ApprovedBy, RecordedBy: recorded[d.Safeguard]})
	}
	return out
}

// computeStatus returns the status for what a reconcile found, starting from
// the previous status so that condition transition times survive unchanged
// results. It is a pure function: no client, no clock (transition times come
// from now).
func computeStatus(prev phiguardv1alpha1.PHIWorkloadStatus, in statusInput, now metav1.Time) phiguardv1alpha1.PHIWorkloadStatus {
	st := *prev.DeepCopy()
	if in.failure != nil {
		setCondition(&st, phiguardv1alpha1.ReadyCondition, metav1.ConditionFalse, in.failure.Reason,
			"phiguard could not finish evaluating the workload and retries: "+in.failure.Error(), in.generation, now)
		setReconciling(&st, in.generation, now)
		return st
	}
	st.MatchedPods = int32(in.pods) //nolint:gosec // pod counts fit in int32.
	st.Policy = in.policy
	st.Decisions = in.decisions

	if in.stalled == nil {
		meta.RemoveStatusCondition(&st.Conditions, phiguardv1alpha1.StalledCondition)
	}
	var failing, unknown []string
	holding, complete := 0, true
	st.Safeguards = make([]phiguardv1alpha1.SafeguardStatus, 0, len(in.outcomes))
	for _, o := range in.outcomes {
		r := o.result
		if r.Err != nil {
			stalled := safeguard.AsStalled(r.Err)
			switch {
			case stalled != nil:
				// Not evaluated until the spec changes: Unknown, with what to fix.
				r.Status, r.Reason, r.Message = metav1.ConditionUnknown, stalled.Reason, "not evaluated: "+stalled.Error()
			case r.Reason == "":
				complete = false
				r.Status, r.Reason, r.Message = metav1.ConditionUnknown, phiguardv1alpha1.ReasonEvaluationError, r.Err.Error()
			default:
				complete = false
			}
		}
		setCondition(&st, string(o.name), r.Status, r.Reason, r.Message, in.generation, now)
		st.Safeguards = append(st.Safeguards, phiguardv1alpha1.SafeguardStatus{
			Name: o.name, Section: o.rule.Section, Specification: o.rule.Specification,
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
	st.Score = fmt.Sprintf("%d/%d", holding, len(in.outcomes))

	switch {
	case in.stalled != nil:
		setCondition(&st, phiguardv1alpha1.StalledCondition, metav1.ConditionTrue, in.stalled.Reason, in.stalled.Error(), in.generation, now)
		setCondition(&st, phiguardv1alpha1.ReadyCondition, metav1.ConditionFalse, in.stalled.Reason, in.stalled.Error(), in.generation, now)
		st.Compliance = phiguardv1alpha1.NonCompliant
	case len(failing) > 0:
		st.Compliance = phiguardv1alpha1.NonCompliant
		msg := "failing: " + strings.Join(failing, ", ")
		if len(unknown) > 0 {
			msg += "; not evaluated: " + strings.Join(unknown, ", ")
		}
		setCondition(&st, phiguardv1alpha1.ReadyCondition, metav1.ConditionFalse, phiguardv1alpha1.SafeguardsFailingReason, msg, in.generation, now)
	case len(unknown) > 0:
		st.Compliance = phiguardv1alpha1.Pending
		setCondition(&st, phiguardv1alpha1.ReadyCondition, metav1.ConditionFalse, phiguardv1alpha1.SafeguardsNotEvaluatedReason,
			"not evaluated: "+strings.Join(unknown, ", "), in.generation, now)
	default:
		st.Compliance = phiguardv1alpha1.Compliant
		setCondition(&st, phiguardv1alpha1.ReadyCondition, metav1.ConditionTrue, phiguardv1alpha1.CompliantReason,
			fmt.Sprintf("all %d safeguards hold", len(in.outcomes)), in.generation, now)
	}
	// observedGeneration moves only when every safeguard finished (a stalled
	// one is finished: it cannot be acted on until the spec changes), so that
	// a reader never takes a half-evaluated generation for a settled one.
	if complete {
		st.ObservedGeneration = in.generation
	}
	setReconciling(&st, in.generation, now)
	return st
}

// setReconciling keeps the kstatus Reconciling condition: True while the
// current generation is not fully evaluated, absent once it is.
func setReconciling(st *phiguardv1alpha1.PHIWorkloadStatus, generation int64, now metav1.Time) {
	if st.ObservedGeneration >= generation {
		meta.RemoveStatusCondition(&st.Conditions, phiguardv1alpha1.ReconcilingCondition)
		return
	}
	setCondition(st, phiguardv1alpha1.ReconcilingCondition, metav1.ConditionTrue, phiguardv1alpha1.ReasonProgressing,
		fmt.Sprintf("generation %d is not fully evaluated yet (observedGeneration %d)", generation, st.ObservedGeneration), generation, now)
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
