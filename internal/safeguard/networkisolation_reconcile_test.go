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
	g.Expect(r.Message).To(Equal("NetworkPolicy phiguard-records isolates the 1 selected pods in both directions (and any created later); allowed: the workload's own pods, DNS"))
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
