package controller_test

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// Covers the status lifecycle written by the running controller: one condition
// per safeguard, the Ready summary, the per-safeguard table and pod counting.
var _ = Describe("PHIWorkload status", func() {
	const timeout, poll = 10 * time.Second, 100 * time.Millisecond

	It("reports every safeguard, never an unevaluated one as compliant", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			// A Velero namespace that does not exist: BackupScheduled is
			// VeleroNotInstalled whether or not another test has installed
			// Velero's CRDs by then.
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{VeleroNamespace: "no-velero-here"}
			w.Spec.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}
			w.Spec.Decisions = []phiguardv1alpha1.Decision{
				validDecision(phiguardv1alpha1.TransmissionSecure, metav1.NewTime(time.Now().Add(24*time.Hour))),
			}
		})
		// One selected pod, carrying the sidecar as the webhook (not running
		// in this suite) would have injected it. Its app container is not
		// hardened, so IntegrityProtected (Audit by default) is False.
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-0", Labels: map[string]string{"app": "records"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
		}
		safeguard.InjectAuditSidecar(pod, w.Name, safeguard.New(safeguard.Options{}).Defaults().AuditLogging)
		Expect(k8s.Create(ctx, pod)).To(Succeed())

		Eventually(func(g Gomega) {
			got := fetch(g, w)
			g.Expect(got.Status.ObservedGeneration).To(Equal(got.Generation))
			g.Expect(got.Status.MatchedPods).To(BeEquivalentTo(1))
			holding := 0
			for _, name := range safeguard.New(safeguard.Options{}).Names() {
				c := condition(g, w, string(name))
				g.Expect(c.ObservedGeneration).To(Equal(got.Generation))
				if c.Status == metav1.ConditionTrue {
					holding++
				}
			}
			g.Expect(condition(g, w, string(phiguardv1alpha1.NetworkIsolated)).Reason).To(Equal(phiguardv1alpha1.ReasonPolicyApplied))
			g.Expect(condition(g, w, string(phiguardv1alpha1.EncryptedAtRest)).Reason).To(Equal(phiguardv1alpha1.ReasonAllVolumesEncrypted))
			decided := condition(g, w, string(phiguardv1alpha1.TransmissionSecure))
			g.Expect(decided.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(decided.Reason).To(Equal(phiguardv1alpha1.ReasonDocumentedDecision))
			g.Expect(decided.Message).To(ContainSubstring("approved by security-officer"))

			g.Expect(condition(g, w, string(phiguardv1alpha1.BackupScheduled))).To(And(
				HaveField("Status", metav1.ConditionFalse), HaveField("Reason", phiguardv1alpha1.ReasonVeleroNotInstalled)))
			ready := condition(g, w, phiguardv1alpha1.ReadyCondition)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(phiguardv1alpha1.SafeguardsFailingReason))
			g.Expect(ready.Message).To(Equal("failing: BackupScheduled, AccessControlled, IntegrityProtected, Available"))
			g.Expect(condition(g, w, string(phiguardv1alpha1.AccessControlled))).To(And(
				HaveField("Status", metav1.ConditionFalse), HaveField("Reason", phiguardv1alpha1.ReasonServiceAccountMissing),
				HaveField("Message", HavePrefix("ServiceAccount default (pods records-0) does not exist; "))))
			g.Expect(condition(g, w, string(phiguardv1alpha1.IntegrityProtected))).To(And(
				HaveField("Status", metav1.ConditionFalse), HaveField("Reason", phiguardv1alpha1.ReasonContainersMutable),
				HaveField("Message", HavePrefix("1 of 1 selected pods run containers that could alter their own software: records-0 (container app: "))))
			g.Expect(got.Status.Compliance).To(Equal(phiguardv1alpha1.NonCompliant))
			g.Expect(holding).To(Equal(4), "NetworkIsolated, EncryptedAtRest, AuditLogging, and TransmissionSecure under its decision")
			g.Expect(got.Status.Score).To(Equal("4/8"))
			g.Expect(got.Status.Safeguards).To(HaveLen(8))
			for i, row := range got.Status.Safeguards {
				rule := safeguard.New(safeguard.Options{}).Rule(safeguard.New(safeguard.Options{}).Names()[i])
				g.Expect(row.Name).To(Equal(safeguard.New(safeguard.Options{}).Names()[i]))
				g.Expect(row.Section).To(Equal(rule.Section))
				g.Expect(row.Specification).To(Equal(rule.Specification))
				g.Expect(row.Status).To(Equal(condition(g, w, string(row.Name)).Status))
			}
			g.Expect(got.Status.Safeguards[0]).To(And(HaveField("Mode", phiguardv1alpha1.ModeEnforce), HaveField("ModeSource", phiguardv1alpha1.SourceDefault)))
			g.Expect(got.Status.Safeguards[4]).To(And(HaveField("Mode", phiguardv1alpha1.ModeOff), HaveField("ModeSource", phiguardv1alpha1.SourceWorkload)))
		}, timeout, poll).Should(Succeed())

		By("recording the first evaluation as one Event: each result and each action")
		Eventually(func(g Gomega) {
			// Once: results that change later (the pod reaching the cache
			// after the first evaluation) are Events of their own.
			events := eventsFor(g, fetch(g, w))
			summaries := make([]eventsv1.Event, 0, len(events))
			for _, e := range events {
				if e.Reason == phiguardv1alpha1.ReasonEvaluated {
					summaries = append(summaries, e)
				}
			}
			g.Expect(summaries).To(HaveLen(1))
			e := summaries[0]
			g.Expect(e.Action).To(Equal("Evaluate"))
			g.Expect(e.Note).To(HavePrefix("first evaluation: not Ready, "))
			g.Expect(e.Note).To(HaveSuffix("; actions: created NetworkPolicy phiguard-records"))
			// What the first evaluation saw (the pod may not have been in the
			// cache yet): each safeguard is counted as holding or named with
			// its reason, and a Warning when one does not hold.
			var held int
			_, err := fmt.Sscanf(e.Note, "first evaluation: not Ready, %d of 8 safeguards hold", &held)
			g.Expect(err).NotTo(HaveOccurred())
			named := 0
			for _, name := range safeguard.New(safeguard.Options{}).Names() {
				if strings.Contains(e.Note, string(name)+" (") {
					named++
				}
			}
			g.Expect(held + named).To(Equal(len(safeguard.New(safeguard.Options{}).Names())))
			wantType := corev1.EventTypeNormal
			if strings.Contains(e.Note, "; does not hold: ") {
				wantType = corev1.EventTypeWarning
			}
			g.Expect(e.Type).To(Equal(wantType))
		}, timeout, poll).Should(Succeed())
	})

	It("counts the pods the selector matches and follows label changes", func() {
		ns := newNamespace()
		a := newPod(ns, "records-a", map[string]string{"app": "records"})
		newPod(ns, "records-b", map[string]string{"app": "records"})
		newPod(ns, "billing", map[string]string{"app": "billing"})
		w := newWorkload(ns, "records", nil)

		Eventually(func(g Gomega) {
			g.Expect(fetch(g, w).Status.MatchedPods).To(Equal(int32(2)))
		}, timeout, poll).Should(Succeed())

		By("a pod created later is counted")
		newPod(ns, "records-c", map[string]string{"app": "records"})
		Eventually(func(g Gomega) {
			g.Expect(fetch(g, w).Status.MatchedPods).To(Equal(int32(3)))
		}, timeout, poll).Should(Succeed())

		By("a pod relabelled out of the selector is no longer counted")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(a), a)).To(Succeed())
		a.Labels = map[string]string{"app": "other"}
		Expect(k8s.Update(ctx, a)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(fetch(g, w).Status.MatchedPods).To(Equal(int32(2)))
		}, timeout, poll).Should(Succeed())

		By("a deleted pod is no longer counted")
		Expect(k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-b"}},
			client.GracePeriodSeconds(0))).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(fetch(g, w).Status.MatchedPods).To(Equal(int32(1)))
		}, timeout, poll).Should(Succeed())
	})
})
