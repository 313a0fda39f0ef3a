package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The PHIWorkload mutating webhook's configuration:
//   - failurePolicy=fail: like the validator, it guards phiguard's own API;
//     a decision admitted without its requester recorded would be one an
//     auditor cannot trace.
//   - it only writes the phiguard.io/decisions-recorded-by annotation and,
//     on create, the cleanup finalizer.

// +kubebuilder:webhook:path=/mutate-compliance-phiguard-io-v1alpha1-phiworkload,mutating=true,failurePolicy=fail,sideEffects=None,groups=compliance.phiguard.io,resources=phiworkloads,verbs=create;update,versions=v1alpha1,name=mphiworkload.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// decisionRecorder records, on each PHIWorkload, who added or last changed
// each decision: the user the apiserver authenticated for the request. The
// record comes from the stored object and the request, never from what the
// request writes into the annotation itself. On create it also sets the
// cleanup finalizer when some safeguard keeps objects outside the workload's
// namespace, which spares the controller a write per new workload.
type decisionRecorder struct {
	decoder admission.Decoder
	// holds says whether new workloads get phiguardv1alpha1.CleanupFinalizer.
	holds bool
}

// Default implements admission.Defaulter.
func (d decisionRecorder) Default(ctx context.Context, w *phiguardv1alpha1.PHIWorkload) error {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return fmt.Errorf("reading the admission request: %w", err)
	}
	if d.holds && req.Operation == admissionv1.Create {
		controllerutil.AddFinalizer(w, phiguardv1alpha1.CleanupFinalizer)
	}
	old, err := d.old(req)
	if err != nil {
		return err
	}
	recorded := old.DecisionsRecordedBy()
	next := make(map[phiguardv1alpha1.SafeguardName]string, len(w.Spec.Decisions))
	for _, decision := range w.Spec.Decisions {
		who := recorded[decision.Safeguard]
		if prev := old.Spec.Decision(decision.Safeguard); prev == nil || !equality.Semantic.DeepEqual(*prev, decision) || who == "" {
			who = req.UserInfo.Username
		}
		next[decision.Safeguard] = who
	}
	if len(next) == 0 {
		delete(w.Annotations, phiguardv1alpha1.DecisionsRecordedByAnnotation)
		return nil
	}
	raw, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encoding the decisions' requesters: %w", err)
	}
	if w.Annotations == nil {
		w.Annotations = map[string]string{}
	}
	w.Annotations[phiguardv1alpha1.DecisionsRecordedByAnnotation] = string(raw)
	return nil
}

// old decodes the stored object of an update; an empty workload on create.
func (d decisionRecorder) old(req admission.Request) (*phiguardv1alpha1.PHIWorkload, error) {
	old := &phiguardv1alpha1.PHIWorkload{}
	if len(req.OldObject.Raw) == 0 {
		return old, nil
	}
	if err := d.decoder.DecodeRaw(req.OldObject, old); err != nil {
		return nil, fmt.Errorf("decoding the stored PHIWorkload: %w", err)
	}
	return old, nil
}

// checkDecisions applies the PHIPolicy's rules to the decisions a request
// adds or changes (those it leaves as they were are not judged again):
// approvers, when the policy names them, and the longest lifetime.
func (v *WorkloadValidator) checkDecisions(ctx context.Context, policy *phiguardv1alpha1.PHIPolicy, old, w *phiguardv1alpha1.PHIWorkload) error {
	req, err := admission.RequestFromContext(ctx)
	if err != nil {
		return fmt.Errorf("reading the admission request: %w", err)
	}
	maxLifetime := policy.MaxDecisionLifetime()
	for _, d := range w.Spec.Decisions {
		if prev := old.Spec.Decision(d.Safeguard); prev != nil && equality.Semantic.DeepEqual(*prev, d) {
			continue
		}
		if a := policy.DecisionApprovers(); a != nil && !slices.Contains(a.Users, req.UserInfo.Username) &&
			!slices.ContainsFunc(req.UserInfo.Groups, func(g string) bool { return slices.Contains(a.Groups, g) }) {
			return deny("the decision for %s may be added or changed only by an approver named in PHIPolicy %s (spec.decisions.approvers: users %s; groups %s), and %s is not one; ask one of them to make this change",
				d.Safeguard, phiguardv1alpha1.DefaultPolicyName, list(a.Users), list(a.Groups), req.UserInfo.Username)
		}
		if limit := v.Clock.Now().Add(maxLifetime); d.Expires.After(limit) {
			return deny("the decision for %s expires at %s, later than the %s PHIPolicy %s allows (spec.decisions.maxLifetime, default %s): set expires to %s or earlier, and review the decision then",
				d.Safeguard, d.Expires.UTC().Format(time.RFC3339), maxLifetime, phiguardv1alpha1.DefaultPolicyName,
				phiguardv1alpha1.DefaultMaxDecisionLifetime, limit.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

func list(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}
