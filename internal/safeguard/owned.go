package safeguard

import (
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// FieldManager is the field manager of every object phiguard applies.
const FieldManager = "phiguard"

// ownedLabels are the labels of every object phiguard creates for a workload.
func ownedLabels(w *phiguardv1alpha1.PHIWorkload) map[string]string {
	return map[string]string{
		phiguardv1alpha1.ManagedByLabel: phiguardv1alpha1.ManagedByValue,
		phiguardv1alpha1.WorkloadLabel:  w.Name,
	}
}

// controllerReference makes the workload the controlling owner of an object
// in its namespace, so that garbage collection removes the object with it.
func controllerReference(w *phiguardv1alpha1.PHIWorkload) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(phiguardv1alpha1.GroupVersion.String()).
		WithKind("PHIWorkload").
		WithName(w.Name).
		WithUID(w.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}
