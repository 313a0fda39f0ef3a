package safeguard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/evidence"
)

// Admitter is a safeguard that serves admission webhooks: it registers its
// handlers on the manager's webhook server. Their configurations come from
// +kubebuilder:webhook markers next to the handlers.
type Admitter interface {
	SetupWebhooks(mgr ctrl.Manager, env AdmissionEnv) error
}

// AdmissionEnv is what the safeguards' webhooks decide with.
type AdmissionEnv struct {
	// Reader reads PHIWorkloads, the PHIPolicy, pods and StorageClasses (the
	// manager's cache).
	Reader client.Reader
	// ExemptNamespaces are never judged nor mutated (kube-system, phiguard's own).
	ExemptNamespaces []string
	// Registry gives the built-in defaults the effective settings start from.
	Registry Registry
	// Clock is the time decisions are judged against.
	Clock clock.PassiveClock
	// Recorder records an Event for each denial and warning, on the
	// PHIWorkload whose safeguard required it; nil records none.
	Recorder recorder.EventRecorder
	// Evidence, when set, takes an evidence record for each denial and
	// warning, and each break-glass access.
	Evidence evidence.Recorder
}

// Record makes what admission decided visible to `kubectl describe` and the
// evidence trail: one Warning Event on the PHIWorkload for the request, a
// denial (with any warnings) or the warnings it was admitted with. The object
// admitted is the Event's related object, so that Events about different
// objects are not folded into one series. A dry run records nothing.
func (env AdmissionEnv) Record(ctx context.Context, w *phiguardv1alpha1.PHIWorkload, denied error, warnings []string) {
	if (env.Recorder == nil && env.Evidence == nil) || w == nil || (denied == nil && len(warnings) == 0) {
		return
	}
	subject, related, actor := "a request", (*corev1.ObjectReference)(nil), ""
	if req, err := admission.RequestFromContext(ctx); err == nil {
		if req.DryRun != nil && *req.DryRun {
			return
		}
		actor = req.UserInfo.Username
		subject = fmt.Sprintf("%s's %s of %s %s", req.UserInfo.Username, strings.ToLower(string(req.Operation)), req.Kind.Kind, objectName(req))
		if req.Kind.Kind != kindPHIWorkload {
			related = &corev1.ObjectReference{APIVersion: schema.GroupVersion{Group: req.Kind.Group, Version: req.Kind.Version}.String(),
				Kind: req.Kind.Kind, Namespace: req.Namespace, Name: req.Name}
			if req.Kind.Kind == "Namespace" {
				related.Namespace = ""
			}
		}
	}
	reason, note := phiguardv1alpha1.ReasonAdmissionWarned, "admitted "+subject+" with warnings: "+strings.Join(warnings, "; ")
	if denied != nil {
		reason, note = phiguardv1alpha1.ReasonAdmissionDenied, "denied "+subject+": "+denied.Error()
		if len(warnings) > 0 {
			note += "; warnings: " + strings.Join(warnings, "; ")
		}
	}
	env.recordAdmissionEvidence(w, reason, note, actor, related)
	if env.Recorder == nil {
		return
	}
	var rel runtime.Object
	if related != nil {
		rel = related
	}
	env.Recorder.Eventf(w, rel, corev1.EventTypeWarning, reason, "Admission", "%s", EventNote(note))
}

// recordAdmissionEvidence takes the evidence record of an admission decision
// or access: reason AdmissionDenied, AdmissionWarned, EmergencyAccess or
// EmergencyAccessDenied.
func (env AdmissionEnv) recordAdmissionEvidence(w *phiguardv1alpha1.PHIWorkload, reason, note, actor string, related *corev1.ObjectReference) {
	if env.Evidence == nil {
		return
	}
	rec := evidence.Record{
		Kind:     evidence.KindAdmission,
		Workload: &evidence.Workload{Namespace: w.Namespace, Name: w.Name, UID: string(w.UID), Generation: w.Generation},
		Reason:   reason, Message: note, Actor: actor,
	}
	switch reason {
	case phiguardv1alpha1.ReasonAdmissionDenied:
		rec.Result = "Denied"
	case phiguardv1alpha1.ReasonAdmissionWarned:
		rec.Result = "Warned"
	case phiguardv1alpha1.ReasonEmergencyAccess:
		rec.Kind, rec.Result = evidence.KindEmergencyAccess, "Admitted"
		rec.Safeguard, rec.Section = string(phiguardv1alpha1.AccessControlled), "§164.312(a)(2)(ii)"
	case phiguardv1alpha1.ReasonEmergencyAccessDenied:
		rec.Kind, rec.Result = evidence.KindEmergencyAccess, "Denied"
		rec.Safeguard, rec.Section = string(phiguardv1alpha1.AccessControlled), "§164.312(a)(2)(ii)"
	}
	if related != nil {
		rec.Objects = []evidence.Object{{APIVersion: related.APIVersion, Kind: related.Kind, Namespace: related.Namespace,
			Name: related.Name, UID: string(related.UID)}}
	}
	env.Evidence.Record(rec)
}

// objectName names the object of a request: its name, or, for an object the
// apiserver names later (generateName), the prefix.
func objectName(req admission.Request) string {
	name := req.Name
	if name == "" {
		name = "(generated)"
	}
	if req.Kind.Kind == "Namespace" { // cluster-scoped: its request names it as its own namespace
		return name
	}
	return req.Namespace + "/" + name
}

// SetupWebhooks registers the webhooks of every safeguard that has some.
func (r Registry) SetupWebhooks(mgr ctrl.Manager, env AdmissionEnv) error {
	for _, sg := range r {
		if a, ok := sg.(Admitter); ok {
			if err := a.SetupWebhooks(mgr, env); err != nil {
				return fmt.Errorf("setting up the webhooks of %s: %w", sg.Name(), err)
			}
		}
	}
	return nil
}

// cover is the strongest mode of one safeguard among the PHIWorkloads that
// cover an object, with the workload that sets it and its effective settings.
type cover struct {
	mode phiguardv1alpha1.Mode
	// workload shares its maps, slices and pointers with the cache's own
	// object (see Shared): read it, never change it.
	workload *phiguardv1alpha1.PHIWorkload
	settings phiguardv1alpha1.SafeguardSettings
	policy   *phiguardv1alpha1.PHIPolicy
}

// coverage finds the PHIWorkloads in ns for which covers returns true and
// returns the strongest mode of the safeguard among them: Enforce over Audit,
// and the first workload by name among equals, so that the answer does not
// depend on list order; Off (under a decision) does not cover. Once one
// covers in Enforce, covers is not called for the workloads after it. ok is
// false when nothing covers, or the namespace is exempt (built-in or
// PHIPolicy).
func (env AdmissionEnv) coverage(ctx context.Context, ns string, name phiguardv1alpha1.SafeguardName,
	covers func(sel labels.Selector) (bool, error)) (cover, bool, error) {
	r, exempt := env.Reader, env.ExemptNamespaces
	if slices.Contains(exempt, ns) {
		return cover{}, false, nil // without reading the policy
	}
	policy, err := DefaultPolicy(ctx, r)
	if err != nil {
		return cover{}, false, err
	}
	if Exempt(exempt, policy, ns) {
		return cover{}, false, nil
	}

	// Read only (selectors, settings, names): the cache's own objects, not
	// copies (see Shared). The list's items are shallow copies of them, ours
	// to sort.
	var list phiguardv1alpha1.PHIWorkloadList
	if err := r.List(ctx, &list, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
		return cover{}, false, fmt.Errorf("listing PHIWorkloads in %s: %w", ns, err)
	}
	slices.SortFunc(list.Items, func(a, b phiguardv1alpha1.PHIWorkload) int { return cmp.Compare(a.Name, b.Name) })
	best := cover{policy: policy}
	for i := range list.Items {
		if best.mode == phiguardv1alpha1.ModeEnforce {
			break // no later workload can change the answer: asking whether it covers would only cost reads
		}
		w := &list.Items[i]
		sel, err := metav1.LabelSelectorAsSelector(&w.Spec.Selector)
		if err != nil {
			continue // reported as Stalled on the workload
		}
		if ok, err := covers(sel); err != nil {
			return cover{}, false, err
		} else if !ok {
			continue
		}
		settings, _, err := env.Registry.Effective(&w.Spec.SafeguardSettings, policy)
		if err != nil {
			return cover{}, false, err
		}
		mode := settings.Mode(name)
		if (mode == phiguardv1alpha1.ModeEnforce && best.mode != phiguardv1alpha1.ModeEnforce) ||
			(mode == phiguardv1alpha1.ModeAudit && best.mode == "") {
			best.mode, best.workload, best.settings = mode, w, settings
		}
	}
	return best, best.mode != "", nil
}
