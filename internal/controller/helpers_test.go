package controller_test

import (
	"fmt"
	"strings"
	"sync/atomic"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

var nsCounter atomic.Int64

// newNamespace creates a namespace of its own for one test.
func newNamespace() string {
	name := fmt.Sprintf("t%d", nsCounter.Add(1))
	ensureNamespace(name)
	return name
}

func ensureNamespace(name string) {
	err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if !apierrors.IsAlreadyExists(err) {
		ExpectWithOffset(2, err).NotTo(HaveOccurred())
	}
}

// newWorkload creates a PHIWorkload selecting app=records, after mutate.
func newWorkload(ns, name string, mutate func(*phiguardv1alpha1.PHIWorkload)) *phiguardv1alpha1.PHIWorkload {
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
		},
	}
	if mutate != nil {
		mutate(w)
	}
	ExpectWithOffset(1, k8s.Create(ctx, w)).To(Succeed())
	return w
}

func newPod(ns, name string, labels map[string]string) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
	}
	ExpectWithOffset(1, k8s.Create(ctx, p)).To(Succeed())
	return p
}

// fetch returns the stored PHIWorkload.
func fetch(g Gomega, w *phiguardv1alpha1.PHIWorkload) *phiguardv1alpha1.PHIWorkload {
	out := &phiguardv1alpha1.PHIWorkload{}
	g.ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKeyFromObject(w), out)).To(Succeed())
	return out
}

// condition returns a condition of the stored status, failing when absent.
func condition(g Gomega, w *phiguardv1alpha1.PHIWorkload, typ string) metav1.Condition {
	c := meta.FindStatusCondition(fetch(g, w).Status.Conditions, typ)
	g.ExpectWithOffset(1, c).NotTo(BeNil(), "condition %s missing", typ)
	return *c
}

func validDecision(name phiguardv1alpha1.SafeguardName, expires metav1.Time) phiguardv1alpha1.Decision {
	return phiguardv1alpha1.Decision{
		Safeguard: name, Kind: phiguardv1alpha1.DecisionNotReasonable,
		Justification: "traffic stays on an isolated node pool with no ingress",
		ApprovedBy:    "security-officer", Expires: expires,
	}
}

// eventsFor lists the events.k8s.io Events recorded about an object.
func eventsFor(g Gomega, obj client.Object) []eventsv1.Event {
	var list eventsv1.EventList
	g.ExpectWithOffset(1, k8s.List(ctx, &list, client.InNamespace(obj.GetNamespace()))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.UID == obj.GetUID() {
			out = append(out, e)
		}
	}
	return out
}

// objectKey is the key of a cluster-scoped object.
func objectKey(name string) client.ObjectKey { return client.ObjectKey{Name: name} }

// announced says whether an action was recorded about obj: an Event of its
// own with reason whose note contains text, or, when it was taken on the
// first evaluation, the Event that sums that up, naming it.
func announced(g Gomega, obj client.Object, reason, text string) bool {
	for _, e := range eventsFor(g, obj) {
		if (e.Reason == reason || e.Reason == phiguardv1alpha1.ReasonEvaluated) && strings.Contains(e.Note, text) {
			return true
		}
	}
	return false
}
