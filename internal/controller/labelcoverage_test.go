package controller_test

import (
	"fmt"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/testenv"
)

var ephi = map[string]string{phiguardv1alpha1.EPHILabel: "true"}

func podTemplate(podLabels map[string]string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: podLabels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/api:1"}}},
	}
}

// newDeployment creates a Deployment whose pods carry podLabels and whose
// selector is selector.
func newDeployment(ns, name string, objLabels, selector, podLabels map[string]string) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: objLabels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Template: podTemplate(podLabels),
		},
	}
	ExpectWithOffset(1, k8s.Create(ctx, d)).To(Succeed())
	return d
}

// generated is the key of the PHIWorkload generated for an object.
func generated(src controller.LabelSource, ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: src.GeneratedName(name)}
}

func getWorkload(g Gomega, key types.NamespacedName) *phiguardv1alpha1.PHIWorkload {
	var w phiguardv1alpha1.PHIWorkload
	g.ExpectWithOffset(1, k8s.Get(ctx, key, &w)).To(Succeed())
	return &w
}

func expectGone(g Gomega, key types.NamespacedName) {
	err := k8s.Get(ctx, key, &phiguardv1alpha1.PHIWorkload{})
	g.ExpectWithOffset(1, apierrors.IsNotFound(err)).To(BeTrue(), "PHIWorkload %s still exists (err %v)", key, err)
}

// coverageEvent finds the coverage Event with the reason about obj.
func coverageEvent(g Gomega, obj client.Object, reason string) eventsv1.Event {
	for _, e := range eventsFor(g, obj) {
		if e.Reason == reason && e.Action == "Coverage" {
			return e
		}
	}
	g.ExpectWithOffset(1, reason).To(BeEmpty(), "no %s Event about %s %s", reason, obj.GetObjectKind(), obj.GetName())
	return eventsv1.Event{}
}

// Covers the label controllers: a Deployment, StatefulSet, Service or
// Namespace labelled phiguard.io/ephi=true gets a generated PHIWorkload; the
// label's removal or the object's deletion takes it away with an Event; a
// hand-written PHIWorkload over the same pods wins.
var _ = Describe("Label coverage", func() {
	const timeout, poll = 10 * time.Second, 100 * time.Millisecond

	It("generates a PHIWorkload for a labelled Deployment from its selector, owned by it, with the policy's settings", func() {
		ns := newNamespace()
		d := newDeployment(ns, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api", "version": "v1"})
		newPod(ns, "api-1", map[string]string{"app": "api", "version": "v1"})
		key := generated(controller.DeploymentSource, ns, "api")
		Expect(key.Name).To(Equal("deploy-api"))
		Eventually(func(g Gomega) {
			w := getWorkload(g, key)
			g.Expect(w.Spec.Selector).To(Equal(metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}}))
			g.Expect(w.Spec.NamespaceWide).To(BeFalse())
			g.Expect(w.Spec.NetworkIsolation).To(BeNil(), "settings are left to the PHIPolicy")
			owner := metav1.GetControllerOf(w)
			g.Expect(owner).NotTo(BeNil())
			g.Expect(owner.UID).To(Equal(d.UID))
			g.Expect(owner.Kind).To(Equal("Deployment"))
			g.Expect(w.Labels).To(HaveKeyWithValue(phiguardv1alpha1.GeneratedFromLabel, "Deployment"))
			g.Expect(w.Labels).To(HaveKeyWithValue(phiguardv1alpha1.ManagedByLabel, "phiguard"))
			g.Expect(w.Annotations).To(HaveKeyWithValue(phiguardv1alpha1.SourceAnnotation, "Deployment/api"))
			g.Expect(w.Finalizers).To(ContainElement(controller.CoverageFinalizer))
			g.Expect(w.ManagedFields).To(ContainElement(HaveField("Manager", "phiguard")))
			// The PHIWorkload controller takes it from there.
			g.Expect(w.Status.MatchedPods).To(Equal(int32(1)))
			g.Expect(w.Status.Safeguards).To(ContainElement(And(
				HaveField("Name", phiguardv1alpha1.NetworkIsolated), HaveField("ModeSource", phiguardv1alpha1.SourceDefault))))
			g.Expect(coverageEvent(g, d, phiguardv1alpha1.ReasonCoverageCreated).Note).To(
				ContainSubstring("Deployment " + ns + "/api is labelled phiguard.io/ephi=true: PHIWorkload " + ns + "/deploy-api generated"))
		}, timeout, poll).Should(Succeed())

		By("its NetworkPolicy covers the Deployment's pods")
		Eventually(func(g Gomega) {
			var np networkingv1.NetworkPolicy
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: "phiguard-deploy-api"}, &np)).To(Succeed())
			g.Expect(np.Spec.PodSelector.MatchLabels).To(Equal(map[string]string{"app": "api"}))
		}, timeout, poll).Should(Succeed())

		By("a hand edit of the generated selector is reverted, other additions stay")
		w := getWorkload(Default, key)
		Expect(k8s.Patch(ctx, w, client.RawPatch(types.MergePatchType,
			[]byte(`{"spec":{"selector":{"matchLabels":{"app":"other"}},"integrity":{"mode":"Enforce"}}}`)),
			client.FieldOwner("kubectl-edit"))).To(Succeed())
		Eventually(func(g Gomega) {
			w := getWorkload(g, key)
			g.Expect(w.Spec.Selector.MatchLabels).To(Equal(map[string]string{"app": "api"}))
			g.Expect(w.Spec.Integrity).NotTo(BeNil())
		}, timeout, poll).Should(Succeed())
	})

	DescribeTable("puts back what someone changes of the metadata phiguard applied to a generated PHIWorkload",
		func(edit func(w *phiguardv1alpha1.PHIWorkload) string) {
			ns := newNamespace()
			d := newDeployment(ns, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api"})
			key := generated(controller.DeploymentSource, ns, "api")
			var w *phiguardv1alpha1.PHIWorkload
			Eventually(func(g Gomega) {
				w = getWorkload(g, key)
				g.Expect(w.Finalizers).To(ContainElement(controller.CoverageFinalizer))
			}, timeout, poll).Should(Succeed())

			Expect(k8s.Patch(ctx, w, client.RawPatch(types.JSONPatchType, []byte(edit(w))), client.FieldOwner("kubectl-edit"))).To(Succeed())
			Eventually(func(g Gomega) {
				got := getWorkload(g, key)
				g.Expect(got.UID).To(Equal(w.UID), "repaired, not generated again")
				g.Expect(got.Finalizers).To(ContainElement(controller.CoverageFinalizer))
				g.Expect(got.Labels).To(HaveKeyWithValue(phiguardv1alpha1.GeneratedFromLabel, "Deployment"))
				owner := metav1.GetControllerOf(got)
				g.Expect(owner).NotTo(BeNil())
				g.Expect(owner.UID).To(Equal(d.UID))
			}, timeout, poll).Should(Succeed())
		},
		Entry("the coverage finalizer removed", func(w *phiguardv1alpha1.PHIWorkload) string {
			i := slices.Index(w.Finalizers, controller.CoverageFinalizer)
			return fmt.Sprintf(`[{"op":"test","path":"/metadata/finalizers/%d","value":%q},{"op":"remove","path":"/metadata/finalizers/%d"}]`,
				i, controller.CoverageFinalizer, i)
		}),
		Entry("the generated-from label changed", func(*phiguardv1alpha1.PHIWorkload) string {
			return `[{"op":"replace","path":"/metadata/labels/phiguard.io~1generated-from","value":"Hand"}]`
		}),
		Entry("the owner reference removed", func(*phiguardv1alpha1.PHIWorkload) string {
			return `[{"op":"remove","path":"/metadata/ownerReferences"}]`
		}),
	)

	It("makes no write when a generated PHIWorkload holds what phiguard applies, whatever the shape of its selector", func() {
		ns := newNamespace()
		newDeployment(ns, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api"})
		Expect(k8s.Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Labels: ephi},
			Spec: appsv1.StatefulSetSpec{
				Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"db"}},
					{Key: "canary", Operator: metav1.LabelSelectorOpDoesNotExist}}},
				Template: podTemplate(map[string]string{"app": "db"}),
			},
		})).To(Succeed())
		wide := newNamespace()
		var namespace corev1.Namespace
		Expect(k8s.Get(ctx, objectKey(wide), &namespace)).To(Succeed())
		Expect(k8s.Patch(ctx, &namespace, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"phiguard.io/ephi":"true"}}}`)))).To(Succeed())

		for _, c := range []struct {
			src controller.LabelSource
			obj types.NamespacedName
			key types.NamespacedName
		}{
			{controller.DeploymentSource, types.NamespacedName{Namespace: ns, Name: "api"}, generated(controller.DeploymentSource, ns, "api")},
			{controller.StatefulSetSource, types.NamespacedName{Namespace: ns, Name: "db"}, generated(controller.StatefulSetSource, ns, "db")},
			{controller.NamespaceSource, objectKey(wide), generated(controller.NamespaceSource, wide, wide)},
		} {
			By(c.src.Kind)
			Eventually(func(g Gomega) {
				g.Expect(getWorkload(g, c.key).Finalizers).To(ContainElement(controller.CoverageFinalizer))
			}, timeout, poll).Should(Succeed())
			writes := &testenv.WriteCounter{}
			counted, err := client.New(writes.Wrap(cfg), client.Options{Scheme: scheme})
			Expect(err).NotTo(HaveOccurred())
			r := &controller.LabelReconciler{Client: counted, Source: c.src, ExemptNamespaces: []string{"kube-system", "phiguard-system"}}
			_, err = r.Reconcile(ctx, ctrl.Request{NamespacedName: c.obj})
			Expect(err).NotTo(HaveOccurred())
			Expect(writes.N()).To(BeZero(), "the fields phiguard applied compare equal to those it wants")
		}
	})

	It("generates one for a labelled StatefulSet", func() {
		ns := newNamespace()
		s := &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db", Labels: ephi},
			Spec: appsv1.StatefulSetSpec{
				Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"db"}}}},
				Template: podTemplate(map[string]string{"app": "db"}),
			},
		}
		Expect(k8s.Create(ctx, s)).To(Succeed())
		Eventually(func(g Gomega) {
			w := getWorkload(g, generated(controller.StatefulSetSource, ns, "db"))
			g.Expect(w.Name).To(Equal("sts-db"))
			g.Expect(w.Spec.Selector).To(Equal(*s.Spec.Selector))
			g.Expect(metav1.GetControllerOf(w).UID).To(Equal(s.UID))
		}, timeout, poll).Should(Succeed())
	})

	It("generates one for a labelled Service from its selector, and explains a Service without one", func() {
		ns := newNamespace()
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Labels: ephi},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"},
				Ports: []corev1.ServicePort{{Port: 443}}},
		}
		Expect(k8s.Create(ctx, svc)).To(Succeed())
		Eventually(func(g Gomega) {
			w := getWorkload(g, generated(controller.ServiceSource, ns, "web"))
			g.Expect(w.Spec.Selector).To(Equal(metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}))
			g.Expect(metav1.GetControllerOf(w).UID).To(Equal(svc.UID))
		}, timeout, poll).Should(Succeed())

		external := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "partner", Labels: ephi},
			Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "partner.example"},
		}
		Expect(k8s.Create(ctx, external)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(coverageEvent(g, external, phiguardv1alpha1.ReasonCoverageNotPossible).Note).To(
				ContainSubstring("the Service has no selector"))
		}, timeout, poll).Should(Succeed())
		expectGone(Default, generated(controller.ServiceSource, ns, "partner"))
	})

	It("covers every pod of a labelled Namespace with one namespace-wide PHIWorkload, which the objects inside defer to", func() {
		ns := newNamespace()
		newPod(ns, "a", map[string]string{"app": "a"})
		newPod(ns, "b", nil)
		var namespace corev1.Namespace
		Expect(k8s.Get(ctx, objectKey(ns), &namespace)).To(Succeed())
		Expect(k8s.Patch(ctx, &namespace, client.RawPatch(types.MergePatchType,
			[]byte(`{"metadata":{"labels":{"phiguard.io/ephi":"true"}}}`)))).To(Succeed())
		key := generated(controller.NamespaceSource, ns, ns)
		Eventually(func(g Gomega) {
			w := getWorkload(g, key)
			g.Expect(w.Spec.NamespaceWide).To(BeTrue())
			g.Expect(w.Spec.Selector).To(Equal(metav1.LabelSelector{}))
			g.Expect(metav1.GetControllerOf(w).UID).To(Equal(namespace.UID))
			g.Expect(w.Status.MatchedPods).To(Equal(int32(2)))
		}, timeout, poll).Should(Succeed())

		d := newDeployment(ns, "api", ephi, map[string]string{"app": "a"}, map[string]string{"app": "a"})
		Eventually(func(g Gomega) {
			g.Expect(coverageEvent(g, d, phiguardv1alpha1.ReasonCoveredByWorkload).Note).To(
				ContainSubstring("covered by PHIWorkload " + key.String() + " (generated for the Namespace)"))
		}, timeout, poll).Should(Succeed())
		Consistently(func(g Gomega) { expectGone(g, generated(controller.DeploymentSource, ns, "api")) }, time.Second, poll).Should(Succeed())

		By("unlabelling the namespace with a decision: the Event carries the approval, and the Deployment gets its own")
		Expect(k8s.Patch(ctx, &namespace, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{
			"labels":{"phiguard.io/ephi":null},
			"annotations":{"phiguard.io/unlabel-approved-by":"security-officer","phiguard.io/unlabel-justification":"records moved to the archive cluster"}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			expectGone(g, key)
			g.Expect(coverageEvent(g, &namespace, phiguardv1alpha1.ReasonCoverageRemoved).Note).To(ContainSubstring(
				"label phiguard.io/ephi=true removed from Namespace " + ns + "; removal approved by security-officer: records moved to the archive cluster; " +
					"generated PHIWorkload " + key.String() + " removed, its 2 pods are no longer covered"))
			getWorkload(g, generated(controller.DeploymentSource, ns, "api"))
		}, timeout, poll).Should(Succeed())
	})

	It("removes the PHIWorkload when the label goes, and records who lost coverage", func() {
		ns := newNamespace()
		d := newDeployment(ns, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api"})
		newPod(ns, "api-1", map[string]string{"app": "api"})
		key := generated(controller.DeploymentSource, ns, "api")
		Eventually(func(g Gomega) { g.Expect(getWorkload(g, key).Status.MatchedPods).To(Equal(int32(1))) }, timeout, poll).Should(Succeed())

		Expect(k8s.Patch(ctx, d, client.RawPatch(types.JSONPatchType,
			[]byte(`[{"op":"remove","path":"/metadata/labels/phiguard.io~1ephi"}]`)), client.FieldOwner("kubectl-label"))).To(Succeed())
		Eventually(func(g Gomega) {
			expectGone(g, key)
			note := coverageEvent(g, d, phiguardv1alpha1.ReasonCoverageRemoved).Note
			g.Expect(note).To(ContainSubstring("label phiguard.io/ephi=true removed from Deployment " + ns + "/api; generated"))
			g.Expect(note).To(ContainSubstring("generated PHIWorkload " + key.String() + " removed, its 1 pods are no longer covered"))
		}, timeout, poll).Should(Succeed())
		Eventually(func(g Gomega) {
			var list networkingv1.NetworkPolicyList
			g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
			g.Expect(list.Items).To(BeEmpty(), "its NetworkPolicy goes with it")
		}, timeout, poll).Should(Succeed())

		By("labelling it again covers it again")
		Expect(k8s.Patch(ctx, d, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"phiguard.io/ephi":"true"}}}`)))).To(Succeed())
		Eventually(func(g Gomega) { getWorkload(g, key) }, timeout, poll).Should(Succeed())
	})

	It("removes the PHIWorkload when the object is deleted, with an Event about the deleted object", func() {
		ns := newNamespace()
		svc := &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Labels: ephi},
			Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 443}}},
		}
		Expect(k8s.Create(ctx, svc)).To(Succeed())
		key := generated(controller.ServiceSource, ns, "web")
		Eventually(func(g Gomega) { getWorkload(g, key) }, timeout, poll).Should(Succeed())

		Expect(k8s.Delete(ctx, svc)).To(Succeed())
		Eventually(func(g Gomega) {
			expectGone(g, key)
			g.Expect(coverageEvent(g, svc, phiguardv1alpha1.ReasonCoverageRemoved).Note).To(
				ContainSubstring("Service " + ns + "/web was deleted; generated PHIWorkload " + key.String() + " removed"))
		}, timeout, poll).Should(Succeed())
	})

	It("generates the PHIWorkload again when it is deleted by hand while the object stays labelled", func() {
		ns := newNamespace()
		d := newDeployment(ns, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api"})
		key := generated(controller.DeploymentSource, ns, "api")
		var first *phiguardv1alpha1.PHIWorkload
		Eventually(func(g Gomega) { first = getWorkload(g, key) }, timeout, poll).Should(Succeed())
		Expect(k8s.Delete(ctx, first)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(getWorkload(g, key).UID).NotTo(Equal(first.UID))
			g.Expect(coverageEvent(g, d, phiguardv1alpha1.ReasonCoverageInterrupted).Note).To(ContainSubstring("phiguard generates it again"))
		}, timeout, poll).Should(Succeed())
	})

	It("lets a hand-written PHIWorkload over the same pods win, whichever comes first", func() {
		ns := newNamespace()
		By("hand-written first: nothing is generated")
		newWorkload(ns, "records", nil) // selects app=records
		first := newDeployment(ns, "records", ephi, map[string]string{"app": "records"},
			map[string]string{"app": "records", "tier": "backend"})
		Eventually(func(g Gomega) {
			g.Expect(coverageEvent(g, first, phiguardv1alpha1.ReasonCoveredByWorkload).Note).To(
				ContainSubstring("covered by PHIWorkload " + ns + "/records (written by hand)"))
		}, timeout, poll).Should(Succeed())
		Consistently(func(g Gomega) { expectGone(g, generated(controller.DeploymentSource, ns, "records")) }, time.Second, poll).Should(Succeed())

		By("generated first: the hand-written one replaces it")
		d := newDeployment(ns, "billing", ephi, map[string]string{"app": "billing"}, map[string]string{"app": "billing"})
		key := generated(controller.DeploymentSource, ns, "billing")
		Eventually(func(g Gomega) { getWorkload(g, key) }, timeout, poll).Should(Succeed())
		hand := newWorkload(ns, "billing-hipaa", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Selector = metav1.LabelSelector{MatchLabels: map[string]string{"app": "billing"}}
		})
		Eventually(func(g Gomega) {
			expectGone(g, key)
			g.Expect(coverageEvent(g, d, phiguardv1alpha1.ReasonCoveredByWorkload).Note).To(And(
				ContainSubstring("covered by PHIWorkload "+ns+"/billing-hipaa (written by hand)"),
				ContainSubstring("its pods stay covered")))
		}, timeout, poll).Should(Succeed())

		By("the hand-written one deleted: coverage is generated again")
		Expect(k8s.Delete(ctx, hand)).To(Succeed())
		Eventually(func(g Gomega) { getWorkload(g, key) }, timeout, poll).Should(Succeed())
	})

	It("does not cover labelled objects in exempt namespaces, and withdraws coverage when a namespace becomes exempt", func() {
		d := newDeployment("kube-system", "ephi-in-kube-system", ephi, map[string]string{"app": "x"}, map[string]string{"app": "x"})
		DeferCleanup(func() { Expect(k8s.Delete(ctx, d)).To(Succeed()) })
		Eventually(func(g Gomega) {
			g.Expect(coverageEvent(g, d, phiguardv1alpha1.ReasonCoverageNotPossible).Note).To(ContainSubstring("namespace kube-system is exempt"))
		}, timeout, poll).Should(Succeed())
		expectGone(Default, generated(controller.DeploymentSource, "kube-system", d.Name))

		ns := newNamespace()
		inPolicy := newDeployment(ns, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api"})
		key := generated(controller.DeploymentSource, ns, "api")
		Eventually(func(g Gomega) { getWorkload(g, key) }, timeout, poll).Should(Succeed())
		policy := &phiguardv1alpha1.PHIPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
			Spec:       phiguardv1alpha1.PHIPolicySpec{ExemptNamespaces: []string{ns}},
		}
		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })
		Eventually(func(g Gomega) {
			expectGone(g, key)
			g.Expect(coverageEvent(g, inPolicy, phiguardv1alpha1.ReasonCoverageNotPossible).Note).To(
				ContainSubstring("namespace " + ns + " is exempt"))
		}, timeout, poll).Should(Succeed())
	})

	It("leaves alone a PHIWorkload it did not generate that has the generated name", func() {
		ns := newNamespace()
		newWorkload(ns, "deploy-api", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Selector = metav1.LabelSelector{MatchLabels: map[string]string{"app": "elsewhere"}}
		})
		d := newDeployment(ns, "api", ephi, map[string]string{"app": "api"}, map[string]string{"app": "api"})
		Eventually(func(g Gomega) {
			g.Expect(coverageEvent(g, d, phiguardv1alpha1.ReasonWorkloadNameTaken).Note).To(ContainSubstring("was not generated for Deployment"))
		}, timeout, poll).Should(Succeed())
		w := getWorkload(Default, generated(controller.DeploymentSource, ns, "api"))
		Expect(w.Spec.Selector.MatchLabels).To(HaveKeyWithValue("app", "elsewhere"))
	})
})

var _ = Describe("GeneratedName", func() {
	It("is <prefix>-<name>, shortened with a hash past 63 characters", func() {
		Expect(controller.NamespaceSource.GeneratedName("clinic")).To(Equal("ns-clinic"))
		long := strings.Repeat("a", 60) + ".b"
		name := controller.DeploymentSource.GeneratedName(long)
		Expect(len(name)).To(BeNumerically("<=", 63))
		Expect(name).To(MatchRegexp(`^deploy-a+-[0-9a-f]{8}$`))
		Expect(controller.DeploymentSource.GeneratedName(long)).To(Equal(name), "deterministic")
		Expect(controller.DeploymentSource.GeneratedName(long+"c")).NotTo(Equal(name), "distinct names stay distinct")
	})
})
