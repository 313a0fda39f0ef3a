package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// NamespaceLabelFieldOwner is the field manager of the namespace label
// phiguard applies. It is not ssa.FieldManager: phiguard also applies
// Namespaces of its own (a restore drill's scratch namespace), and an apply
// drops every field its field manager applied before and leaves out, so one
// field manager for both would make each remove what the other set.
const NamespaceLabelFieldOwner = "phiguard-holds-ephi"

// NamespaceLabelReconciler keeps the label phiguard.io/holds-ephi=true on
// each Namespace that holds at least one PHIWorkload, and removes it once
// none is left. A webhook's namespaceSelector sees only the labels of the
// request's Namespace, so this label is how a webhook configuration can pick
// out the namespaces PHIWorkloads cover: with webhook.failClosedForEPHI the
// pod and claim webhooks fail closed there (and in namespaces labelled
// phiguard.io/ephi=true, which they select directly).
//
// The label is applied (server-side apply, field manager
// NamespaceLabelFieldOwner, forcing ownership), so removing or changing it by
// hand is undone; someone else's holds-ephi label on a namespace without a
// PHIWorkload is theirs, and stays.
type NamespaceLabelReconciler struct {
	client.Client
	// ExemptNamespaces are never labelled, whatever they hold (kube-system
	// and phiguard's own namespace); nor are the PHIPolicy's exempt
	// namespaces. A label phiguard applied there before is removed.
	ExemptNamespaces []string
}

// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phiworkloads;phipolicies,verbs=get;list;watch

// Reconcile applies, or withdraws, the label of one Namespace.
func (r *NamespaceLabelReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var ns corev1.Namespace
	if err := r.Get(ctx, req.NamespacedName, &ns); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading Namespace %s: %w", req.Name, err)
	}
	if !ns.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil // a terminating namespace admits no new pods or claims
	}
	holds, err := r.holdsEPHI(ctx, ns.Name)
	if err != nil {
		return ctrl.Result{}, err
	}
	desired := corev1ac.Namespace(ns.Name)
	if holds {
		desired.WithLabels(map[string]string{phiguardv1alpha1.HoldsEPHILabel: phiguardv1alpha1.HoldsEPHILabelValue})
	}
	owned, err := corev1ac.ExtractNamespace(&ns, NamespaceLabelFieldOwner)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("extracting the fields %s applied to Namespace %s: %w", NamespaceLabelFieldOwner, ns.Name, err)
	}
	if equality.Semantic.DeepEqual(owned, desired) {
		return ctrl.Result{}, nil
	}
	// Applied without the label, the apply gives up phiguard's ownership of
	// it, and the apiserver removes it (unless someone else also set it).
	if err := r.Apply(ctx, desired, client.FieldOwner(NamespaceLabelFieldOwner), client.ForceOwnership); err != nil {
		return ctrl.Result{}, fmt.Errorf("applying label %s to Namespace %s: %w", phiguardv1alpha1.HoldsEPHILabel, ns.Name, err)
	}
	logf.FromContext(ctx).Info("namespace label applied", "label", phiguardv1alpha1.HoldsEPHILabel, "holdsEPHI", holds)
	return ctrl.Result{}, nil
}

// holdsEPHI says whether the namespace gets the label: it is not exempt and
// holds a PHIWorkload (one being deleted still counts: its pods may still run).
func (r *NamespaceLabelReconciler) holdsEPHI(ctx context.Context, ns string) (bool, error) {
	policy, err := safeguard.DefaultPolicy(ctx, r.Client)
	if err != nil {
		return false, err
	}
	if safeguard.Exempt(r.ExemptNamespaces, policy, ns) {
		return false, nil
	}
	// Whether there is one, not which: one item, the cache's own (not a copy).
	var workloads phiguardv1alpha1.PHIWorkloadList
	if err := r.List(ctx, &workloads, client.InNamespace(ns), client.Limit(1), client.UnsafeDisableDeepCopy); err != nil {
		return false, fmt.Errorf("listing the PHIWorkloads in namespace %s: %w", ns, err)
	}
	return len(workloads.Items) > 0, nil
}

// SetupWithManager registers the controller: Namespaces as they come and as
// their labels change (a label removed by hand is put back), the PHIWorkloads
// that come and go, and the PHIPolicy (its exempt namespaces).
func (r *NamespaceLabelReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Namespace{}, builder.WithPredicates(predicate.Funcs{
			CreateFunc:  func(event.CreateEvent) bool { return true },
			UpdateFunc:  predicate.LabelChangedPredicate{}.Update,
			DeleteFunc:  func(event.DeleteEvent) bool { return false },
			GenericFunc: func(event.GenericEvent) bool { return false },
		})).
		Watches(&phiguardv1alpha1.PHIWorkload{}, handler.EnqueueRequestsFromMapFunc(workloadNamespace),
			builder.WithPredicates(predicate.Funcs{
				// A workload's namespace never changes: only its coming and going counts.
				CreateFunc:  func(event.CreateEvent) bool { return true },
				UpdateFunc:  func(event.UpdateEvent) bool { return false },
				DeleteFunc:  func(event.DeleteEvent) bool { return true },
				GenericFunc: func(event.GenericEvent) bool { return false },
			})).
		Watches(&phiguardv1alpha1.PHIPolicy{}, handler.EnqueueRequestsFromMapFunc(r.labelledOrHolding),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("namespace-holds-ephi").
		Complete(r)
	if err != nil {
		return fmt.Errorf("building the namespace label controller: %w", err)
	}
	return nil
}

// workloadNamespace maps a PHIWorkload to its Namespace.
func workloadNamespace(_ context.Context, obj client.Object) []reconcile.Request {
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Name: obj.GetNamespace()}}}
}

// labelledOrHolding maps a change of the PHIPolicy named default (its exempt
// namespaces) to the namespaces whose label it can change: those that hold a
// PHIWorkload and those that carry the label.
func (r *NamespaceLabelReconciler) labelledOrHolding(ctx context.Context, obj client.Object) []reconcile.Request {
	if obj.GetName() != phiguardv1alpha1.DefaultPolicyName {
		return nil
	}
	log := logf.FromContext(ctx)
	names := map[string]bool{}
	// Namespaces only: the cache's own workloads, not copies of all of them.
	var workloads phiguardv1alpha1.PHIWorkloadList
	if err := r.List(ctx, &workloads, client.UnsafeDisableDeepCopy); err != nil {
		log.Error(err, "listing PHIWorkloads")
	}
	for _, w := range workloads.Items {
		names[w.Namespace] = true
	}
	var labelled corev1.NamespaceList
	if err := r.List(ctx, &labelled, client.HasLabels{phiguardv1alpha1.HoldsEPHILabel}, client.UnsafeDisableDeepCopy); err != nil {
		log.Error(err, "listing labelled namespaces", "label", phiguardv1alpha1.HoldsEPHILabel)
	}
	for _, ns := range labelled.Items {
		names[ns.Name] = true
	}
	reqs := make([]reconcile.Request, 0, len(names))
	for name := range names {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: name}})
	}
	return reqs
}
