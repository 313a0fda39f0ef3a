package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func TestNetworkIsolationEnforceAppliesOwnedPolicyAndThenWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, nil)
	c, writes := countingClient(t)

	r := NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
	g.Expect(r.Message).To(Equal("NetworkPolicy phiguard-records isolates the 1 selected pods in both directions (and any created later), " +
		"and no other NetworkPolicy opens them wider; allowed: the workload's own pods, DNS"))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonPolicyCreated}))
	g.Expect(r.Events[0].Warning).To(BeFalse())
	g.Expect(writes.N()).To(Equal(int64(1)), "one apply")

	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}}
	get(t, np)
	g.Expect(np.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))
	g.Expect(np.Spec.PodSelector).To(Equal(metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}))
	g.Expect(np.OwnerReferences).To(Equal([]metav1.OwnerReference{{
		APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload", Name: "records", UID: w.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}))
	g.Expect(np.Labels).To(HaveKeyWithValue(phiguardv1alpha1.ManagedByLabel, phiguardv1alpha1.ManagedByValue))
	g.Expect(r.Events[0].Related).To(HaveValue(HaveField("ResourceVersion", np.ResourceVersion)),
		"the Event refers to the version the apply left")

	again := NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(again.Err).NotTo(HaveOccurred())
	g.Expect(again.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(again.Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
	g.Expect(again.Events).To(BeEmpty(), "nothing changed, nothing to report")
	g.Expect(writes.N()).To(Equal(int64(1)), "a steady reconcile makes no write")
	rv := np.ResourceVersion
	get(t, np)
	g.Expect(np.ResourceVersion).To(Equal(rv))
}

func TestNetworkIsolationEnforceRevertsAHandEditWithPolicyDrifted(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, nil)
	c, writes := countingClient(t)
	r := NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())

	// Someone opens egress by hand.
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}}
	g.Expect(k8s.Patch(t.Context(), np, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"policyTypes":["Ingress"]}}`)),
		client.FieldOwner("kubectl-edit"))).To(Succeed())
	g.Expect(np.Spec.PolicyTypes).To(Equal([]networkingv1.PolicyType{networkingv1.PolicyTypeIngress}))
	before := writes.N()

	r = NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonPolicyDrifted}))
	g.Expect(r.Events[0].Warning).To(BeTrue(), "a repair is a Warning")
	g.Expect(r.Events[0].Message).To(Equal("reverted changes that kubectl-edit made to NetworkPolicy phiguard-records"))
	g.Expect(writes.N()).To(Equal(before + 1))

	get(t, np)
	g.Expect(np.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))

	// Reverted, it is phiguard's again: the next pass is steady.
	r = NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(before + 1))
}

func TestNetworkIsolationEnforceLeavesAPolicyOfItsNameItDoesNotOwn(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	theirs := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		},
	}
	create(t, theirs)
	c, writes := countingClient(t)

	r := NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPolicyNameTaken))
	g.Expect(r.Message).To(Equal("NetworkPolicy phiguard-records exists and is not phiguard's; rename or delete it so that phiguard can isolate the pods"))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(BeZero())

	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}}
	get(t, np)
	g.Expect(np.ResourceVersion).To(Equal(theirs.ResourceVersion), "left untouched")
	g.Expect(np.OwnerReferences).To(BeEmpty())
	g.Expect(np.Spec).To(Equal(theirs.Spec))
}

func TestNetworkIsolationAuditRemovesPhiguardsPolicyAndReportsOpenPods(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, nil)
	newPod(t, ns, "records-1", map[string]string{"app": "records", "tier": "locked"}, nil)
	// A hand-written default-deny policy isolates records-1 in both directions.
	create(t, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny-locked"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": "locked"}},
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
		},
	})
	c, writes := countingClient(t)
	r := NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
	before := writes.N()
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}}
	get(t, np)

	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{Mode: phiguardv1alpha1.ModeAudit}
	})
	r = NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonPolicyRemoved}))
	g.Expect(r.Events[0].Message).To(Equal("removed NetworkPolicy phiguard-records: network isolation is no longer enforced (mode Audit)"))
	g.Expect(r.Events[0].Related).To(HaveValue(HaveField("UID", np.UID)))
	g.Expect(apierrors.IsNotFound(k8s.Get(t.Context(), client.ObjectKeyFromObject(np), &networkingv1.NetworkPolicy{}))).
		To(BeTrue(), "phiguard's policy is deleted")
	get(t, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "deny-locked"}}) // the user's stays
	// The pass that deletes the policy judges without it: records-0 is
	// selected by no policy at all, records-1 by the user's.
	notIsolated := "1 of 2 selected pods are not isolated: records-0 (ingress and egress open); set networkIsolation.mode to Enforce or add default-deny NetworkPolicies"
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsNotIsolated))
	g.Expect(r.Message).To(Equal(notIsolated))

	// The next one reads what is left, and says the same.
	r = NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsNotIsolated))
	g.Expect(r.Message).To(Equal(notIsolated))
	g.Expect(r.Events).To(BeEmpty(), "nothing left to remove")
	g.Expect(writes.N()).To(Equal(before+1), "one delete, on the first Audit pass only")
}

func TestNetworkIsolationEnforceWithNoPodsAppliesThePolicyButJudgesNothing(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "web-0", map[string]string{"app": "web"}, nil) // not selected
	c, writes := countingClient(t)

	r := NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionUnknown))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonNoPodsSelected))
	g.Expect(r.Message).To(Equal("spec.selector matches no pod in namespace " + ns + ", so there is nothing to judge; check the selector (app=records)"))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonPolicyCreated}), "the policy waits for the pods to come")
	g.Expect(writes.N()).To(Equal(int64(1)))
	get(t, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}})
}

func TestNetworkIsolationAuditWithNoPodsIsUnknown(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{Mode: phiguardv1alpha1.ModeAudit}
	})
	c, writes := countingClient(t)

	r := NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionUnknown))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonNoPodsSelected))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(BeZero())
}

// allowAll is the policy that opens every pod of a namespace to anything.
func allowAll(ns string) *networkingv1.NetworkPolicy {
	return &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "allow-all"},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
		},
	}
}

func TestNetworkIsolationEnforceReportsAPolicyThatOpensThePodsWider(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, nil)
	open := allowAll(ns)
	create(t, open)
	c, writes := countingClient(t)

	r := NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonIsolationBypassed))
	g.Expect(r.Message).To(Equal("NetworkPolicy phiguard-records is applied, but NetworkPolicy " + ns + "/allow-all opens ingress from anywhere " +
		"on any port for 1 of 1 selected pods (records-0), wider than networkIsolation declares; NetworkPolicies add up, " +
		"so narrow or remove it, or declare what it opens in networkIsolation"))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonPolicyCreated}), "phiguard's policy is applied all the same")
	g.Expect(writes.N()).To(Equal(int64(1)))
	get(t, open) // the user's policy is theirs: phiguard reports it, and leaves it

	g.Expect(k8s.Delete(t.Context(), open)).To(Succeed())
	r = NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(int64(1)), "nothing more to write")
}

func TestNetworkIsolationAuditReportsAPolicyWiderThanDeclared(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{Mode: phiguardv1alpha1.ModeAudit}
	})
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, nil)
	newPod(t, ns, "records-1", map[string]string{"app": "records"}, nil)
	create(t, &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default-deny"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}},
	})
	internet := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "internet"},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			Egress:      []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}}},
		},
	}
	create(t, internet)
	c, writes := countingClient(t)

	r := NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonIsolationBypassed))
	g.Expect(r.Message).To(Equal("NetworkPolicy " + ns + "/internet opens egress to 0.0.0.0/0 on any port for 2 of 2 selected pods (records-0, records-1), " +
		"wider than networkIsolation declares; NetworkPolicies add up, so narrow or remove it, or declare what it opens in networkIsolation"))
	g.Expect(writes.N()).To(BeZero(), "Audit writes nothing")

	g.Expect(k8s.Delete(t.Context(), internet)).To(Succeed())
	r = NetworkIsolation{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsIsolated))
	g.Expect(r.Message).To(Equal("all 2 selected pods are isolated in both directions by NetworkPolicies, which open them no wider than networkIsolation declares"))
}

func TestNetworkIsolationWatchMapsAPolicyToTheWorkloadsItCanChange(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	records := newWorkload(t, ns, nil)
	for _, name := range []string{"cache", "idle"} {
		create(t, &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"tier": name}}}})
	}
	newPod(t, ns, "records-0", map[string]string{"app": "records", "tier": "cache"}, nil) // records and cache overlap
	newPod(t, ns, "web-0", map[string]string{"app": "web"}, nil)                          // no workload's
	policy := func(name string, match map[string]string, owner *phiguardv1alpha1.PHIWorkload) *networkingv1.NetworkPolicy {
		np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: metav1.LabelSelector{MatchLabels: match}}}
		if owner != nil {
			np.OwnerReferences = []metav1.OwnerReference{{APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload",
				Name: owner.Name, UID: owner.UID, Controller: ptr.To(true)}}
		}
		return np
	}
	mapped := func(np *networkingv1.NetworkPolicy) []string {
		reqs := NetworkIsolation{}.Watches()[0].Map(t.Context(), Workloads{Reader: k8s}, np)
		names := make([]string, 0, len(reqs))
		for _, req := range reqs {
			g.Expect(req.Namespace).To(Equal(ns))
			names = append(names, req.Name)
		}
		return names
	}

	g.Expect(mapped(policy("allow-all", nil, nil))).To(ConsistOf("records", "cache"), "every workload with a pod it selects")
	g.Expect(mapped(policy("phiguard-records", map[string]string{"app": "records"}, records))).To(ConsistOf("records", "cache"),
		"its owner, and the workload whose pods it selects too")
	g.Expect(mapped(policy("phiguard-idle", map[string]string{"app": "none"}, nil))).To(ConsistOf("idle"), "the workload whose name it takes")
	g.Expect(mapped(policy("web", map[string]string{"app": "web"}, nil))).To(BeEmpty(), "it selects no workload's pod")
	g.Expect(mapped(policy("nothing", map[string]string{"app": "none"}, nil))).To(BeEmpty())
}
