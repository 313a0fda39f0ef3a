package controller_test

import (
	"reflect"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/ssa"
)

// transformOf returns the cache transform CacheOptions sets for objects of
// the type of like.
func transformOf(t *testing.T, like any) toolscache.TransformFunc {
	t.Helper()
	for obj, by := range controller.CacheOptions("phiguard-system").ByObject {
		if reflect.TypeOf(obj) == reflect.TypeOf(like) {
			return by.Transform
		}
	}
	t.Fatalf("no cache options for %T", like)
	return nil
}

func TestCacheKeepsOnlyTheManagedFieldsPhiguardReads(t *testing.T) {
	g := NewWithT(t)
	entry := func(manager string, op metav1.ManagedFieldsOperationType, sub string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: sub, APIVersion: "compliance.phiguard.io/v1alpha1",
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{}}`)}
	}
	own := entry(ssa.FieldManager, metav1.ManagedFieldsOperationApply, "")
	w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Name: "records", ManagedFields: []metav1.ManagedFieldsEntry{
		entry("kubectl-client-side-apply", metav1.ManagedFieldsOperationUpdate, ""),
		own,
		entry(ssa.FieldManager, metav1.ManagedFieldsOperationApply, "status"),
		entry(ssa.FieldManager, metav1.ManagedFieldsOperationUpdate, ""),
	}}}
	out, err := transformOf(t, w)(w)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.(*phiguardv1alpha1.PHIWorkload).ManagedFields).To(Equal([]metav1.ManagedFieldsEntry{own}))

	user := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Name: "billing", ManagedFields: []metav1.ManagedFieldsEntry{
		entry("kubectl", metav1.ManagedFieldsOperationApply, ""),
	}}}
	out, err = transformOf(t, user)(user)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.(*phiguardv1alpha1.PHIWorkload).ManagedFields).To(BeNil())

	labelled := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "clinic", ManagedFields: []metav1.ManagedFieldsEntry{
		entry("kubectl", metav1.ManagedFieldsOperationUpdate, ""),
		entry(controller.NamespaceLabelFieldOwner, metav1.ManagedFieldsOperationApply, ""),
		own,
	}}}
	out, err = transformOf(t, labelled)(labelled)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.(*corev1.Namespace).ManagedFields).To(Equal([]metav1.ManagedFieldsEntry{
		entry(controller.NamespaceLabelFieldOwner, metav1.ManagedFieldsOperationApply, "")}), "what the holds-ephi label's comparison reads")

	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "records-0", ManagedFields: []metav1.ManagedFieldsEntry{own}}}
	out, err = transformOf(t, pod)(pod)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out.(*corev1.Pod).ManagedFields).To(BeNil())
}
