package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// SetupWithManager registers the controller and its watches: the
// PHIWorkload, the PHIPolicy and pods (what every safeguard reads), then each
// safeguard's own watches from the registry. Watches on a kind of an optional
// API start once the API is served; the CRDs of those APIs are watched (their
// metadata only) so that their appearance re-evaluates every workload.
func (r *PHIWorkloadReconciler) SetupWithManager(mgr ctrl.Manager) error {
	workloads := safeguard.CacheWorkloads(mgr.GetClient())
	b := ctrl.NewControllerManagedBy(mgr).
		// Status writes do not change the generation, so our own patches do not
		// come back as new work.
		For(&phiguardv1alpha1.PHIWorkload{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&phiguardv1alpha1.PHIPolicy{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			if obj.GetName() != phiguardv1alpha1.DefaultPolicyName {
				return nil
			}
			return workloads.In(ctx, "")
		}), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// Pods matter when they come, go, or change labels (and so selection).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, obj client.Object) []reconcile.Request {
			return workloads.Selecting(ctx, obj.GetNamespace(), obj.GetLabels())
		}), builder.WithPredicates(predicate.LabelChangedPredicate{}))

	var deferred []safeguard.Watch
	for _, w := range r.Registry.Watches() {
		if w.API != nil {
			deferred = append(deferred, w)
			continue
		}
		b = b.Watches(w.Object, handler.EnqueueRequestsFromMapFunc(mapWith(workloads, w)), builder.WithPredicates(w.Predicates...))
	}
	if apis := r.Registry.APIs(); len(apis) > 0 {
		// An optional API's CRDs appearing (also as the initial list) bring
		// every workload back; their reconciles start the API's watches
		// (optionalapi.Tracker): starting them here, inside an event handler,
		// could block the controller while it starts.
		b = b.WatchesMetadata(&apiextensionsv1.CustomResourceDefinition{},
			handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request { return workloads.In(ctx, "") }),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool { return optionalapi.OwnsCRD(apis, o.GetName()) })))
	}
	c, err := b.Named("phiworkload").
		WithOptions(controller.Options{MaxConcurrentReconciles: max(1, r.Concurrency)}).
		Build(r)
	if err != nil {
		return fmt.Errorf("building the PHIWorkload controller: %w", err)
	}
	r.apis = optionalapi.NewTracker(mgr.GetRESTMapper(), mgr.GetClient(), c.Watch)
	for _, w := range deferred {
		r.apis.WatchWhenServed(w.API, source.Kind[client.Object](mgr.GetCache(), w.Object,
			handler.EnqueueRequestsFromMapFunc(mapWith(workloads, w)), w.Predicates...))
	}
	return nil
}

func mapWith(workloads safeguard.Workloads, w safeguard.Watch) handler.MapFunc {
	return func(ctx context.Context, obj client.Object) []reconcile.Request { return w.Map(ctx, workloads, obj) }
}
