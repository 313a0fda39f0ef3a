package safeguard

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Keeps says whether obj is an object phiguard keeps for workload w: labelled
// as phiguard's for w and, in w's namespace, controlled by it; in another
// namespace (where no owner reference can point at w, as for the backup
// Schedule), labelled with w's namespace too.
func Keeps(obj metav1.Object, w *phiguardv1alpha1.PHIWorkload) bool {
	l := obj.GetLabels()
	if l[phiguardv1alpha1.ManagedByLabel] != phiguardv1alpha1.ManagedByValue || l[phiguardv1alpha1.WorkloadLabel] != w.Name {
		return false
	}
	if obj.GetNamespace() == w.Namespace {
		return metav1.IsControlledBy(obj, w)
	}
	return l[workloadNamespaceLabel] == w.Namespace
}
