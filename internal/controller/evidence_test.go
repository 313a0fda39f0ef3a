package controller_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// The evidence a reconcile leaves, through a real writer into a directory:
// a record for each safeguard's first result and each action, none for a
// reconcile that changes nothing, a decision's record with its approver and
// the result it changes, and a daily attestation of the full status.
var _ = Describe("Evidence of reconciles", func() {
	var (
		sink   *evidence.DirSink
		keys   evidence.PublicKeys
		writer *evidence.Writer
		r      *controller.PHIWorkloadReconciler
	)

	BeforeEach(func() {
		ensureNamespace(manualNamespace)
		pub, key, err := ed25519.GenerateKey(rand.Reader)
		Expect(err).NotTo(HaveOccurred())
		signer := evidence.NewSigner(key)
		keys = evidence.PublicKeys{signer.KeyID: pub}
		sink, err = evidence.NewDirSink(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		writer, err = evidence.NewWriter(evidence.WriterOptions{Sink: sink, Signer: signer, Cluster: "envtest", Shard: "controllers",
			SpoolDir: GinkgoT().TempDir(), SegmentInterval: 20 * time.Millisecond})
		Expect(err).NotTo(HaveOccurred())
		wctx, stop := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- writer.Start(wctx) }()
		DeferCleanup(func() { stop(); Expect(<-done).To(Succeed()) })
		r = &controller.PHIWorkloadReconciler{
			Client: k8s, Clock: clock.RealClock{}, Evidence: writer,
			Registry: safeguard.New(safeguard.Options{}), ExemptNamespaces: []string{"kube-system"},
		}
	})

	reconcileOnce := func(w *phiguardv1alpha1.PHIWorkload) {
		GinkgoHelper()
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w)})
		Expect(err).NotTo(HaveOccurred())
	}
	// stored waits until the writer has stored everything, verifies the
	// chain, and returns the workload's records.
	stored := func(w *phiguardv1alpha1.PHIWorkload) []evidence.Record {
		GinkgoHelper()
		Eventually(writer.Pending).Should(BeZero())
		rep, err := evidence.Verify(ctx, sink, evidence.VerifyOptions{Keys: keys})
		Expect(err).NotTo(HaveOccurred())
		Expect(rep.Broken).ToNot(HaveOccurred())
		recs, err := evidence.ReadRecords(ctx, sink, evidence.ReadOptions{Namespace: w.Namespace})
		Expect(err).NotTo(HaveOccurred())
		var out []evidence.Record
		for _, rec := range recs {
			if rec.Workload.Name == w.Name {
				out = append(out, rec)
			}
		}
		return out
	}
	ofKind := func(recs []evidence.Record, k evidence.Kind) []evidence.Record {
		var out []evidence.Record
		for _, rec := range recs {
			if rec.Kind == k {
				out = append(out, rec)
			}
		}
		return out
	}

	It("records results, actions and decisions once, and attests the full status", func() {
		w := newWorkload(manualNamespace, "evidence-records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Selector.MatchLabels = map[string]string{"app": "evidence-records"}
		})
		newPod(manualNamespace, "evidence-records-0", map[string]string{"app": "evidence-records"})
		reconcileOnce(w)
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), w)).To(Succeed())

		By("the first evaluation: one result per safeguard, each as the status says")
		recs := stored(w)
		results := ofKind(recs, evidence.KindResult)
		Expect(results).To(HaveLen(len(w.Status.Safeguards)))
		for i, sg := range w.Status.Safeguards {
			rec := results[i]
			Expect(rec.Safeguard).To(Equal(string(sg.Name)))
			Expect(rec.Section).To(Equal(sg.Section))
			Expect(rec.Mode).To(Equal(string(sg.Mode)))
			Expect(rec.Result).To(Equal(string(sg.Status)))
			Expect(rec.Reason).To(Equal(sg.Reason))
			Expect(rec.Message).To(Equal(meta.FindStatusCondition(w.Status.Conditions, string(sg.Name)).Message))
			Expect(*rec.Workload).To(Equal(evidence.Workload{Namespace: w.Namespace, Name: w.Name, UID: string(w.UID), Generation: w.Generation}))
			Expect(rec.Cluster).To(Equal("envtest"))
		}
		actions := ofKind(recs, evidence.KindAction)
		Expect(actions).NotTo(BeEmpty(), "the NetworkPolicy created is an action")
		Expect(actions[0].Safeguard).To(Equal(string(phiguardv1alpha1.NetworkIsolated)))
		Expect(actions[0].Objects).To(ConsistOf(HaveField("Kind", "NetworkPolicy")))

		By("a reconcile that changes nothing records nothing")
		reconcileOnce(w)
		Expect(stored(w)).To(HaveLen(len(recs)))

		By("a decision turning TransmissionSecure off")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), w)).To(Succeed())
		w.Spec.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}
		w.Spec.Decisions = []phiguardv1alpha1.Decision{validDecision(phiguardv1alpha1.TransmissionSecure,
			metav1.NewTime(time.Now().Add(10*24*time.Hour)))}
		Expect(k8s.Update(ctx, w)).To(Succeed())
		reconcileOnce(w)
		after := stored(w)[len(recs):]
		decisions := ofKind(after, evidence.KindDecision)
		Expect(decisions).To(HaveLen(1))
		Expect(decisions[0].Result).To(Equal("Added"))
		Expect(decisions[0].Safeguard).To(Equal(string(phiguardv1alpha1.TransmissionSecure)))
		Expect(decisions[0].Message).To(ContainSubstring("approved by security-officer"))
		changed := ofKind(after, evidence.KindResult)
		Expect(changed).To(ContainElement(And(HaveField("Safeguard", string(phiguardv1alpha1.TransmissionSecure)),
			HaveField("Mode", string(phiguardv1alpha1.ModeOff)))))

		By("the attestation holds the full status")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(w), w)).To(Succeed())
		a := &controller.Attestor{Reader: k8s, Evidence: writer}
		Expect(a.Attest(ctx)).To(Succeed())
		attestations := ofKind(stored(w), evidence.KindAttestation)
		Expect(attestations).To(HaveLen(1))
		Expect(attestations[0].Result).To(Equal(string(w.Status.Compliance)))
		Expect(attestations[0].Safeguards).To(HaveLen(len(w.Status.Safeguards)))
		for i, sg := range w.Status.Safeguards {
			Expect(attestations[0].Safeguards[i].Safeguard).To(Equal(string(sg.Name)))
			Expect(attestations[0].Safeguards[i].Result).To(Equal(string(sg.Status)))
		}
	})
})

// EvidenceSinkDegraded on the PHIPolicy follows what the writers report.
var _ = Describe("EvidenceSinkDegraded", func() {
	It("turns True while a shard cannot store, and False once it can", func() {
		policy := &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName}}
		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })
		health := controller.NewEvidenceHealth("", "")
		r := &controller.EvidenceStatusReconciler{Client: k8s, Health: health}
		req := ctrl.Request{NamespacedName: client.ObjectKey{Name: phiguardv1alpha1.DefaultPolicyName}}
		degraded := func() metav1.Condition {
			GinkgoHelper()
			_, err := r.Reconcile(ctx, req)
			Expect(err).NotTo(HaveOccurred())
			Expect(k8s.Get(ctx, client.ObjectKeyFromObject(policy), policy)).To(Succeed())
			c := meta.FindStatusCondition(policy.Status.Conditions, phiguardv1alpha1.EvidenceSinkDegradedCondition)
			Expect(c).NotTo(BeNil())
			return *c
		}
		Expect(degraded()).To(And(HaveField("Status", metav1.ConditionFalse), HaveField("Reason", phiguardv1alpha1.ReasonEvidenceStored)))

		health.Reporter("controllers")(true, "evidence cannot be stored in s3://b: connection refused")
		c := degraded()
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonEvidenceSinkUnavailable))
		Expect(c.Message).To(Equal("controllers: evidence cannot be stored in s3://b: connection refused"))

		health.Reporter("controllers")(false, "")
		Expect(degraded().Status).To(Equal(metav1.ConditionFalse))

		By("an ephemeral directory keeps it True")
		r.Health = controller.NewEvidenceHealth(phiguardv1alpha1.ReasonEvidenceEphemeral, "kept in an emptyDir")
		Expect(degraded()).To(And(HaveField("Status", metav1.ConditionTrue), HaveField("Reason", phiguardv1alpha1.ReasonEvidenceEphemeral)))
	})
})
