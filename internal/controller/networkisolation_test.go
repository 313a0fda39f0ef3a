package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
	"github.com/phiguard/phiguard/internal/ssa"
)

// Covers the NetworkIsolated safeguard on the real apiserver: the generated
// policy, spec changes, drift by edit and by delete, a hand-written policy
// that opens the pods wider (and how fast the watch notices), switching modes
// both ways, garbage collection, and Audit against hand-written policies.
var _ = Describe("Network isolation", func() {
	const timeout, poll = 10 * time.Second, 50 * time.Millisecond

	policyOf := func(g Gomega, ns, workload string) *networkingv1.NetworkPolicy {
		np := &networkingv1.NetworkPolicy{}
		g.ExpectWithOffset(1, k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: safeguard.NetworkPolicyName(workload)}, np)).To(Succeed())
		return np
	}
	expectNoPolicy := func(ns, workload string) {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: safeguard.NetworkPolicyName(workload)}, &networkingv1.NetworkPolicy{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "NetworkPolicy still there: %v", err)
		}, timeout, poll).Should(Succeed())
	}
	isolated := func(g Gomega, w *phiguardv1alpha1.PHIWorkload) metav1.Condition {
		return condition(g, w, string(phiguardv1alpha1.NetworkIsolated))
	}
	hasEvent := func(g Gomega, w *phiguardv1alpha1.PHIWorkload, reason, kind string) {
		var found bool
		for _, e := range eventsFor(g, fetch(g, w)) {
			found = found || (e.Reason == reason && e.Type == kind && e.Action == string(phiguardv1alpha1.NetworkIsolated))
		}
		g.ExpectWithOffset(1, found).To(BeTrue(), "no %s Event %s", kind, reason)
	}

	It("applies a default-deny policy owned by the workload, and isolates pods created later", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{
				Ingress: []phiguardv1alpha1.NetworkIngressRule{{
					From:  []phiguardv1alpha1.NetworkPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}},
					Ports: []phiguardv1alpha1.NetworkPort{{Port: ptr.To(intstr.FromString("http"))}},
				}},
			}
		})

		var np *networkingv1.NetworkPolicy
		Eventually(func(g Gomega) {
			np = policyOf(g, ns, "records")
			c := isolated(g, w)
			g.Expect(c.Status).To(Equal(metav1.ConditionUnknown), "no pod yet: nothing to judge")
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonNoPodsSelected))
		}, timeout, poll).Should(Succeed())

		w = fetch(Default, w)
		Expect(np.OwnerReferences).To(ConsistOf(And(
			HaveField("UID", w.UID), HaveField("Kind", "PHIWorkload"), HaveField("Name", "records"),
			HaveField("Controller", HaveValue(BeTrue())), HaveField("BlockOwnerDeletion", HaveValue(BeTrue())))))
		Expect(np.Labels).To(Equal(map[string]string{
			phiguardv1alpha1.ManagedByLabel: phiguardv1alpha1.ManagedByValue, phiguardv1alpha1.WorkloadLabel: "records"}))
		Expect(np.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))
		Expect(np.Spec.PodSelector).To(Equal(w.Spec.Selector))
		Expect(np.Spec.Ingress).To(HaveLen(2), "same workload, then the declared rule")
		Expect(np.Spec.Ingress[1].Ports).To(ConsistOf(HaveField("Port", HaveValue(Equal(intstr.FromString("http"))))))
		Expect(np.Spec.Egress).To(HaveLen(2), "same workload and DNS")
		Expect(np.ManagedFields).To(ConsistOf(HaveField("Manager", ssa.FieldManager)), "applied by phiguard alone")
		Eventually(func(g Gomega) {
			g.Expect(announced(g, w, phiguardv1alpha1.ReasonPolicyCreated, "created NetworkPolicy "+np.Name)).To(BeTrue())
		}, timeout, poll).Should(Succeed())

		By("a pod created afterwards is selected by the policy as it stands: no write is needed")
		pod := newPod(ns, "records-late", map[string]string{"app": "records"})
		Eventually(func(g Gomega) {
			g.Expect(fetch(g, w).Status.MatchedPods).To(BeEquivalentTo(1))
			c := isolated(g, w)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
			g.Expect(c.Message).To(HavePrefix("NetworkPolicy phiguard-records isolates the 1 selected pods"))
		}, timeout, poll).Should(Succeed())
		after := policyOf(Default, ns, "records")
		Expect(after.ResourceVersion).To(Equal(np.ResourceVersion))
		sel, err := metav1.LabelSelectorAsSelector(&after.Spec.PodSelector)
		Expect(err).NotTo(HaveOccurred())
		Expect(sel.Matches(labels.Set(pod.Labels))).To(BeTrue())
	})

	It("follows spec changes", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) { g.Expect(policyOf(g, ns, "records").Spec.Egress).To(HaveLen(2)) }, timeout, poll).Should(Succeed())

		Expect(k8s.Patch(ctx, w, client.RawPatch(types.MergePatchType,
			[]byte(`{"spec":{"networkIsolation":{"allowDNS":false,"egress":[{"to":[{"ipBlock":{"cidr":"203.0.113.0/24"}}],"ports":[{"port":443}]}]}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			egress := policyOf(g, ns, "records").Spec.Egress
			g.Expect(egress).To(HaveLen(2), "same workload and the declared rule; DNS gone")
			g.Expect(egress[1].To).To(ConsistOf(HaveField("IPBlock.CIDR", "203.0.113.0/24")))
			g.Expect(egress[1].Ports).To(ConsistOf(And(
				HaveField("Protocol", HaveValue(Equal(corev1.ProtocolTCP))), HaveField("Port", HaveValue(Equal(intstr.FromInt32(443)))))))
			hasEvent(g, w, phiguardv1alpha1.ReasonPolicyUpdated, corev1.EventTypeNormal)
		}, timeout, poll).Should(Succeed())
	})

	It("reverts an edit and re-creates a deleted policy, announcing the drift", func() {
		ns := newNamespace()
		newPod(ns, "records-0", map[string]string{"app": "records"})
		w := newWorkload(ns, "records", nil)
		var np *networkingv1.NetworkPolicy
		Eventually(func(g Gomega) {
			np = policyOf(g, ns, "records")
			g.Expect(isolated(g, w).Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
		}, timeout, poll).Should(Succeed())
		want := np.Spec

		By("an edit that opens ingress to everyone is reverted")
		np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
		np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		Expect(k8s.Update(ctx, np, client.FieldOwner("kubectl-edit"))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(policyOf(g, ns, "records").Spec).To(Equal(want))
			hasEvent(g, w, phiguardv1alpha1.ReasonPolicyDrifted, corev1.EventTypeWarning)
		}, timeout, poll).Should(Succeed())

		By("a deleted policy is re-created")
		uid := np.UID
		Expect(k8s.Delete(ctx, np)).To(Succeed())
		Eventually(func(g Gomega) {
			again := policyOf(g, ns, "records")
			g.Expect(again.UID).NotTo(Equal(uid))
			g.Expect(again.Spec).To(Equal(want))
		}, timeout, poll).Should(Succeed())
		Eventually(func(g Gomega) {
			var messages []string
			for _, e := range eventsFor(g, fetch(g, w)) {
				if e.Reason == phiguardv1alpha1.ReasonPolicyDrifted {
					messages = append(messages, e.Note)
				}
			}
			g.Expect(messages).To(ContainElement(ContainSubstring("re-created NetworkPolicy phiguard-records, which was deleted")))
			g.Expect(messages).To(ContainElement(ContainSubstring("reverted changes that kubectl-edit made")))
		}, timeout, poll).Should(Succeed())
	})

	It("enforces nothing once its namespace is being deleted, where the apiserver refuses anything new", func() {
		ns := newNamespace()
		newPod(ns, "records-0", map[string]string{"app": "records"})
		w := newWorkload(ns, "records", nil)
		var np *networkingv1.NetworkPolicy
		var before metav1.Condition
		Eventually(func(g Gomega) {
			np = policyOf(g, ns, "records")
			before = isolated(g, w)
			g.Expect(before.Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
		}, timeout, poll).Should(Succeed())

		// This control plane runs no namespace controller: the namespace
		// stays Terminating with everything in it.
		Expect(k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		Eventually(func(g Gomega) {
			got := &corev1.Namespace{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, got)).To(Succeed())
			g.Expect(got.DeletionTimestamp).NotTo(BeNil())
		}, timeout, poll).Should(Succeed())
		Expect(k8s.Delete(ctx, np)).To(Succeed())
		Consistently(func(g Gomega) {
			now := isolated(g, w)
			g.Expect(now.Reason).To(Equal(before.Reason), now.Message)
			g.Expect(now.LastTransitionTime).To(Equal(before.LastTransitionTime))
		}, 3*time.Second, poll).Should(Succeed(), "the failed re-creation is not reported as the workload's state")
	})

	It("removes the policy when the mode leaves Enforce, and restores it when it returns", func() {
		ns := newNamespace()
		newPod(ns, "records-0", map[string]string{"app": "records"})
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) { policyOf(g, ns, "records") }, timeout, poll).Should(Succeed())

		Expect(k8s.Patch(ctx, w, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"networkIsolation":{"mode":"Audit"}}}`)))).To(Succeed())
		expectNoPolicy(ns, "records")
		Eventually(func(g Gomega) {
			c := isolated(g, w)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonPodsNotIsolated))
			g.Expect(c.Message).To(ContainSubstring("1 of 1 selected pods are not isolated: records-0 (ingress and egress open)"))
			hasEvent(g, w, phiguardv1alpha1.ReasonPolicyRemoved, corev1.EventTypeNormal)
		}, timeout, poll).Should(Succeed())

		Expect(k8s.Patch(ctx, w, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"networkIsolation":{"mode":"Enforce"}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			policyOf(g, ns, "records")
			g.Expect(isolated(g, w).Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
		}, timeout, poll).Should(Succeed())
	})

	It("turns False naming an allow-all NetworkPolicy within 2 s of its creation, and True within 2 s of its deletion", func() {
		// The watch maps a NetworkPolicy to the workloads whose pods it
		// selects; nothing polls. The flip times are logged.
		const flipWithin = 2 * time.Second
		ns := newNamespace()
		newPod(ns, "records-0", map[string]string{"app": "records"})
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) {
			g.Expect(isolated(g, w)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", phiguardv1alpha1.ReasonPolicyApplied)))
		}, timeout, poll).Should(Succeed())

		By("someone adds a policy that lets anything in and out of every pod of the namespace")
		allowAll := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-all"},
			Spec: networkingv1.NetworkPolicySpec{
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
				Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			},
		}
		start := time.Now()
		Expect(k8s.Create(ctx, allowAll)).To(Succeed())
		Eventually(func(g Gomega) {
			c := isolated(g, w)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonIsolationBypassed))
			g.Expect(c.Message).To(Equal("NetworkPolicy phiguard-records is applied, but NetworkPolicy " + ns + "/allow-all opens ingress from anywhere " +
				"on any port for 1 of 1 selected pods (records-0), wider than networkIsolation declares; NetworkPolicies add up, " +
				"so narrow or remove it, or declare what it opens in networkIsolation"))
		}).WithTimeout(flipWithin).WithPolling(poll).Should(Succeed())
		bypassed := time.Since(start)
		GinkgoWriter.Printf("NetworkIsolated False (IsolationBypassed) %v after the allow-all policy was created\n", bypassed)
		AddReportEntry("NetworkIsolated False after an allow-all policy", bypassed.String())

		By("deleting it restores the judgment")
		start = time.Now()
		Expect(k8s.Delete(ctx, allowAll)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(isolated(g, w)).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", phiguardv1alpha1.ReasonPolicyApplied)))
		}).WithTimeout(flipWithin).WithPolling(poll).Should(Succeed())
		restored := time.Since(start)
		GinkgoWriter.Printf("NetworkIsolated True again %v after the allow-all policy was deleted\n", restored)
		AddReportEntry("NetworkIsolated True after the allow-all policy is deleted", restored.String())
	})

	It("leaves the policy to garbage collection when the workload is deleted", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) { policyOf(g, ns, "records") }, timeout, poll).Should(Succeed())
		Expect(k8s.Delete(ctx, w)).To(Succeed())
		// The garbage collector resyncs its view of resources now and then; give it time.
		Eventually(func(g Gomega) {
			err := k8s.Get(ctx, types.NamespacedName{Namespace: ns, Name: safeguard.NetworkPolicyName("records")}, &networkingv1.NetworkPolicy{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "NetworkPolicy still there: %v", err)
		}, 60*time.Second, 200*time.Millisecond).Should(Succeed())
	})

	It("does not take over a policy of the same name that it does not own", func() {
		ns := newNamespace()
		theirs := &networkingv1.NetworkPolicy{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: safeguard.NetworkPolicyName("records")},
			Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}}},
		}
		Expect(k8s.Create(ctx, theirs)).To(Succeed())
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) {
			c := isolated(g, w)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonPolicyNameTaken))
		}, timeout, poll).Should(Succeed())
		Expect(policyOf(Default, ns, "records").Spec.PodSelector.MatchLabels).To(Equal(map[string]string{"app": "other"}))
	})

	Describe("in Audit mode, judged against the policies in the namespace", func() {
		audit := func(ns string) *phiguardv1alpha1.PHIWorkload {
			GinkgoHelper()
			newPod(ns, "records-0", map[string]string{"app": "records", "tier": "db"})
			newPod(ns, "records-1", map[string]string{"app": "records", "tier": "cache"})
			return newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
				w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{Mode: phiguardv1alpha1.ModeAudit}
			})
		}
		handWritten := func(ns, name string, match map[string]string, types ...networkingv1.PolicyType) {
			GinkgoHelper()
			Expect(k8s.Create(ctx, &networkingv1.NetworkPolicy{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec:       networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: match}, PolicyTypes: types},
			})).To(Succeed())
		}

		It("reports pods no policy selects", func() {
			ns := newNamespace()
			w := audit(ns)
			Eventually(func(g Gomega) {
				c := isolated(g, w)
				g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonPodsNotIsolated))
				g.Expect(c.Message).To(ContainSubstring("2 of 2 selected pods are not isolated: records-0 (ingress and egress open), records-1 (ingress and egress open)"))
			}, timeout, poll).Should(Succeed())
			Consistently(func(g Gomega) {
				var list networkingv1.NetworkPolicyList
				g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
				g.Expect(list.Items).To(BeEmpty(), "Audit creates nothing")
			}, time.Second, 100*time.Millisecond).Should(Succeed())
		})

		It("names the direction an ingress-only policy leaves open", func() {
			ns := newNamespace()
			handWritten(ns, "deny-ingress", map[string]string{"app": "records"}, networkingv1.PolicyTypeIngress)
			handWritten(ns, "deny-egress-db", map[string]string{"tier": "db"}, networkingv1.PolicyTypeEgress)
			w := audit(ns)
			Eventually(func(g Gomega) {
				c := isolated(g, w)
				g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(c.Message).To(ContainSubstring("1 of 2 selected pods are not isolated: records-1 (egress open)"))
			}, timeout, poll).Should(Succeed())
		})

		It("holds once policies cover both directions, and notices new ones through the watch", func() {
			ns := newNamespace()
			w := audit(ns)
			Eventually(func(g Gomega) { g.Expect(isolated(g, w).Reason).To(Equal(phiguardv1alpha1.ReasonPodsNotIsolated)) }, timeout, poll).Should(Succeed())
			handWritten(ns, "default-deny", map[string]string{"app": "records"}, networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)
			Eventually(func(g Gomega) {
				c := isolated(g, w)
				g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
				g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonPodsIsolated))
				g.Expect(c.Message).To(ContainSubstring("all 2 selected pods are isolated"))
			}, timeout, poll).Should(Succeed())
		})
	})
})
