package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Covers the PHIPolicy named "default": its defaults fill what a workload leaves
// empty, the status says where each mode came from, and a policy change
// reaches existing workloads through the watch.
var _ = Describe("PHIPolicy defaults", Ordered, func() {
	const timeout, poll = 10 * time.Second, 100 * time.Millisecond
	var policy *phiguardv1alpha1.PHIPolicy

	BeforeAll(func() {
		policy = &phiguardv1alpha1.PHIPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
			Spec: phiguardv1alpha1.PHIPolicySpec{Defaults: phiguardv1alpha1.SafeguardSettings{
				Availability: &phiguardv1alpha1.AvailabilitySpec{Mode: phiguardv1alpha1.ModeEnforce},
			}},
		}
		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })
	})

	row := func(g Gomega, w *phiguardv1alpha1.PHIWorkload, name phiguardv1alpha1.SafeguardName) phiguardv1alpha1.SafeguardStatus {
		for _, r := range fetch(g, w).Status.Safeguards {
			if r.Name == name {
				return r
			}
		}
		g.Expect(name).To(BeEmpty(), "no status row for the safeguard")
		return phiguardv1alpha1.SafeguardStatus{}
	}

	It("applies the policy's defaults under the workload's own settings", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Integrity = &phiguardv1alpha1.IntegritySpec{Mode: phiguardv1alpha1.ModeEnforce}
		})
		Eventually(func(g Gomega) {
			g.Expect(fetch(g, w).Status.Policy).To(Equal(phiguardv1alpha1.DefaultPolicyName))
			g.Expect(row(g, w, phiguardv1alpha1.Available)).To(And(
				HaveField("Mode", phiguardv1alpha1.ModeEnforce), HaveField("ModeSource", phiguardv1alpha1.SourcePolicy)))
			g.Expect(row(g, w, phiguardv1alpha1.IntegrityProtected)).To(And(
				HaveField("Mode", phiguardv1alpha1.ModeEnforce), HaveField("ModeSource", phiguardv1alpha1.SourceWorkload)))
			g.Expect(row(g, w, phiguardv1alpha1.AccessControlled)).To(And(
				HaveField("Mode", phiguardv1alpha1.ModeAudit), HaveField("ModeSource", phiguardv1alpha1.SourceDefault)))
		}, timeout, poll).Should(Succeed())

		By("a policy change reaches the existing workload")
		Expect(k8s.Patch(ctx, policy, client.RawPatch(client.Merge.Type(),
			[]byte(`{"spec":{"defaults":{"availability":{"mode":"Audit"},"accessControl":{"mode":"Enforce"}}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(row(g, w, phiguardv1alpha1.Available)).To(And(
				HaveField("Mode", phiguardv1alpha1.ModeAudit), HaveField("ModeSource", phiguardv1alpha1.SourcePolicy)))
			g.Expect(row(g, w, phiguardv1alpha1.AccessControlled)).To(And(
				HaveField("Mode", phiguardv1alpha1.ModeEnforce), HaveField("ModeSource", phiguardv1alpha1.SourcePolicy)))
		}, timeout, poll).Should(Succeed())
	})

	It("fans a policy change out to exactly the workloads whose effective settings change", func() {
		ns := newNamespace()
		newDeployment(ns, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api"})
		inherits := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deploy-api"}}
		pinned := newWorkload(ns, "pinned", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{Mode: phiguardv1alpha1.ModeEnforce}
		})
		Eventually(func(g Gomega) {
			g.Expect(row(g, inherits, phiguardv1alpha1.NetworkIsolated)).To(HaveField("Mode", phiguardv1alpha1.ModeEnforce))
			g.Expect(row(g, pinned, phiguardv1alpha1.NetworkIsolated)).To(HaveField("Reason", phiguardv1alpha1.ReasonNoPodsSelected))
		}, timeout, poll).Should(Succeed())
		// Settled: nothing else is written to either until the policy changes.
		var before phiguardv1alpha1.PHIWorkload
		var beforeGenerated phiguardv1alpha1.PHIWorkload
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(pinned), &before)).To(Succeed())
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(inherits), &beforeGenerated)).To(Succeed())
			g.Consistently(func(g Gomega) {
				g.Expect(fetch(g, pinned).ResourceVersion).To(Equal(before.ResourceVersion))
			}, time.Second, poll).Should(Succeed())
		}, timeout, poll).Should(Succeed())

		Expect(k8s.Patch(ctx, policy, client.RawPatch(client.Merge.Type(),
			[]byte(`{"spec":{"defaults":{"networkIsolation":{"mode":"Audit"}}}}`)))).To(Succeed())
		DeferCleanup(func() {
			Expect(k8s.Patch(ctx, policy, client.RawPatch(client.Merge.Type(),
				[]byte(`{"spec":{"defaults":{"networkIsolation":null}}}`)))).To(Succeed())
		})
		By("the workload that inherits the mode follows the policy")
		Eventually(func(g Gomega) {
			g.Expect(row(g, inherits, phiguardv1alpha1.NetworkIsolated)).To(And(
				HaveField("Mode", phiguardv1alpha1.ModeAudit), HaveField("ModeSource", phiguardv1alpha1.SourcePolicy)))
		}, timeout, poll).Should(Succeed())
		By("the workload that sets its own mode, and the generated workload's spec, are not written")
		Consistently(func(g Gomega) {
			g.Expect(fetch(g, pinned).ResourceVersion).To(Equal(before.ResourceVersion))
			g.Expect(fetch(g, inherits).Generation).To(Equal(beforeGenerated.Generation))
		}, 2*time.Second, poll).Should(Succeed())
	})

	It("exempts the policy's exempt namespaces", func() {
		ns := newNamespace()
		Expect(k8s.Patch(ctx, policy, client.RawPatch(client.Merge.Type(),
			[]byte(`{"spec":{"exemptNamespaces":["`+ns+`"]}}`)))).To(Succeed())
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) {
			st := condition(g, w, "Stalled")
			g.Expect(st.Reason).To(Equal(phiguardv1alpha1.ReasonNamespaceExempt))
			g.Expect(st.Message).To(ContainSubstring("namespace " + ns + " is exempt"))
		}, timeout, poll).Should(Succeed())
	})
})
