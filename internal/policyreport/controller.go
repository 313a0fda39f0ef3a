package policyreport

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/ssa"
)

// The reports of both APIs, written by the report controller.
// +kubebuilder:rbac:groups=wgpolicyk8s.io,resources=policyreports;clusterpolicyreports,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=openreports.io,resources=reports;clusterreports,verbs=get;list;watch;create;patch;delete

// Labels of every report phiguard writes.
var reportLabels = map[string]string{"app.kubernetes.io/managed-by": "phiguard"}

// Reconciler writes the reports. A request with a namespace (and no name) is
// that namespace's report; the empty request is the cluster report.
//
// Ownership: a namespace's report has a non-controller owner reference to
// each live PHIWorkload of the namespace, so the garbage collector deletes it
// with the last one. The cluster report cannot be owned by namespaced objects:
// phiguard deletes it itself when no PHIWorkload is left.
type Reconciler struct {
	// Client reads PHIWorkloads from the cache and applies the reports.
	Client client.Client
	// Format is the report API written.
	Format Format
	// APIs says whether the format's API is served; set by SetupWithManager
	// (a test of Reconcile alone sets it).
	APIs *optionalapi.Tracker

	// warned is set once the absent API has been logged.
	warned atomic.Bool
}

// clusterRequest is the cluster report's request.
var clusterRequest = reconcile.Request{}

// Reconcile writes one report.
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	state, err := r.APIs.State(ctx, r.Format.API)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("checking the %s API: %w", r.Format.API.Name, err)
	}
	switch state {
	case optionalapi.NotInstalled:
		if !r.warned.Swap(true) {
			log.Info("report API not installed: writing no policy reports until it is", "api", r.Format.API.Name,
				"install", r.Format.API.Install)
		}
		return ctrl.Result{}, nil
	case optionalapi.Pending:
		// Its CRDs exist but discovery does not serve them yet.
		return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
	}
	r.warned.Store(false)

	var workloads phiguardv1alpha1.PHIWorkloadList
	if err := r.Client.List(ctx, &workloads, client.InNamespace(req.Namespace)); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing PHIWorkloads: %w", err)
	}
	live := slices.DeleteFunc(workloads.Items, func(w phiguardv1alpha1.PHIWorkload) bool { return w.DeletionTimestamp != nil })
	slices.SortFunc(live, func(a, b phiguardv1alpha1.PHIWorkload) int {
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	if req == clusterRequest {
		return ctrl.Result{}, r.write(ctx, r.Format.Cluster, "", live, ComplianceResult)
	}
	return ctrl.Result{}, r.write(ctx, r.Format.Namespaced, req.Namespace, live, nil)
}

// write applies the report of kind in namespace ("" for the cluster report)
// for workloads, or deletes it when there are none; perWorkload gives the one
// result of a workload, nil for one result per safeguard.
func (r *Reconciler) write(ctx context.Context, kind, namespace string, workloads []phiguardv1alpha1.PHIWorkload,
	perWorkload func(*phiguardv1alpha1.PHIWorkload) Result) error {
	existing := &unstructured.Unstructured{}
	existing.SetGroupVersionKind(r.Format.GVK(kind))
	// Read from the apiserver: the manager's client does not cache unstructured objects.
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: Policy}, existing)
	switch {
	case apierrors.IsNotFound(err):
		existing = nil
	case err != nil:
		return fmt.Errorf("reading the %s %s: %w", kind, describe(namespace), err)
	}
	if len(workloads) == 0 {
		if existing == nil {
			return nil
		}
		if err := r.Client.Delete(ctx, existing); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting the %s %s of no PHIWorkload: %w", kind, describe(namespace), err)
		}
		return nil
	}

	om := metav1.ObjectMeta{Name: Policy, Namespace: namespace, Labels: reportLabels}
	var results []Result
	for i := range workloads {
		w := &workloads[i]
		if perWorkload != nil {
			results = append(results, perWorkload(w))
			continue
		}
		results = append(results, WorkloadResults(w)...)
		om.OwnerReferences = append(om.OwnerReferences, metav1.OwnerReference{
			APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload", Name: w.Name, UID: w.UID,
		})
	}
	desired, err := r.Format.Render(kind, om, results)
	if err != nil {
		return err
	}
	var current client.Object
	if existing != nil {
		current = existing
	}
	if _, err := ssa.Apply(ctx, r.Client, current, client.ApplyConfigurationFromUnstructured(desired), ssa.Unstructured); err != nil {
		return fmt.Errorf("writing the %s %s: %w", kind, describe(namespace), err)
	}
	return nil
}

func describe(namespace string) string {
	if namespace == "" {
		return "of the cluster"
	}
	return "of namespace " + namespace
}

// SetupWithManager registers the controller: every change of a PHIWorkload
// (its status included) brings back its namespace's report and the cluster
// report, and so does the appearance of the format's CRDs.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	toReports := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace()}}, clusterRequest}
	})
	allReports := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		return r.everyReport(ctx)
	})
	c, err := ctrl.NewControllerManagedBy(mgr).
		Named("policyreport").
		Watches(&phiguardv1alpha1.PHIWorkload{}, toReports).
		WatchesMetadata(&apiextensionsv1.CustomResourceDefinition{}, allReports,
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				return optionalapi.OwnsCRD([]*optionalapi.API{r.Format.API}, o.GetName())
			}))).
		Build(r)
	if err != nil {
		return fmt.Errorf("building the policy report controller: %w", err)
	}
	r.APIs = optionalapi.NewTracker(mgr.GetRESTMapper(), mgr.GetClient(), c.Watch)
	// A report changed or deleted by someone else is written again.
	for _, kind := range []string{r.Format.Namespaced, r.Format.Cluster} {
		report := &unstructured.Unstructured{}
		report.SetGroupVersionKind(r.Format.GVK(kind))
		r.APIs.WatchWhenServed(r.Format.API, source.Kind[client.Object](mgr.GetCache(), report,
			handler.EnqueueRequestsFromMapFunc(func(_ context.Context, obj client.Object) []reconcile.Request {
				if obj.GetName() != Policy {
					return nil
				}
				return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace()}}}
			})))
	}
	return nil
}

// everyReport is the request of every namespace with a PHIWorkload, and the cluster's.
func (r *Reconciler) everyReport(ctx context.Context) []reconcile.Request {
	var workloads phiguardv1alpha1.PHIWorkloadList
	if err := r.Client.List(ctx, &workloads); err != nil {
		logf.FromContext(ctx).Error(err, "listing PHIWorkloads for their reports")
		return nil
	}
	reqs := []reconcile.Request{clusterRequest}
	for _, w := range workloads.Items {
		req := reconcile.Request{NamespacedName: client.ObjectKey{Namespace: w.Namespace}}
		if !slices.Contains(reqs, req) {
			reqs = append(reqs, req)
		}
	}
	return reqs
}
