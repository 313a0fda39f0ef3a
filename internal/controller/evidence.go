package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/evidence"
)

// evidenceWorkload names w in evidence records.
func evidenceWorkload(w *phiguardv1alpha1.PHIWorkload) *evidence.Workload {
	return &evidence.Workload{Namespace: w.Namespace, Name: w.Name, UID: string(w.UID), Generation: w.Generation}
}

// recordResultEvidence records, once the status is stored, each safeguard
// whose result (status or reason) differs from the stored one, and each
// decision added, changed, removed or expired.
func (r *PHIWorkloadReconciler) recordResultEvidence(w *phiguardv1alpha1.PHIWorkload, old, next phiguardv1alpha1.PHIWorkloadStatus) {
	if r.Evidence == nil {
		return
	}
	wl := evidenceWorkload(w)
	prev := make(map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.SafeguardStatus, len(old.Safeguards))
	for _, sg := range old.Safeguards {
		prev[sg.Name] = sg
	}
	for _, sg := range next.Safeguards {
		if p, ok := prev[sg.Name]; ok && p.Status == sg.Status && p.Reason == sg.Reason && p.Mode == sg.Mode {
			continue
		}
		msg := ""
		if c := meta.FindStatusCondition(next.Conditions, string(sg.Name)); c != nil {
			msg = c.Message
		}
		r.Evidence.Record(evidence.Record{
			Kind: evidence.KindResult, Workload: wl, Safeguard: string(sg.Name), Section: sg.Section,
			Mode: string(sg.Mode), Result: string(sg.Status), Reason: sg.Reason, Message: msg, Actor: actorController,
		})
		if sg.Reason == phiguardv1alpha1.ReasonDecisionExpired {
			r.Evidence.Record(decisionRecord(w, wl, sg.Name, "Expired", phiguardv1alpha1.DecisionStatus{}, "the decision that turned it off has expired: "+msg))
		}
	}
	r.recordDecisionEvidence(w, wl, old.Decisions, next.Decisions)
}

// recordDecisionEvidence records the decisions added, changed and removed
// between two statuses.
func (r *PHIWorkloadReconciler) recordDecisionEvidence(w *phiguardv1alpha1.PHIWorkload, wl *evidence.Workload, old, next []phiguardv1alpha1.DecisionStatus) {
	prev := make(map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.DecisionStatus, len(old))
	for _, d := range old {
		prev[d.Safeguard] = d
	}
	for _, d := range next {
		p, ok := prev[d.Safeguard]
		delete(prev, d.Safeguard)
		switch {
		case !ok:
			r.Evidence.Record(decisionRecord(w, wl, d.Safeguard, "Added", d, ""))
		case p != d:
			r.Evidence.Record(decisionRecord(w, wl, d.Safeguard, "Changed", d, ""))
		}
	}
	for _, d := range old {
		if _, gone := prev[d.Safeguard]; gone {
			r.Evidence.Record(decisionRecord(w, wl, d.Safeguard, "Removed", d, "the decision was removed from the workload"))
		}
	}
}

// decisionRecord is the record of a decision's change; the decision's terms
// come from the spec when it is still there.
func decisionRecord(w *phiguardv1alpha1.PHIWorkload, wl *evidence.Workload, name phiguardv1alpha1.SafeguardName, what string, ds phiguardv1alpha1.DecisionStatus, msg string) evidence.Record {
	actor := ds.RecordedBy
	if d := w.Spec.Decision(name); d != nil && msg == "" {
		msg = fmt.Sprintf("%s decision approved by %s until %s: %s", d.Kind, d.ApprovedBy, d.Expires.UTC().Format("2006-01-02T15:04:05Z"), d.Justification)
		if d.AlternativeMeasure != "" {
			msg += "; alternative measure: " + d.AlternativeMeasure
		}
	}
	if ds.ApprovedBy != "" {
		msg += " (approvedBy " + ds.ApprovedBy + ")"
	}
	return evidence.Record{Kind: evidence.KindDecision, Workload: wl, Safeguard: string(name), Result: what,
		Reason: "Decision" + what, Message: msg, Actor: actor}
}

// actorController is the actor of what phiguard's controllers did.
const actorController = "phiguard"

// recordActionEvidence records each enforcement action the safeguards took.
func (r *PHIWorkloadReconciler) recordActionEvidence(w *phiguardv1alpha1.PHIWorkload, outcomes []outcome) {
	if r.Evidence == nil {
		return
	}
	wl := evidenceWorkload(w)
	for _, o := range outcomes {
		for _, e := range o.result.Events {
			rec := evidence.Record{
				Kind: evidence.KindAction, Workload: wl, Safeguard: string(o.name), Section: o.rule.Section,
				Mode: string(o.mode), Result: e.Reason, Reason: e.Reason, Message: e.Message, Actor: actorController,
			}
			if e.Related != nil {
				rec.Objects = []evidence.Object{{APIVersion: e.Related.APIVersion, Kind: e.Related.Kind,
					Namespace: e.Related.Namespace, Name: e.Related.Name, UID: string(e.Related.UID)}}
			}
			r.Evidence.Record(rec)
		}
	}
}

// Attestation returns the daily attestation record of a workload: its full
// status as stored.
func Attestation(w *phiguardv1alpha1.PHIWorkload) evidence.Record {
	rec := evidence.Record{
		Kind: evidence.KindAttestation, Workload: evidenceWorkload(w), Result: string(w.Status.Compliance),
		Reason: "DailyAttestation", Actor: actorController,
		Message: fmt.Sprintf("score %s, %d pods matched, policy %q", w.Status.Score, w.Status.MatchedPods, w.Status.Policy),
	}
	if w.Status.Compliance == "" {
		rec.Result = string(phiguardv1alpha1.Pending)
	}
	if ready := meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition); ready != nil {
		rec.Reason = ready.Reason
		rec.Message = fmt.Sprintf("Ready is %s: %s (%s)", ready.Status, ready.Message, rec.Message)
	}
	for _, sg := range w.Status.Safeguards {
		res := evidence.SafeguardResult{Safeguard: string(sg.Name), Section: sg.Section, Mode: string(sg.Mode),
			Result: string(sg.Status), Reason: sg.Reason}
		if c := meta.FindStatusCondition(w.Status.Conditions, string(sg.Name)); c != nil {
			res.Message = c.Message
		}
		rec.Safeguards = append(rec.Safeguards, res)
	}
	return rec
}
