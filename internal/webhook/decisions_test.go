package webhook_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
)

// Covers who may make a decision and for how long: the requester the
// apiserver authenticates is recorded on the workload, the PHIPolicy's
// approvers alone may add or change one, and none may run past maxLifetime.
var _ = Describe("Decisions at admission", Ordered, func() {
	// as returns a client whose requests the apiserver authenticates as user,
	// in groups (system:masters, so that RBAC lets it do anything).
	as := func(user string, groups ...string) client.Client {
		GinkgoHelper()
		c := rest.CopyConfig(env.Config)
		c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:masters")}
		out, err := phischeme.NewClient(c)
		Expect(err).NotTo(HaveOccurred())
		return out
	}
	decision := func(justification string, expires time.Time) phiguardv1alpha1.Decision {
		return phiguardv1alpha1.Decision{Safeguard: phiguardv1alpha1.TransmissionSecure, Kind: phiguardv1alpha1.DecisionNotReasonable,
			Justification: justification, ApprovedBy: "ciso@clinic.example", Expires: metav1.NewTime(expires.Truncate(time.Second))}
	}
	workloadWith := func(ns string, d phiguardv1alpha1.Decision) *phiguardv1alpha1.PHIWorkload {
		return &phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: records},
				SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
					TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}},
				Decisions: []phiguardv1alpha1.Decision{d}},
		}
	}
	recordedBy := func(w *phiguardv1alpha1.PHIWorkload) string {
		GinkgoHelper()
		got := &phiguardv1alpha1.PHIWorkload{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), got)).To(Succeed())
		return got.Annotations[phiguardv1alpha1.DecisionsRecordedByAnnotation]
	}
	inAMonth := time.Now().Add(30 * 24 * time.Hour)

	It("records the authenticated requester of each decision, not what the request claims", func() {
		ns := newNamespace()
		w := workloadWith(ns, decision("traffic stays on an isolated node pool", inAMonth))
		w.Annotations = map[string]string{phiguardv1alpha1.DecisionsRecordedByAnnotation: `{"TransmissionSecure":"mallory"}`}
		Eventually(func() error { return as("alice").Create(ctx, w.DeepCopy()) }, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		Expect(recordedBy(w)).To(Equal(`{"TransmissionSecure":"alice"}`))

		By("a change elsewhere keeps the record")
		bob := as("bob")
		got := &phiguardv1alpha1.PHIWorkload{}
		Expect(bob.Get(ctx, client.ObjectKeyFromObject(w), got)).To(Succeed())
		got.Labels = map[string]string{"team": "records"}
		got.Annotations[phiguardv1alpha1.DecisionsRecordedByAnnotation] = `{"TransmissionSecure":"bob"}`
		Expect(bob.Update(ctx, got)).To(Succeed())
		Expect(recordedBy(w)).To(Equal(`{"TransmissionSecure":"alice"}`), "bob did not touch the decision, and cannot rewrite its record")

		By("changing the decision records the one who changed it")
		Expect(bob.Get(ctx, client.ObjectKeyFromObject(w), got)).To(Succeed())
		got.Spec.Decisions[0].Justification = "traffic stays on an isolated node pool behind WireGuard"
		Expect(bob.Update(ctx, got)).To(Succeed())
		Expect(recordedBy(w)).To(Equal(`{"TransmissionSecure":"bob"}`))
	})

	It("holds a new workload with the cleanup finalizer from its first moment, and leaves updates to the controller", func() {
		ns := newNamespace()
		w := workloadWith(ns, decision("traffic never leaves the clinic network", inAMonth))
		Eventually(func() error { return k8s.Create(ctx, w) }, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		Expect(w.Finalizers).To(Equal([]string{phiguardv1alpha1.CleanupFinalizer}), "the created object, as the apiserver returned it")

		By("an update that drops it is not undone at admission")
		w.Finalizers = nil
		Expect(k8s.Update(ctx, w)).To(Succeed())
		got := &phiguardv1alpha1.PHIWorkload{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), got)).To(Succeed())
		Expect(got.Finalizers).To(BeEmpty())
	})

	It("refuses a decision that runs past the policy's maximum lifetime, naming the limit", func() {
		ns := newNamespace()
		err := k8s.Create(ctx, workloadWith(ns, decision("traffic stays on an isolated node pool", time.Now().Add(2*365*24*time.Hour))))
		Expect(err).To(MatchError(MatchRegexp(`denied the request: the decision for TransmissionSecure expires at .*, later than the 8760h0m0s PHIPolicy default allows \(spec.decisions.maxLifetime, default 8760h0m0s\): set expires to .* or earlier, and review the decision then$`)))
	})

	It("lets only the policy's approvers add or change a decision", func() {
		policy := &phiguardv1alpha1.PHIPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
			Spec: phiguardv1alpha1.PHIPolicySpec{Decisions: &phiguardv1alpha1.DecisionPolicy{Approvers: &phiguardv1alpha1.Approvers{
				Users: []string{"carol"}, Groups: []string{"clinic:security-officers"}}}},
		}
		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })

		ns := newNamespace()
		w := workloadWith(ns, decision("traffic stays on an isolated node pool", inAMonth))
		Eventually(func() error { return as("bob", "clinic:developers").Create(ctx, w.DeepCopy()) }, 10*time.Second, 50*time.Millisecond).
			Should(MatchError(ContainSubstring("denied the request: the decision for TransmissionSecure may be added or changed only by an approver named in PHIPolicy default (spec.decisions.approvers: users carol; groups clinic:security-officers), and bob is not one; ask one of them to make this change")))

		By("a member of an approvers' group may")
		Expect(as("dave", "clinic:security-officers").Create(ctx, w.DeepCopy())).To(Succeed())
		Expect(recordedBy(w)).To(Equal(`{"TransmissionSecure":"dave"}`))

		By("anyone may change what is not a decision")
		got := &phiguardv1alpha1.PHIWorkload{}
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), got)).To(Succeed())
		got.Labels = map[string]string{"team": "records"}
		Expect(as("bob").Update(ctx, got)).To(Succeed())
	})
})
