package controller

import (
	"context"
	"fmt"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The watches of the PHIWorkload controller and how each maps an event to the
// PHIWorkloads it can affect.

// SetupWithManager registers the controller and its watches.
func (r *PHIWorkloadReconciler) SetupWithManager(mgr ctrl.Manager) error {
	r.cache = mgr.GetCache()
	c, err := ctrl.NewControllerManagedBy(mgr).
		// Status writes do not change the generation, so our own patches do not
		// come back as new work.
		For(&phiguardv1alpha1.PHIWorkload{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&phiguardv1alpha1.PHIPolicy{}, handler.EnqueueRequestsFromMapFunc(r.workloadsForPolicy),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Pods matter when they come, go, or change labels (and so selection).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.workloadsForPod),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		// A change to phiguard's own NetworkPolicy goes to its workload (drift is
		// healed at once, no polling); one to a hand-written policy can change the
		// isolation of every workload in the namespace (judged in Audit mode).
		Watches(&networkingv1.NetworkPolicy{}, handler.EnqueueRequestsFromMapFunc(r.workloadsForPolicyObject)).
		// Claims and classes decide EncryptedAtRest; claims are few per namespace
		// and classes change rarely, so each maps to every workload it could affect.
		Watches(&corev1.PersistentVolumeClaim{}, handler.EnqueueRequestsFromMapFunc(r.workloadsInNamespace)).
		Watches(&storagev1.StorageClass{}, handler.EnqueueRequestsFromMapFunc(r.allWorkloads)).
		// Velero may be installed before or after phiguard: its CRDs appearing
		// (also as the initial list) lead to the watches on its objects, without
		// a restart. Only CRD metadata is cached.
		WatchesMetadata(&apiextensionsv1.CustomResourceDefinition{}, handler.EnqueueRequestsFromMapFunc(r.onVeleroCRD),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return veleroCRDs[o.GetName()] }))).
		Named("phiworkload").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Concurrency)}).
		Build(r)
	if err != nil {
		return fmt.Errorf("building the PHIWorkload controller: %w", err)
	}
	r.controller = c
	return nil
}

// veleroCRDs are the Velero CRDs the backup safeguard reads.
var veleroCRDs = map[string]bool{
	"schedules.velero.io": true, "backups.velero.io": true, "backupstoragelocations.velero.io": true,
}

// onVeleroCRD re-evaluates every workload when one of Velero's CRDs appears
// or changes (their backups were "Velero not installed"). Those reconciles
// start the watches on Velero's objects (watchVelero): starting them here,
// inside an event handler, could block the controller while it starts.
func (r *PHIWorkloadReconciler) onVeleroCRD(ctx context.Context, obj client.Object) []reconcile.Request {
	return r.allWorkloads(ctx, obj)
}

// watchVelero starts, once, the watches on Velero's Schedules, Backups and
// BackupStorageLocations. It is called by a reconcile that could list them.
func (r *PHIWorkloadReconciler) watchVelero(ctx context.Context) error {
	r.veleroMu.Lock()
	defer r.veleroMu.Unlock()
	if r.veleroWatched || r.controller == nil { // nil: reconciling outside a manager, as tests do
		return nil
	}
	// All three kinds must be served before their informers can start. If one
	// is not yet, the next reconcile tries again.
	for _, kind := range []string{"Schedule", "Backup", "BackupStorageLocation"} {
		if _, err := r.RESTMapper().RESTMapping(velerov1.SchemeGroupVersion.WithKind(kind).GroupKind(), "v1"); err != nil {
			return nil //nolint:nilerr // not served yet: not an error, retried as said above
		}
	}
	watches := []source.TypedSource[reconcile.Request]{
		source.Kind(r.cache, &velerov1.Schedule{}, handler.TypedEnqueueRequestsFromMapFunc(
			func(_ context.Context, s *velerov1.Schedule) []reconcile.Request { return workloadOfSchedule(s) })),
		source.Kind(r.cache, &velerov1.Backup{}, handler.TypedEnqueueRequestsFromMapFunc(r.workloadsForBackup)),
		source.Kind(r.cache, &velerov1.BackupStorageLocation{}, handler.TypedEnqueueRequestsFromMapFunc(
			func(ctx context.Context, l *velerov1.BackupStorageLocation) []reconcile.Request {
				return r.allWorkloads(ctx, l)
			})),
	}
	for _, w := range watches {
		if err := r.controller.Watch(w); err != nil {
			return fmt.Errorf("starting a watch on Velero's objects: %w", err)
		}
	}
	r.veleroWatched = true
	logf.FromContext(ctx).Info("Velero's CRDs are installed: watching its Schedules, Backups and BackupStorageLocations")
	return nil
}

// workloadOfSchedule maps one of phiguard's Schedules to its workload by labels.
func workloadOfSchedule(s *velerov1.Schedule) []reconcile.Request {
	ns, name := s.Labels["phiguard.io/workload-namespace"], s.Labels[phiguardv1alpha1.WorkloadLabel]
	if ns == "" || name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}

// workloadsForBackup maps a Backup to the workload of its Schedule, or, for a
// Schedule that is not phiguard's (judged in Audit mode), to every workload.
func (r *PHIWorkloadReconciler) workloadsForBackup(ctx context.Context, b *velerov1.Backup) []reconcile.Request {
	name := b.Labels[velerov1.ScheduleNameLabel]
	if name == "" {
		return nil
	}
	var s velerov1.Schedule
	if err := r.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: name}, &s); err == nil {
		if reqs := workloadOfSchedule(&s); reqs != nil {
			return reqs
		}
	}
	return r.allWorkloads(ctx, b)
}

// workloadsForPolicy maps a change of the PHIPolicy named default to every PHIWorkload.
func (r *PHIWorkloadReconciler) workloadsForPolicy(ctx context.Context, obj client.Object) []reconcile.Request {
	if obj.GetName() != phiguardv1alpha1.DefaultPolicyName {
		return nil
	}
	return r.allWorkloads(ctx, obj)
}

// allWorkloads maps a change to every PHIWorkload.
func (r *PHIWorkloadReconciler) allWorkloads(ctx context.Context, _ client.Object) []reconcile.Request {
	var list phiguardv1alpha1.PHIWorkloadList
	if err := r.List(ctx, &list); err != nil {
		logf.FromContext(ctx).Error(err, "listing PHIWorkloads")
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// workloadsForPolicyObject maps an object phiguard controls to its PHIWorkload,
// and any other object to every PHIWorkload in its namespace.
func (r *PHIWorkloadReconciler) workloadsForPolicyObject(ctx context.Context, obj client.Object) []reconcile.Request {
	if owner := metav1.GetControllerOf(obj); owner != nil && owner.Kind == "PHIWorkload" &&
		owner.APIVersion == phiguardv1alpha1.GroupVersion.String() {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: obj.GetNamespace(), Name: owner.Name}}}
	}
	return r.workloadsInNamespace(ctx, obj)
}

// workloadsInNamespace maps an object to every PHIWorkload in its namespace.
func (r *PHIWorkloadReconciler) workloadsInNamespace(ctx context.Context, obj client.Object) []reconcile.Request {
	var list phiguardv1alpha1.PHIWorkloadList
	if err := r.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "listing PHIWorkloads", "namespace", obj.GetNamespace())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// workloadsForPod maps a pod to the PHIWorkloads in its namespace that select it.
func (r *PHIWorkloadReconciler) workloadsForPod(ctx context.Context, obj client.Object) []reconcile.Request {
	var list phiguardv1alpha1.PHIWorkloadList
	if err := r.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "listing PHIWorkloads for a pod", "namespace", obj.GetNamespace())
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		sel, err := metav1.LabelSelectorAsSelector(&list.Items[i].Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(obj.GetLabels())) {
			continue // an invalid selector is reported on the workload itself
		}
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}
