package controller

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	phiguardv1alpha1ac "github.com/phiguard/phiguard/api/v1alpha1/applyconfiguration/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/safeguard"
	"github.com/phiguard/phiguard/internal/ssa"
)

// CoverageFinalizer holds a generated PHIWorkload until phiguard has recorded,
// as an Event and a log line, which object's pods lost coverage and why: the
// record survives however the workload goes (label removed, object deleted,
// garbage collection, a hand delete).
const CoverageFinalizer = "compliance.phiguard.io/coverage-record"

// coverageAction is the action of every coverage Event.
const coverageAction = "Coverage"

// LabelReconciler keeps one generated PHIWorkload for each object of one kind
// labelled phiguard.io/ephi=true. The generated workload holds only its
// selector: every safeguard setting comes from the PHIPolicy named default,
// then the built-in defaults, exactly as for a hand-written one.
type LabelReconciler struct {
	client.Client
	// Recorder records the coverage Events, the evidence auditors read.
	Recorder recorder.EventRecorder
	// Evidence, when set, takes an evidence record for each coverage given
	// and withdrawn.
	Evidence evidence.Recorder
	// Source is the labelled kind.
	Source LabelSource
	// ExemptNamespaces are never covered, whatever the PHIPolicy says
	// (kube-system and phiguard's own namespace).
	ExemptNamespaces []string
	// Concurrency is how many labelled objects are reconciled at once (at
	// least one). Each waits on phiguard's own admission webhooks when it
	// creates a PHIWorkload, so one at a time trails a burst of new labelled
	// Namespaces by seconds.
	Concurrency int
}

// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phiworkloads,verbs=create;delete
// +kubebuilder:rbac:groups="",resources=services,verbs=get;list;watch

// verdict is whether a labelled object is to be covered by its own generated
// PHIWorkload, and if not, why.
type verdict struct {
	cover   bool
	target  coverageTarget
	reason  string
	message string
	warning bool
}

// Reconcile generates, updates or withdraws the PHIWorkload of one object.
func (r *LabelReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	key := types.NamespacedName{Namespace: r.Source.generatedNamespace(req.NamespacedName), Name: r.Source.GeneratedName(req.Name)}
	obj, found, generated, err := r.load(ctx, req, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	if generated != nil {
		ours, err := r.generatedFor(generated, req.Name)
		if err != nil {
			return ctrl.Result{}, err
		}
		if !ours {
			if found && labelled(obj) {
				r.event(obj, generated, verdict{reason: phiguardv1alpha1.ReasonWorkloadNameTaken, warning: true, message: fmt.Sprintf(
					"PHIWorkload %s exists and was not generated for %s, so phiguard cannot generate one of that name; if it covers these pods, remove the %s label",
					key, r.describe(req.NamespacedName), phiguardv1alpha1.EPHILabel)})
			}
			return ctrl.Result{}, nil
		}
	}

	v, err := r.judge(ctx, obj, found, req.NamespacedName, key)
	if err != nil {
		return ctrl.Result{}, err
	}
	switch {
	case v.cover && generated != nil && !generated.DeletionTimestamp.IsZero():
		// Deleted by hand while the object is still labelled: record it and let
		// it go; its deletion brings this object back and it is generated again.
		return ctrl.Result{}, r.release(ctx, obj, found, generated, verdict{reason: phiguardv1alpha1.ReasonCoverageInterrupted, warning: true,
			message: fmt.Sprintf("PHIWorkload %s was deleted while %s is still labelled %s=true; phiguard generates it again",
				key, r.describe(req.NamespacedName), phiguardv1alpha1.EPHILabel)})
	case v.cover:
		return ctrl.Result{}, r.apply(ctx, obj, generated, key, v.target)
	case generated != nil:
		return ctrl.Result{}, r.withdraw(ctx, obj, found, generated, v)
	case found && labelled(obj):
		r.event(obj, nil, v) // why a labelled object has no PHIWorkload of its own
	}
	return ctrl.Result{}, nil
}

// load reads the labelled object (found is false when it is gone) and the
// PHIWorkload at key, the generated name, if there is one.
func (r *LabelReconciler) load(ctx context.Context, req ctrl.Request, key types.NamespacedName) (client.Object, bool, *phiguardv1alpha1.PHIWorkload, error) {
	obj := r.Source.newObject()
	found := true
	if err := r.Get(ctx, req.NamespacedName, obj); apierrors.IsNotFound(err) {
		found = false
	} else if err != nil {
		return nil, false, nil, fmt.Errorf("reading %s %s: %w", r.Source.Kind, req.NamespacedName, err)
	}
	var w phiguardv1alpha1.PHIWorkload
	switch err := r.Get(ctx, key, &w); {
	case apierrors.IsNotFound(err):
		return obj, found, nil, nil
	case err != nil:
		return nil, false, nil, fmt.Errorf("reading PHIWorkload %s: %w", key, err)
	}
	return obj, found, &w, nil
}

// generatedFor says whether w, the PHIWorkload at the generated name, is the
// one phiguard generated for the object of this kind named name: by its label
// and annotation, or, when someone changed one of them, by what phiguard
// applied to it, so that apply puts them back.
func (r *LabelReconciler) generatedFor(w *phiguardv1alpha1.PHIWorkload, name string) (bool, error) {
	if r.Source.generatedFor(w, name) {
		return true, nil
	}
	applied, err := phiguardv1alpha1ac.ExtractPHIWorkload(w, ssa.FieldManager)
	if err != nil {
		return false, fmt.Errorf("extracting the fields %s applied to PHIWorkload %s/%s: %w", ssa.FieldManager, w.Namespace, w.Name, err)
	}
	return applied.Labels[phiguardv1alpha1.GeneratedFromLabel] == r.Source.Kind ||
		applied.Annotations[phiguardv1alpha1.SourceAnnotation] == r.Source.Kind+"/"+name, nil
}

// judge decides whether the object gets a generated PHIWorkload.
func (r *LabelReconciler) judge(ctx context.Context, obj client.Object, found bool, objKey, key types.NamespacedName) (verdict, error) {
	desc := r.describe(objKey)
	if v, removed := removal(obj, found, desc); removed {
		return v, nil
	}
	if v, excluded, err := r.namespaceExcluded(ctx, key.Namespace, desc); err != nil || excluded {
		return v, err
	}
	target, ok, why := r.Source.target(obj)
	if !ok {
		return verdict{reason: phiguardv1alpha1.ReasonCoverageNotPossible, warning: true,
			message: fmt.Sprintf("%s is labelled %s=true, but %s", desc, phiguardv1alpha1.EPHILabel, why)}, nil
	}
	if v, covered, err := r.coveredByOther(ctx, key, target, desc); err != nil || covered {
		return v, err
	}
	return verdict{cover: true, target: target}, nil
}

// removal is the verdict on an object, described by desc, that was deleted
// or lost its label; removed is false when it is still there and labelled.
func removal(obj client.Object, found bool, desc string) (v verdict, removed bool) {
	switch {
	case !found || !obj.GetDeletionTimestamp().IsZero():
		return verdict{reason: phiguardv1alpha1.ReasonCoverageRemoved, warning: true, message: desc + " was deleted"}, true
	case !labelled(obj):
		msg := fmt.Sprintf("label %s=true removed from %s", phiguardv1alpha1.EPHILabel, desc)
		if a := obj.GetAnnotations(); a[phiguardv1alpha1.UnlabelApprovedByAnnotation] != "" {
			msg += fmt.Sprintf("; removal approved by %s: %s", a[phiguardv1alpha1.UnlabelApprovedByAnnotation], a[phiguardv1alpha1.UnlabelJustificationAnnotation])
		}
		return verdict{reason: phiguardv1alpha1.ReasonCoverageRemoved, warning: true, message: msg}, true
	}
	return verdict{}, false
}

// namespaceExcluded is the verdict on a labelled object, described by desc,
// in a namespace whose objects are never covered: one exempt from phiguard
// or a restore drill's scratch namespace. excluded is false for any other
// namespace.
func (r *LabelReconciler) namespaceExcluded(ctx context.Context, namespace, desc string) (v verdict, excluded bool, err error) {
	policy, err := safeguard.DefaultPolicy(ctx, r.Client)
	if err != nil {
		return verdict{}, false, err
	}
	if safeguard.Exempt(r.ExemptNamespaces, policy, namespace) {
		return verdict{reason: phiguardv1alpha1.ReasonCoverageNotPossible, warning: true, message: fmt.Sprintf(
			"%s is labelled %s=true, but namespace %s is exempt from phiguard (kube-system, phiguard's own namespace, or PHIPolicy %s spec.exemptNamespaces): its pods are not covered",
			desc, phiguardv1alpha1.EPHILabel, namespace, phiguardv1alpha1.DefaultPolicyName)}, true, nil
	}
	// A restore drill's scratch namespace holds restored copies of another
	// namespace's objects, labels included: they are checked and deleted
	// with the namespace, never covered.
	var ns corev1.Namespace
	if err := r.Get(ctx, types.NamespacedName{Name: namespace}, &ns); client.IgnoreNotFound(err) != nil {
		return verdict{}, false, fmt.Errorf("reading namespace %s: %w", namespace, err)
	} else if err == nil && safeguard.IsDrillNamespace(&ns) {
		return verdict{reason: phiguardv1alpha1.ReasonCoverageNotPossible, message: fmt.Sprintf(
			"%s is labelled %s=true, but namespace %s is the scratch namespace of a restore drill of PHIWorkload %s: what is restored there is not covered, and goes with the namespace when the drill ends",
			desc, phiguardv1alpha1.EPHILabel, namespace, safeguard.DrillOf(&ns))}, true, nil
	}
	return verdict{}, false, nil
}

// coveredByOther is the verdict on a labelled object, described by desc,
// whose pods another PHIWorkload than the one at key already covers, the
// first by name; covered is false when none does.
func (r *LabelReconciler) coveredByOther(ctx context.Context, key types.NamespacedName, target coverageTarget, desc string) (v verdict, covered bool, err error) {
	var list phiguardv1alpha1.PHIWorkloadList
	if err := r.List(ctx, &list, client.InNamespace(key.Namespace)); err != nil {
		return verdict{}, false, fmt.Errorf("listing PHIWorkloads in %s: %w", key.Namespace, err)
	}
	slices.SortFunc(list.Items, func(a, b phiguardv1alpha1.PHIWorkload) int { return cmp.Compare(a.Name, b.Name) })
	for i := range list.Items {
		other := &list.Items[i]
		if other.Name == key.Name || !other.DeletionTimestamp.IsZero() || !r.Source.supersedes(other) || !target.coveredBy(other) {
			continue
		}
		by := "written by hand"
		if from := other.Labels[phiguardv1alpha1.GeneratedFromLabel]; from != "" {
			by = "generated for the " + from
		}
		return verdict{reason: phiguardv1alpha1.ReasonCoveredByWorkload, message: fmt.Sprintf(
			"%s is covered by PHIWorkload %s/%s (%s), which selects the same pods; phiguard does not generate a second one",
			desc, other.Namespace, other.Name, by)}, true, nil
	}
	return verdict{}, false, nil
}

// apply generates or updates the PHIWorkload by server-side apply, only when
// the fields phiguard applied differ from those it wants: a steady state
// writes nothing, what others add stays, and what they change of phiguard's
// is put back.
func (r *LabelReconciler) apply(ctx context.Context, obj client.Object, existing *phiguardv1alpha1.PHIWorkload,
	key types.NamespacedName, t coverageTarget) error {
	desired, err := r.desired(obj, key, t)
	if err != nil {
		return err
	}
	changed, err := ssa.Apply(ctx, r.Client, existing, desired, extractWorkload)
	if err != nil {
		return fmt.Errorf("applying PHIWorkload %s: %w", key, err)
	}
	if changed && existing == nil {
		// The apply returned the stored workload into desired: its UID too.
		created := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			UID: ptr.Deref(desired.UID, ""), ResourceVersion: ptr.Deref(desired.ResourceVersion, "")}}
		msg := fmt.Sprintf("%s is labelled %s=true: PHIWorkload %s generated; its safeguards follow PHIPolicy %s",
			r.describe(client.ObjectKeyFromObject(obj)), phiguardv1alpha1.EPHILabel, key, phiguardv1alpha1.DefaultPolicyName)
		r.event(obj, created, verdict{reason: phiguardv1alpha1.ReasonCoverageCreated, message: msg})
		r.recordCoverage(obj, created, verdict{reason: phiguardv1alpha1.ReasonCoverageCreated, message: msg}, "Covered")
		logf.FromContext(ctx).Info("coverage generated", "kind", r.Source.Kind, "object", client.ObjectKeyFromObject(obj), "workload", key)
	}
	return nil
}

// extractWorkload returns the fields of a PHIWorkload that phiguard applied.
var extractWorkload = ssa.Generated(phiguardv1alpha1ac.ExtractPHIWorkload)

// desired is the generated PHIWorkload, as phiguard applies it: labels, the
// source annotation, the labelled object as controlling owner (garbage
// collection removes the workload with it; blockOwnerDeletion is false, as
// true would need update on the labelled kinds' finalizers under
// OwnerReferencesPermissionEnforcement), the coverage finalizer, and the
// selector. Safeguard settings are left to the PHIPolicy.
func (r *LabelReconciler) desired(obj client.Object, key types.NamespacedName, t coverageTarget) (*phiguardv1alpha1ac.PHIWorkloadApplyConfiguration, error) {
	gvk, err := apiutil.GVKForObject(obj, r.Scheme())
	if err != nil {
		return nil, fmt.Errorf("finding the kind of %s: %w", r.Source.Kind, err)
	}
	spec := phiguardv1alpha1ac.PHIWorkloadSpec().WithSelector(ssa.LabelSelector(&t.selector))
	if t.namespaceWide {
		// Applied only when true: a false is dropped when the workload is
		// read (omitempty), so it would never compare equal.
		spec.WithNamespaceWide(true)
	}
	return phiguardv1alpha1ac.PHIWorkload(key.Name, key.Namespace).
		WithLabels(map[string]string{
			phiguardv1alpha1.ManagedByLabel:     phiguardv1alpha1.ManagedByValue,
			phiguardv1alpha1.GeneratedFromLabel: r.Source.Kind,
		}).
		WithAnnotations(map[string]string{phiguardv1alpha1.SourceAnnotation: r.Source.Kind + "/" + obj.GetName()}).
		WithOwnerReferences(metav1ac.OwnerReference().
			WithAPIVersion(gvk.GroupVersion().String()).WithKind(gvk.Kind).WithName(obj.GetName()).WithUID(obj.GetUID()).
			WithController(true).WithBlockOwnerDeletion(false)).
		WithFinalizers(CoverageFinalizer).
		WithSpec(spec), nil
}

// withdraw deletes the generated PHIWorkload and records why.
func (r *LabelReconciler) withdraw(ctx context.Context, obj client.Object, found bool, w *phiguardv1alpha1.PHIWorkload, v verdict) error {
	if w.DeletionTimestamp.IsZero() {
		if err := r.Delete(ctx, w, client.Preconditions{UID: &w.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting PHIWorkload %s/%s: %w", w.Namespace, w.Name, err)
		}
	}
	return r.release(ctx, obj, found, w, v)
}

// release records why the generated workload goes, then removes the coverage
// finalizer so that it can.
func (r *LabelReconciler) release(ctx context.Context, obj client.Object, found bool, w *phiguardv1alpha1.PHIWorkload, v verdict) error {
	if !controllerutil.ContainsFinalizer(w, CoverageFinalizer) {
		return nil
	}
	regarding := obj
	if !found {
		// The object is gone: refer to it as the workload's owner reference does.
		regarding = r.Source.newObject()
		regarding.SetName(strings.TrimPrefix(w.Annotations[phiguardv1alpha1.SourceAnnotation], r.Source.Kind+"/"))
		if r.Source.Kind != NamespaceSource.Kind {
			regarding.SetNamespace(w.Namespace)
		}
		if owner := metav1.GetControllerOf(w); owner != nil {
			regarding.SetUID(owner.UID)
		}
	}
	pods := fmt.Sprintf("its %d pods are no longer covered by phiguard", w.Status.MatchedPods)
	switch v.reason {
	case phiguardv1alpha1.ReasonCoveredByWorkload:
		pods = "its pods stay covered"
	case phiguardv1alpha1.ReasonCoverageInterrupted:
		pods = "its pods are covered again once the new one is generated"
	}
	if err := removeFinalizer(ctx, r.Client, w, CoverageFinalizer); err != nil {
		return err
	}

	// Recorded once the workload can go, so that each loss is recorded once.
	v.message = fmt.Sprintf("%s; generated PHIWorkload %s/%s removed, %s", v.message, w.Namespace, w.Name, pods)
	r.event(regarding, w, v)
	r.recordCoverage(regarding, w, v, "Withdrawn")
	logf.FromContext(ctx).Info("coverage withdrawn", "kind", r.Source.Kind, "object", client.ObjectKeyFromObject(regarding),
		"uid", regarding.GetUID(), "workload", client.ObjectKeyFromObject(w), "matchedPods", w.Status.MatchedPods,
		"reason", v.reason, "detail", v.message)
	return nil
}

// event records a coverage Event about the labelled object.
func (r *LabelReconciler) event(regarding client.Object, related runtime.Object, v verdict) {
	if r.Recorder == nil {
		return
	}
	kind := corev1.EventTypeNormal
	if v.warning {
		kind = corev1.EventTypeWarning
	}
	r.Recorder.Eventf(regarding, related, kind, v.reason, coverageAction, "%s", v.message)
}

// recordCoverage takes the evidence record of a coverage given or withdrawn.
func (r *LabelReconciler) recordCoverage(regarding client.Object, w *phiguardv1alpha1.PHIWorkload, v verdict, result string) {
	if r.Evidence == nil {
		return
	}
	r.Evidence.Record(evidence.Record{
		Kind: evidence.KindCoverage, Workload: evidenceWorkload(w), Result: result, Reason: v.reason, Message: v.message,
		Actor: actorController, Objects: []evidence.Object{{Kind: r.Source.Kind, Namespace: regarding.GetNamespace(),
			Name: regarding.GetName(), UID: string(regarding.GetUID())}},
	})
}

// describe names an object of the kind, as "Deployment clinic/api".
func (r *LabelReconciler) describe(key types.NamespacedName) string {
	if key.Namespace == "" {
		return r.Source.Kind + " " + key.Name
	}
	return r.Source.Kind + " " + key.Namespace + "/" + key.Name
}
