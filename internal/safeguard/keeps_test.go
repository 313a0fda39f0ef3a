package safeguard

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func TestKeeps(t *testing.T) {
	w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records", UID: "uid-records"}}
	owner := metav1.OwnerReference{APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: kindPHIWorkload,
		Name: "records", UID: "uid-records", Controller: ptr.To(true)}
	obj := func(ns string, labels map[string]string, owners ...metav1.OwnerReference) *metav1.ObjectMeta {
		return &metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records", Labels: labels, OwnerReferences: owners}
	}
	otherOwner := owner
	otherOwner.UID = "uid-earlier-records"
	for _, tc := range []struct {
		name string
		obj  *metav1.ObjectMeta
		want bool
	}{
		{"its namespace, labelled and controlled", obj("clinic", ownedLabels(w), owner), true},
		{"its namespace, controlled by a workload of the same name before", obj("clinic", ownedLabels(w), otherOwner), false},
		{"its namespace, labelled but not controlled", obj("clinic", ownedLabels(w)), false},
		{"its namespace, controlled but not labelled", obj("clinic", nil, owner), false},
		{"another workload's", obj("clinic", map[string]string{
			phiguardv1alpha1.ManagedByLabel: phiguardv1alpha1.ManagedByValue, phiguardv1alpha1.WorkloadLabel: "intake"}, owner), false},
		{"another namespace, labelled with its namespace", obj("velero", ScheduleLabels(w)), true},
		{"another namespace, a workload of its name elsewhere", obj("velero", ScheduleLabels(&phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "records"}})), false},
		{"another namespace, without its namespace", obj("velero", ownedLabels(w)), false},
		{"its namespace, labelled with its namespace and not controlled (a Schedule where Velero runs in the workload's namespace)",
			obj("clinic", ScheduleLabels(w)), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Keeps(tc.obj, w); got != tc.want {
				t.Errorf("Keeps = %v, want %v", got, tc.want)
			}
		})
	}
}
