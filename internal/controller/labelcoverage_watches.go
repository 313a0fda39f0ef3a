package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// SetupWithManager registers the controller for the reconciler's kind and its
// watches: the labelled objects themselves, the PHIWorkloads that can
// generate, supersede or lose coverage, and the PHIPolicy (exempt namespaces).
func (r *LabelReconciler) SetupWithManager(mgr ctrl.Manager) error {
	err := ctrl.NewControllerManagedBy(mgr).
		For(r.Source.newObject(), builder.WithPredicates(labelledObjects())).
		Watches(&phiguardv1alpha1.PHIWorkload{}, handler.EnqueueRequestsFromMapFunc(r.sourcesForWorkload),
			builder.WithPredicates(workloadChanged())).
		Watches(&phiguardv1alpha1.PHIPolicy{}, handler.EnqueueRequestsFromMapFunc(r.allLabelled),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("label-" + strings.ToLower(r.Source.Kind)).
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Concurrency)}).
		Complete(r)
	if err != nil {
		return fmt.Errorf("building the %s label controller: %w", r.Source.Kind, err)
	}
	return nil
}

// labelledObjects passes the events that can change an object's coverage:
// those of objects that are or were labelled, when they come, go, change
// labels, annotations (an unlabel decision) or spec (their pod selector).
func labelledObjects() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return labelled(e.Object) },
		DeleteFunc: func(e event.DeleteEvent) bool { return labelled(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			if !labelled(e.ObjectOld) && !labelled(e.ObjectNew) {
				return false
			}
			return predicate.LabelChangedPredicate{}.Update(e) || predicate.GenerationChangedPredicate{}.Update(e) ||
				predicate.AnnotationChangedPredicate{}.Update(e)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// workloadChanged passes the PHIWorkload events that can change coverage, or
// undo what phiguard applied to a generated workload: a new spec (selector),
// and changes of the metadata phiguard sets or reads (labels, annotations,
// finalizers, owner references) or of its deletion. Status writes, the most
// frequent, pass none of these.
func workloadChanged() predicate.Predicate {
	return predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{},
		predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return false
			}
			return !slices.Equal(e.ObjectOld.GetFinalizers(), e.ObjectNew.GetFinalizers()) ||
				!equality.Semantic.DeepEqual(e.ObjectOld.GetOwnerReferences(), e.ObjectNew.GetOwnerReferences()) ||
				!e.ObjectOld.GetDeletionTimestamp().Equal(e.ObjectNew.GetDeletionTimestamp())
		}})
}

// sourcesForWorkload maps a PHIWorkload event to the labelled objects whose
// coverage it can change: a workload generated for this kind to its object; a
// hand-written one, or one generated for a Namespace, to every labelled object
// of this kind in its namespace (it may supersede them, or stop doing so).
func (r *LabelReconciler) sourcesForWorkload(ctx context.Context, obj client.Object) []reconcile.Request {
	from, generated := obj.GetLabels()[phiguardv1alpha1.GeneratedFromLabel]
	if generated && from == r.Source.Kind {
		name := strings.TrimPrefix(obj.GetAnnotations()[phiguardv1alpha1.SourceAnnotation], from+"/")
		key := types.NamespacedName{Namespace: obj.GetNamespace(), Name: name}
		if r.Source.Kind == NamespaceSource.Kind {
			key.Namespace = ""
		}
		return []reconcile.Request{{NamespacedName: key}}
	}
	w, ok := obj.(*phiguardv1alpha1.PHIWorkload)
	if !ok || !r.Source.supersedes(w) {
		return nil
	}
	return r.labelled(ctx, obj.GetNamespace())
}

// allLabelled maps a PHIPolicy change (its exempt namespaces) to every
// labelled object of this kind.
func (r *LabelReconciler) allLabelled(ctx context.Context, obj client.Object) []reconcile.Request {
	if obj.GetName() != phiguardv1alpha1.DefaultPolicyName {
		return nil
	}
	return r.labelled(ctx, "")
}

// labelled lists the labelled objects of this kind, in namespace ns, or
// everywhere when ns is "". A Namespace is "in" itself.
func (r *LabelReconciler) labelled(ctx context.Context, ns string) []reconcile.Request {
	opts := []client.ListOption{client.MatchingLabels{phiguardv1alpha1.EPHILabel: phiguardv1alpha1.EPHILabelValue}}
	namespaces := r.Source.Kind == NamespaceSource.Kind
	if ns != "" && !namespaces {
		opts = append(opts, client.InNamespace(ns))
	}
	list := r.Source.newList()
	if err := r.List(ctx, list, opts...); err != nil {
		logf.FromContext(ctx).Error(err, "listing labelled objects", "kind", r.Source.Kind)
		return nil
	}
	var reqs []reconcile.Request
	if err := meta.EachListItem(list, func(o runtime.Object) error {
		obj, ok := o.(client.Object)
		if ok && (!namespaces || ns == "" || obj.GetName() == ns) {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		}
		return nil
	}); err != nil {
		logf.FromContext(ctx).Error(err, "reading labelled objects", "kind", r.Source.Kind)
	}
	return reqs
}
