// Package controller holds phiguard's reconcilers.
package controller

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// FieldOwner is the field manager of every write phiguard makes.
const FieldOwner = client.FieldOwner(safeguard.FieldManager)

// PHIWorkloadReconciler keeps a PHIWorkload's safeguards and reports them in
// its status.
type PHIWorkloadReconciler struct {
	client.Client
	// Recorder records an Event for each change of a safeguard's result.
	Recorder recorder.EventRecorder
	// Clock is the time decisions are judged against; tests move it.
	Clock clock.PassiveClock
	// Safeguards are evaluated in this order; see safeguard.Registry.
	Safeguards []safeguard.Safeguard
	// ExemptNamespaces are never acted on, whatever the PHIPolicy says
	// (kube-system and phiguard's own namespace).
	ExemptNamespaces []string
	// Concurrency is how many workloads are reconciled at once (at least 1).
	// A PHIPolicy change re-reconciles every workload; its writes, not CPU,
	// bound how fast that settles.
	Concurrency int

	// controller and cache let SetupWithManager's watches grow when Velero's
	// CRDs appear after the manager started.
	controller    controller.Controller
	cache         cache.Cache
	veleroMu      sync.Mutex
	veleroWatched bool
}

// CleanupFinalizer holds a PHIWorkload until the safeguards that keep objects
// outside its namespace (the backup Schedule) have removed them.
const CleanupFinalizer = "compliance.phiguard.io/cleanup"

// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phiworkloads,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phiworkloads/finalizers,verbs=update
// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phiworkloads/status,verbs=patch
// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phipolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.k8s.io,resources=storageclasses,verbs=get;list;watch
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=velero.io,resources=schedules,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=velero.io,resources=backups;backupstoragelocations,verbs=get;list;watch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile loads the workload, resolves its scope once, runs every safeguard in
// order, and writes the status with one patch when it changed.
func (r *PHIWorkloadReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var w phiguardv1alpha1.PHIWorkload
	if err := r.Get(ctx, req.NamespacedName, &w); err != nil {
		if apierrors.IsNotFound(err) {
			return ctrl.Result{}, nil // deleted; what it owned goes by garbage collection
		}
		return ctrl.Result{}, fmt.Errorf("reading PHIWorkload %s: %w", req.NamespacedName, err)
	}
	if !w.DeletionTimestamp.IsZero() {
		// Owned objects go by garbage collection; the rest is finalized here.
		return ctrl.Result{}, r.finalize(ctx, &w)
	}
	if err := r.ensureFinalizer(ctx, &w); err != nil {
		return ctrl.Result{}, err
	}

	now := r.Clock.Now()
	scope, err := r.scope(ctx, &w, now)
	stalled := safeguard.AsStalled(err)
	if err != nil && stalled == nil {
		return ctrl.Result{}, err
	}
	var outcomes []outcome
	if stalled == nil {
		outcomes = r.evaluate(ctx, scope)
	} else {
		outcomes = r.notEvaluated(scope, stalled)
	}

	policy := ""
	if scope.Policy != nil {
		policy = scope.Policy.Name
	}
	r.recordActions(&w, outcomes)
	status := computeStatus(w.Status, w.Generation, policy, len(scope.Pods), outcomes, stalled, metav1.NewTime(now))
	if err := r.writeStatus(ctx, &w, status); err != nil {
		return ctrl.Result{}, err
	}
	if stalled != nil {
		// Retrying cannot help until the spec changes, and a spec change is a new event.
		return ctrl.Result{}, reconcile.TerminalError(stalled)
	}
	return result(outcomes)
}

// scope resolves everything the safeguards read. A *safeguard.StalledError
// means the spec cannot be acted on; other errors are transient.
func (r *PHIWorkloadReconciler) scope(ctx context.Context, w *phiguardv1alpha1.PHIWorkload, now time.Time) (*safeguard.Scope, error) {
	s := &safeguard.Scope{Workload: w, Now: now, Client: r.Client}

	var err error
	if s.Policy, err = safeguard.DefaultPolicy(ctx, r.Client); err != nil {
		return nil, err
	}
	if s.Settings, s.ModeSources, err = safeguard.Effective(&w.Spec.SafeguardSettings, s.Policy); err != nil {
		return nil, err
	}

	// From here on the settings are known, so a stalled workload still reports
	// each safeguard's effective mode.
	if safeguard.Exempt(r.ExemptNamespaces, s.Policy, w.Namespace) {
		return s, safeguard.Stalled(phiguardv1alpha1.ReasonNamespaceExempt,
			"namespace %s is exempt from phiguard (built-in or PHIPolicy spec.exemptNamespaces); move the workload or remove the exemption",
			w.Namespace)
	}
	if err := safeguard.Validate(&s.Settings); err != nil {
		return s, err
	}
	if s.Selector, err = metav1.LabelSelectorAsSelector(&w.Spec.Selector); err != nil {
		return s, safeguard.Stalled(phiguardv1alpha1.ReasonInvalidSelector, "spec.selector is invalid: %v", err)
	}

	return s, r.readTargets(ctx, s)
}

// readTargets lists, from the cache, what the safeguards judge: the selected
// pods and the namespace's NetworkPolicies and claims, the cluster's
// StorageClasses, and Velero's objects.
func (r *PHIWorkloadReconciler) readTargets(ctx context.Context, s *safeguard.Scope) error {
	w := s.Workload
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(w.Namespace), client.MatchingLabelsSelector{Selector: s.Selector}); err != nil {
		return fmt.Errorf("listing pods of %s/%s: %w", w.Namespace, w.Name, err)
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp.IsZero() {
			s.Pods = append(s.Pods, pods.Items[i])
		}
	}
	var policies networkingv1.NetworkPolicyList
	if err := r.List(ctx, &policies, client.InNamespace(w.Namespace)); err != nil {
		return fmt.Errorf("listing NetworkPolicies in %s: %w", w.Namespace, err)
	}
	s.NetworkPolicies = policies.Items
	var claims corev1.PersistentVolumeClaimList
	if err := r.List(ctx, &claims, client.InNamespace(w.Namespace)); err != nil {
		return fmt.Errorf("listing PersistentVolumeClaims in %s: %w", w.Namespace, err)
	}
	s.Claims = claims.Items
	var classes storagev1.StorageClassList
	if err := r.List(ctx, &classes); err != nil {
		return fmt.Errorf("listing StorageClasses: %w", err)
	}
	s.StorageClasses = classes.Items
	var err error
	if s.Velero, err = r.velero(ctx, s.Settings.Backup.VeleroNamespace); err != nil {
		return err
	}
	if s.Velero != nil {
		// Velero's kinds are served: make sure their watches run, should the
		// CRD events have come before every kind was established.
		return r.watchVelero(ctx)
	}
	s.VeleroPending, err = r.veleroCRDsPresent(ctx)
	return err
}

// veleroCRDsPresent says whether Velero's CRDs exist (from the cached CRD
// metadata), whether or not the apiserver serves their kinds yet.
func (r *PHIWorkloadReconciler) veleroCRDsPresent(ctx context.Context) (bool, error) {
	var crds metav1.PartialObjectMetadataList
	crds.SetGroupVersionKind(apiextensionsv1.SchemeGroupVersion.WithKind("CustomResourceDefinitionList"))
	if err := r.List(ctx, &crds); err != nil {
		return false, fmt.Errorf("listing CRDs: %w", err)
	}
	found := 0
	for _, crd := range crds.Items {
		if veleroCRDs[crd.Name] {
			found++
		}
	}
	return found == len(veleroCRDs), nil
}

// velero reads Velero's objects in its namespace, or returns nil when Velero's
// CRDs are not installed.
func (r *PHIWorkloadReconciler) velero(ctx context.Context, ns string) (*safeguard.Velero, error) {
	var schedules velerov1.ScheduleList
	var backups velerov1.BackupList
	var locations velerov1.BackupStorageLocationList
	for _, l := range []struct {
		list client.ObjectList
		what string
	}{{&schedules, "Schedules"}, {&backups, "Backups"}, {&locations, "BackupStorageLocations"}} {
		err := r.List(ctx, l.list, client.InNamespace(ns))
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing Velero %s in %s: %w", l.what, ns, err)
		}
	}
	v := &safeguard.Velero{Schedules: schedules.Items, Backups: backups.Items, StorageLocations: locations.Items}
	if err := r.Get(ctx, types.NamespacedName{Name: ns}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
		v.NamespaceMissing = true
	} else if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", ns, err)
	}
	return v, nil
}

// ensureFinalizer adds CleanupFinalizer when some safeguard keeps objects that
// owner references cannot cover.
func (r *PHIWorkloadReconciler) ensureFinalizer(ctx context.Context, w *phiguardv1alpha1.PHIWorkload) error {
	if len(r.finalizers()) == 0 || controllerutil.ContainsFinalizer(w, CleanupFinalizer) {
		return nil
	}
	patch := client.MergeFrom(w.DeepCopy())
	controllerutil.AddFinalizer(w, CleanupFinalizer)
	if err := r.Patch(ctx, w, patch, FieldOwner); err != nil {
		return fmt.Errorf("adding the finalizer to %s/%s: %w", w.Namespace, w.Name, err)
	}
	return nil
}

// finalize lets each Finalizer safeguard remove what it keeps, then releases
// the workload. A failure keeps the finalizer, and the next attempt retries.
func (r *PHIWorkloadReconciler) finalize(ctx context.Context, w *phiguardv1alpha1.PHIWorkload) error {
	if !controllerutil.ContainsFinalizer(w, CleanupFinalizer) {
		return nil
	}
	for _, sg := range r.Safeguards {
		f, ok := sg.(safeguard.Finalizer)
		if !ok {
			continue
		}
		events, err := f.Finalize(ctx, r.Client, w)
		r.recordActions(w, []outcome{{name: sg.Name(), result: safeguard.Result{Events: events}}})
		if err != nil {
			return fmt.Errorf("finalizing %s/%s: %w", w.Namespace, w.Name, err)
		}
	}
	return removeFinalizer(ctx, r.Client, w, CleanupFinalizer)
}

func (r *PHIWorkloadReconciler) finalizers() []safeguard.Finalizer {
	var out []safeguard.Finalizer
	for _, sg := range r.Safeguards {
		if f, ok := sg.(safeguard.Finalizer); ok {
			out = append(out, f)
		}
	}
	return out
}

// evaluate runs each safeguard in order. A safeguard that is Off still runs (to
// remove what it created), but its result is the verdict on its decision.
func (r *PHIWorkloadReconciler) evaluate(ctx context.Context, s *safeguard.Scope) []outcome {
	out := make([]outcome, 0, len(r.Safeguards))
	for _, sg := range r.Safeguards {
		name := sg.Name()
		mode := s.Mode(name)
		res := sg.Reconcile(ctx, s)
		if mode == phiguardv1alpha1.ModeOff {
			verdict := safeguard.EvaluateDecision(name, s.Workload.Spec.Decision(name), s.Now)
			verdict.Err = res.Err
			res = verdict
		}
		out = append(out, outcome{name: name, mode: mode, source: s.ModeSources[name], result: res})
	}
	return out
}

// notEvaluated reports every safeguard as Unknown for a spec that cannot be
// acted on, so that no earlier result stays on display as if it were current.
func (r *PHIWorkloadReconciler) notEvaluated(s *safeguard.Scope, stalled *safeguard.StalledError) []outcome {
	out := make([]outcome, 0, len(r.Safeguards))
	for _, sg := range r.Safeguards {
		name := sg.Name()
		out = append(out, outcome{name: name, mode: s.Mode(name), source: s.ModeSources[name], result: safeguard.Result{
			Status: metav1.ConditionUnknown, Reason: stalled.Reason,
			Message: "not evaluated: " + stalled.Error(),
		}})
	}
	return out
}

// writeStatus records an Event for each changed result and patches the status,
// only when it differs from what is stored.
func (r *PHIWorkloadReconciler) writeStatus(ctx context.Context, w *phiguardv1alpha1.PHIWorkload, status phiguardv1alpha1.PHIWorkloadStatus) error {
	if equality.Semantic.DeepEqual(w.Status, status) {
		return nil
	}
	r.recordChanges(w, status)
	patch := client.MergeFrom(w.DeepCopy())
	w.Status = status
	if err := r.Status().Patch(ctx, w, patch, FieldOwner); err != nil {
		return fmt.Errorf("patching status of %s/%s: %w", w.Namespace, w.Name, err)
	}
	logf.FromContext(ctx).V(1).Info("status updated", "compliance", status.Compliance, "score", status.Score)
	return nil
}

// recordChanges emits an Event for each safeguard (and Stalled) whose status or
// reason differs from the stored status.
func (r *PHIWorkloadReconciler) recordChanges(w *phiguardv1alpha1.PHIWorkload, next phiguardv1alpha1.PHIWorkloadStatus) {
	if r.Recorder == nil {
		return
	}
	// While the spec is stalled, the one Event worth reading is the Stalled one.
	stalled := meta.IsStatusConditionTrue(next.Conditions, phiguardv1alpha1.StalledCondition)
	for _, c := range next.Conditions {
		if c.Type == phiguardv1alpha1.ReadyCondition || (stalled && c.Type != phiguardv1alpha1.StalledCondition) {
			continue
		}
		if old := meta.FindStatusCondition(w.Status.Conditions, c.Type); old != nil && old.Status == c.Status && old.Reason == c.Reason {
			continue
		}
		kind := corev1.EventTypeNormal
		if c.Status == metav1.ConditionFalse || c.Type == phiguardv1alpha1.StalledCondition {
			kind = corev1.EventTypeWarning
		}
		// The action is the condition type: events.k8s.io folds Events that share
		// regarding object, reason and action into one series, and each
		// safeguard's change must stay a record of its own.
		r.Recorder.Eventf(w, nil, kind, c.Reason, c.Type, "%s is %s: %s", c.Type, c.Status, c.Message)
	}
}

// recordActions records each enforcement action a safeguard took as an Event.
func (r *PHIWorkloadReconciler) recordActions(w *phiguardv1alpha1.PHIWorkload, outcomes []outcome) {
	if r.Recorder == nil {
		return
	}
	for _, o := range outcomes {
		for _, e := range o.result.Events {
			kind := corev1.EventTypeNormal
			if e.Warning {
				kind = corev1.EventTypeWarning
			}
			var related runtime.Object
			if e.Related != nil {
				related = e.Related
			}
			r.Recorder.Eventf(w, related, kind, e.Reason, string(o.name), "%s", e.Message)
		}
	}
}

// result turns the outcomes into the controller's answer: transient errors are
// returned (and retried with backoff); otherwise the earliest time-based requeue.
func result(outcomes []outcome) (ctrl.Result, error) {
	var errs []error
	var after time.Duration
	for _, o := range outcomes {
		if o.result.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.name, o.result.Err))
		}
		if d := o.result.RequeueAfter; d > 0 && (after == 0 || d < after) {
			after = d
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: after}, nil
}
