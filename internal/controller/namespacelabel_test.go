package controller_test

import (
	"context"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
)

// The label phiguard.io/holds-ephi follows the PHIWorkloads of a namespace,
// never lands on an exempt one, comes back when removed by hand, and leaves
// alone the same label someone else set.
var _ = Describe("the namespace label phiguard.io/holds-ephi", Ordered, func() {
	const timeout, poll = 10 * time.Second, 50 * time.Millisecond

	BeforeAll(func() {
		// The suite's manager runs without this controller; this one runs only it.
		mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
		Expect(err).NotTo(HaveOccurred())
		Expect((&controller.NamespaceLabelReconciler{
			Client: mgr.GetClient(), ExemptNamespaces: []string{"kube-system", "phiguard-system"},
		}).SetupWithManager(mgr)).To(Succeed())
		mgrCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer GinkgoRecover()
			defer close(done)
			Expect(mgr.Start(mgrCtx)).To(Succeed())
		}()
		DeferCleanup(func() {
			stop()
			Eventually(done, timeout).Should(BeClosed())
		})
	})

	// label returns the namespace's holds-ephi label ("" when absent) and
	// the field managers that own it.
	label := func(g Gomega, name string) (string, []string) {
		var ns corev1.Namespace
		g.ExpectWithOffset(1, k8s.Get(ctx, client.ObjectKey{Name: name}, &ns)).To(Succeed())
		var owners []string
		for _, mf := range ns.ManagedFields {
			if mf.FieldsV1 != nil && strings.Contains(mf.FieldsV1.GetRawString(), `"f:`+phiguardv1alpha1.HoldsEPHILabel+`"`) {
				owners = append(owners, mf.Manager)
			}
		}
		return ns.Labels[phiguardv1alpha1.HoldsEPHILabel], owners
	}
	labelled := func(name string) func(Gomega) {
		return func(g Gomega) {
			value, owners := label(g, name)
			g.Expect(value).To(Equal(phiguardv1alpha1.HoldsEPHILabelValue))
			g.Expect(owners).To(ContainElement(controller.NamespaceLabelFieldOwner))
		}
	}
	unlabelled := func(name string) func(Gomega) {
		return func(g Gomega) {
			value, owners := label(g, name)
			g.Expect(value).To(BeEmpty())
			g.Expect(owners).To(BeEmpty())
		}
	}
	deleteWorkload := func(w *phiguardv1alpha1.PHIWorkload) {
		GinkgoHelper()
		Expect(k8s.Delete(ctx, w)).To(Succeed())
		// The suite's controller removes its finalizer; then it is gone.
		Eventually(func() error {
			return k8s.Get(ctx, client.ObjectKeyFromObject(w), &phiguardv1alpha1.PHIWorkload{})
		}, timeout, poll).Should(MatchError(ContainSubstring("not found")))
	}

	It("is on a namespace while it holds a PHIWorkload, and only then", func() {
		ns := newNamespace()
		other := newNamespace()
		first := newWorkload(ns, "records", nil)
		Eventually(labelled(ns), timeout, poll).Should(Succeed())
		unlabelled(other)(Default) // a namespace without PHIWorkloads is not labelled

		By("one of two workloads deleted: the label stays")
		second := newWorkload(ns, "billing", nil)
		deleteWorkload(first)
		Consistently(labelled(ns), time.Second, poll).Should(Succeed())

		By("the last one deleted: the label goes")
		deleteWorkload(second)
		Eventually(unlabelled(ns), timeout, poll).Should(Succeed())
	})

	It("comes back when removed or changed by hand", func() {
		ns := newNamespace()
		newWorkload(ns, "records", nil)
		Eventually(labelled(ns), timeout, poll).Should(Succeed())
		for _, patch := range []string{
			`{"metadata":{"labels":{"phiguard.io/holds-ephi":null}}}`,
			`{"metadata":{"labels":{"phiguard.io/holds-ephi":"false"}}}`,
		} {
			Expect(k8s.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
				client.RawPatch(client.Merge.Type(), []byte(patch)))).To(Succeed())
			Eventually(labelled(ns), timeout, poll).Should(Succeed(), "after %s", patch)
		}
	})

	It("leaves the label someone else set on a namespace without PHIWorkloads", func() {
		ns := newNamespace()
		Expect(k8s.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
			client.RawPatch(client.Merge.Type(), []byte(`{"metadata":{"labels":{"phiguard.io/holds-ephi":"true"}}}`)))).To(Succeed())
		w := newWorkload(ns, "records", nil)
		Eventually(labelled(ns), timeout, poll).Should(Succeed())
		deleteWorkload(w)
		Eventually(func(g Gomega) {
			value, owners := label(g, ns)
			g.Expect(value).To(Equal(phiguardv1alpha1.HoldsEPHILabelValue))
			g.Expect(owners).NotTo(ContainElement(controller.NamespaceLabelFieldOwner))
			g.Expect(owners).NotTo(BeEmpty())
		}, timeout, poll).Should(Succeed())
	})

	It("never labels an exempt namespace, and withdraws it from one the PHIPolicy exempts", func() {
		ensureNamespace("phiguard-system")
		stray := newWorkload("phiguard-system", "stray", nil)
		DeferCleanup(deleteWorkload, stray)
		ns := newNamespace()
		newWorkload(ns, "records", nil)
		Eventually(labelled(ns), timeout, poll).Should(Succeed())
		Consistently(unlabelled("phiguard-system"), time.Second, poll).Should(Succeed())

		By("the PHIPolicy exempts the namespace: the label goes")
		policy := &phiguardv1alpha1.PHIPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
			Spec:       phiguardv1alpha1.PHIPolicySpec{ExemptNamespaces: []string{ns}},
		}
		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(client.IgnoreNotFound(k8s.Delete(ctx, policy))).To(Succeed()) })
		Eventually(unlabelled(ns), timeout, poll).Should(Succeed())

		By("the exemption lifted: the label is back")
		Expect(k8s.Patch(ctx, policy, client.RawPatch(client.Merge.Type(), []byte(`{"spec":{"exemptNamespaces":null}}`)))).To(Succeed())
		Eventually(labelled(ns), timeout, poll).Should(Succeed())
	})
})
