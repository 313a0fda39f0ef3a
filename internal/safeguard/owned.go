package safeguard

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

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
		WithKind(kindPHIWorkload).
		WithName(w.Name).
		WithUID(w.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// byName returns the item of a list (of Kubernetes objects, by value) with the
// given name, or nil.
func byName[T any, PT interface {
	*T
	GetName() string
}](items []T, name string) *T {
	for i := range items {
		if PT(&items[i]).GetName() == name {
			return &items[i]
		}
	}
	return nil
}

// reference names an object phiguard acted on, at the version it saw, for the
// related object of an Event.
func reference(apiVersion, kind string, obj metav1.Object) *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: apiVersion, Kind: kind, Namespace: obj.GetNamespace(),
		Name: obj.GetName(), UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion()}
}
