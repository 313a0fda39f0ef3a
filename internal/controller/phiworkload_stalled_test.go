package controller_test

import (
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// Covers input the API's validation cannot catch: the workload reports Stalled
// with a reason and what to fix, and recovers once the spec is fixed.
var _ = Describe("PHIWorkload with a spec that cannot be acted on", func() {
	const timeout, poll = 10 * time.Second, 100 * time.Millisecond

	all := safeguard.New(safeguard.Options{}).Names()
	// expectStalled waits for Stalled with the reason, and for exactly the
	// safeguards in notEvaluated to be Unknown with it.
	expectStalled := func(w *phiguardv1alpha1.PHIWorkload, reason, message string, notEvaluated ...phiguardv1alpha1.SafeguardName) {
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
			g.Expect(got.Status.Safeguards).To(HaveLen(len(all)))
			for _, name := range all {
				c := condition(g, w, string(name))
				if slices.Contains(notEvaluated, name) {
					g.Expect(c.Status).To(Equal(metav1.ConditionUnknown), "%s is not evaluated while stalled", name)
					g.Expect(c.Reason).To(Equal(reason))
				} else {
					g.Expect(c.Reason).NotTo(Equal(reason), "%s is evaluated", name)
				}
			}
			if len(notEvaluated) == len(all) {
				g.Expect(got.Status.Score).To(Equal("0/8"))
			}
		}, timeout, poll).Should(Succeed())

		By("recording one Warning Event for the stall, not one per safeguard")
		Eventually(func(g Gomega) {
			var stalledEvents int
			for _, e := range eventsFor(g, fetch(g, w)) {
				if e.Action == phiguardv1alpha1.StalledCondition {
					g.Expect(e.Type).To(Equal("Warning"))
					stalledEvents++
					continue
				}
				g.Expect(slices.Contains(all, phiguardv1alpha1.SafeguardName(e.Action)) && e.Reason == reason).To(BeFalse(),
					"no Event per stalled safeguard: %s %s", e.Action, e.Reason)
				if len(notEvaluated) == len(all) {
					g.Expect(e.Action).To(Equal(phiguardv1alpha1.StalledCondition), "only the Stalled condition changed")
				}
			}
			g.Expect(stalledEvents).To(Equal(1))
		}, timeout, poll).Should(Succeed())
	}

	// The schedule belongs to one safeguard: it stalls, the others still run.
	It("stalls the backup safeguard on a cron schedule with a field out of range, then recovers", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{Schedule: "61 * * * *"}
		})
		expectStalled(w, phiguardv1alpha1.ReasonInvalidSchedule, `backup.schedule "61 * * * *" is not a valid cron schedule`,
			phiguardv1alpha1.BackupScheduled)
		Expect(condition(Default, w, string(phiguardv1alpha1.NetworkIsolated))).To(HaveField("Reason", phiguardv1alpha1.ReasonNoPodsSelected),
			"network isolation is evaluated all the same (and finds no pod selected)")
		Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: safeguard.NetworkPolicyName(w.Name)}, &networkingv1.NetworkPolicy{})).
			To(Succeed(), "and enforced: its NetworkPolicy is there for pods to come")

		By("fixing the schedule removes Stalled")
		Expect(k8s.Patch(ctx, w, client.RawPatch(client.Merge.Type(),
			[]byte(`{"spec":{"backup":{"schedule":"1 * * * *"}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			got := fetch(g, w)
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(got.Status.Conditions).NotTo(ContainElement(HaveField("Type", phiguardv1alpha1.StalledCondition)))
			g.Expect(got.Status.Safeguards).To(HaveLen(len(all)))
		}, timeout, poll).Should(Succeed())
	})

	It("stalls on a selector the apiserver accepts but cannot be evaluated", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Selector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "app", Operator: metav1.LabelSelectorOpIn},
			}}
		})
		expectStalled(w, phiguardv1alpha1.ReasonInvalidSelector, "spec.selector is invalid", all...)
	})

	It("stalls in an exempt namespace", func() {
		w := newWorkload("kube-system", "records", nil)
		DeferCleanup(func() { Expect(k8s.Delete(ctx, w)).To(Succeed()) })
		expectStalled(w, phiguardv1alpha1.ReasonNamespaceExempt, "namespace kube-system is exempt from phiguard", all...)
	})
})
