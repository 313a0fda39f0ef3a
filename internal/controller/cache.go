package controller

import (
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/ssa"
)

// CacheOptions are the manager's cache options. Secrets are cached in
// phiguard's own namespace only (the webhook certificate, PHIPolicy
// backup.locationCredentials): its RBAC allows no more.
//
// managedFields, often the largest part of an object, are kept only where
// phiguard reads them: on the objects it applies (NetworkPolicies, budgets,
// Schedules, PeerAuthentications, reports), whose owned fields it compares
// and whose other writers it names. PHIWorkloads keep only the entry of
// phiguard's own apply (of the workloads it generates), Namespaces that of
// the holds-ephi label's; the others, the status phiguard writes above all,
// go. Every other built-in kind it reads is cached without them. (Kinds of
// optional APIs, whose CRDs may be absent when the cache is made, keep
// theirs.)
func CacheOptions(namespace string) cache.Options {
	byObject := map[client.Object]cache.ByObject{
		&corev1.Secret{}:                {Namespaces: map[string]cache.Config{namespace: {}}},
		&phiguardv1alpha1.PHIWorkload{}: {Transform: keepApplyOf(ssa.FieldManager)},
		&corev1.Namespace{}:             {Transform: keepApplyOf(NamespaceLabelFieldOwner)},
	}
	for _, obj := range []client.Object{
		&corev1.Pod{}, &corev1.Service{}, &corev1.ServiceAccount{}, &corev1.ConfigMap{},
		&corev1.PersistentVolumeClaim{}, &appsv1.Deployment{}, &appsv1.ReplicaSet{}, &appsv1.StatefulSet{},
		&autoscalingv2.HorizontalPodAutoscaler{}, &networkingv1.Ingress{}, &storagev1.StorageClass{},
		&rbacv1.Role{}, &rbacv1.RoleBinding{}, &rbacv1.ClusterRole{}, &rbacv1.ClusterRoleBinding{},
	} {
		byObject[obj] = cache.ByObject{Transform: cache.TransformStripManagedFields()}
	}
	return cache.Options{ByObject: byObject}
}

// keepApplyOf drops the managedFields entries of an object but the one of
// manager's apply to its main resource (no subresource): what the generated
// Extract functions read.
func keepApplyOf(manager string) toolscache.TransformFunc {
	return func(in any) (any, error) {
		obj, ok := in.(metav1.Object)
		if !ok {
			return in, nil
		}
		kept := slices.DeleteFunc(obj.GetManagedFields(), func(e metav1.ManagedFieldsEntry) bool {
			return e.Manager != manager || e.Operation != metav1.ManagedFieldsOperationApply || e.Subresource != ""
		})
		if len(kept) == 0 {
			kept = nil
		}
		obj.SetManagedFields(kept)
		return in, nil
	}
}
