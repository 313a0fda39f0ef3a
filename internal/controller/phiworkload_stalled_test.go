package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// Covers input the API's validation cannot catch: the workload reports Stalled
// with a reason and what to fix, and recovers once the spec is fixed.
var _ = Describe("PHIWorkload with a spec that cannot be acted on", func() {
	const timeout, poll = 10 * time.Second, 100 * time.Millisecond

	expectStalled := func(w *phiguardv1alpha1.PHIWorkload, reason, message string) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			st := condition(g, w, phiguardv1alpha1.StalledCondition)
			g.Expect(st.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(st.Reason).To(Equal(reason))
			g.Expect(st.Message).To(ContainSubstring(message))
			ready := condition(g, w, phiguardv1alpha1.ReadyCondition)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(reason))
			got := fetch(g, w)
			g.Expect(got.Status.Compliance).To(Equal(phiguardv1alpha1.NonCompliant))
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(got.Status.Score).To(Equal("0/8"))
			g.Expect(got.Status.Safeguards).To(HaveLen(len(safeguard.Order)))
			for _, name := range safeguard.Order {
				c := condition(g, w, string(name))
				g.Expect(c.Status).To(Equal(metav1.ConditionUnknown), "%s is not evaluated while stalled", name)
				g.Expect(c.Reason).To(Equal(reason))
			}
		}, timeout, poll).Should(Succeed())

		By("recording one Warning Event for the stall, not one per safeguard")
		Eventually(func(g Gomega) {
			var stalledEvents int
			for _, e := range eventsFor(g, fetch(g, w)) {
				g.Expect(e.Action).To(Equal(phiguardv1alpha1.StalledCondition), "only the Stalled condition changed")
				g.Expect(e.Type).To(Equal("Warning"))
				stalledEvents++
			}
			g.Expect(stalledEvents).To(Equal(1))
		}, timeout, poll).Should(Succeed())
	}

	It("stalls on a cron schedule with a field out of range, then recovers", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{Schedule: "61 * * * *"}
		})
		expectStalled(w, phiguardv1alpha1.ReasonInvalidSchedule, `backup.schedule "61 * * * *" is not a valid cron schedule`)

		By("fixing the schedule removes Stalled")
		Expect(k8s.Patch(ctx, w, client.RawPatch(client.Merge.Type(),
			[]byte(`{"spec":{"backup":{"schedule":"1 * * * *"}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			got := fetch(g, w)
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(got.Status.Conditions).NotTo(ContainElement(HaveField("Type", phiguardv1alpha1.StalledCondition)))
			g.Expect(got.Status.Safeguards).To(HaveLen(len(safeguard.Order)))
		}, timeout, poll).Should(Succeed())
	})

	It("stalls on a selector the apiserver accepts but cannot be evaluated", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Selector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn},
			}}
		})
		expectStalled(w, phiguardv1alpha1.ReasonInvalidSelector, "spec.selector is invalid")
	})

	It("stalls in an exempt namespace", func() {
		w := newWorkload("kube-system", "records", nil)
		DeferCleanup(func() { Expect(k8s.Delete(ctx, w)).To(Succeed()) })
		expectStalled(w, phiguardv1alpha1.ReasonNamespaceExempt, "namespace kube-system is exempt from phiguard")
	})
})
