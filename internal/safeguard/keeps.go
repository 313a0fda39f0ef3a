package safeguard

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Keeps says whether obj is an object phiguard keeps for workload w:
// labelled as phiguard's for w and either labelled with w's namespace too
// (an object no owner reference can point at w from, as the backup Schedule
// in Velero's namespace, even when that is w's own) or, in w's namespace,
// controlled by it.
func Keeps(obj metav1.Object, w *phiguardv1alpha1.PHIWorkload) bool {
	l := obj.GetLabels()
	if l[phiguardv1alpha1.ManagedByLabel] != phiguardv1alpha1.ManagedByValue || l[phiguardv1alpha1.WorkloadLabel] != w.Name {
		return false
	}
	if ns, ok := l[workloadNamespaceLabel]; ok {
		return ns == w.Namespace
	}
	return obj.GetNamespace() == w.Namespace && metav1.IsControlledBy(obj, w)
}
