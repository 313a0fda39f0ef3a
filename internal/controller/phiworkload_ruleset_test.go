package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/policyreport"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// Covers the PHIPolicy's ruleset on status: the sections and specifications
// of status.safeguards (and the PolicyReport results read from them) follow
// it, and under ProposedRule2025 a decision admitted before stops counting:
// the safeguard runs in Audit, is judged, and the score and Ready follow the
// judgement, with reason DecisionNotRecognised and a Warning Event.
var _ = Describe("PHIPolicy ruleset", Ordered, func() {
	const timeout, poll = 10 * time.Second, 100 * time.Millisecond
	const class = "ruleset-plain"
	var ns string
	var w *phiguardv1alpha1.PHIWorkload
	policy := &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName}}
	setRuleset := func(rs phiguardv1alpha1.Ruleset) {
		GinkgoHelper()
		Expect(k8s.Patch(ctx, policy, client.RawPatch(client.Merge.Type(), []byte(`{"spec":{"ruleset":"`+rs+`"}}`)))).To(Succeed())
	}
	row := func(g Gomega, name phiguardv1alpha1.SafeguardName) phiguardv1alpha1.SafeguardStatus {
		for _, r := range fetch(g, w).Status.Safeguards {
			if r.Name == name {
				return r
			}
		}
		g.Expect(name).To(BeEmpty(), "no status row for the safeguard")
		return phiguardv1alpha1.SafeguardStatus{}
	}
	result := func(g Gomega, name phiguardv1alpha1.SafeguardName) policyreport.Result {
		for _, r := range policyreport.WorkloadResults(fetch(g, w)) {
			if r.Rule == string(name) {
				return r
			}
		}
		g.Expect(name).To(BeEmpty(), "no report result for the safeguard")
		return policyreport.Result{}
	}

	BeforeAll(func() {
		sc := &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: class}, Provisioner: "rancher.io/local-path"}
		Expect(k8s.Create(ctx, sc)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, sc)).To(Succeed()) })
		ns = newNamespace()
		Expect(k8s.Create(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-data"},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: ptr.To(class),
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		})).To(Succeed())
		w = newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			// No Velero here: BackupScheduled is False whatever other tests installed.
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{VeleroNamespace: "no-velero-here"}
			w.Spec.EncryptionAtRest = &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff}
			w.Spec.Decisions = []phiguardv1alpha1.Decision{
				validDecision(phiguardv1alpha1.EncryptedAtRest, metav1.NewTime(time.Now().Add(24*time.Hour).Truncate(time.Second))),
			}
		})
		// One selected pod with the audit sidecar, mounting a claim of an
		// unencrypted class. It is a bare, unhardened pod in no mesh, running
		// as a ServiceAccount that does not exist: BackupScheduled,
		// TransmissionSecure, AccessControlled, IntegrityProtected and
		// Available are False under either ruleset.
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-0", Labels: map[string]string{"app": "records"}},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "records-data"}}}},
			},
		}
		safeguard.InjectAuditSidecar(pod, w.Name, safeguard.New(safeguard.Options{}).Defaults().AuditLogging)
		Expect(k8s.Create(ctx, pod)).To(Succeed())

		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })
	})

	It("cites the rule in force by default, and counts the decision", func() {
		Eventually(func(g Gomega) {
			got := fetch(g, w)
			g.Expect(got.Status.Policy).To(Equal(phiguardv1alpha1.DefaultPolicyName))
			g.Expect(got.Status.Score).To(Equal("3/8"), "NetworkIsolated, AuditLogging, and EncryptedAtRest under its decision")
			c := condition(g, w, string(phiguardv1alpha1.EncryptedAtRest))
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonDocumentedDecision))
			g.Expect(row(g, phiguardv1alpha1.EncryptedAtRest)).To(And(
				HaveField("Section", "§164.312(a)(2)(iv)"), HaveField("Specification", phiguardv1alpha1.Addressable),
				HaveField("Mode", phiguardv1alpha1.ModeOff), HaveField("ModeSource", phiguardv1alpha1.SourceWorkload)))
			g.Expect(row(g, phiguardv1alpha1.AuditLogging)).To(HaveField("Section", "§164.312(b)"))
			g.Expect(result(g, phiguardv1alpha1.EncryptedAtRest)).To(And(
				HaveField("Category", "§164.312(a)(2)(iv)"), HaveField("Severity", policyreport.SeverityMedium),
				HaveField("Outcome", policyreport.Warn)))
		}, timeout, poll).Should(Succeed())
	})

	It("under ProposedRule2025 cites the proposed sections, all Required, and judges the decision's safeguard", func() {
		setRuleset(phiguardv1alpha1.RulesetProposedRule2025)
		reg := safeguard.New(safeguard.Options{})
		Eventually(func(g Gomega) {
			got := fetch(g, w)
			g.Expect(got.Status.Safeguards).To(HaveLen(len(reg)))
			for _, r := range got.Status.Safeguards {
				rule := reg.RuleUnder(r.Name, phiguardv1alpha1.RulesetProposedRule2025)
				g.Expect(r.Section).To(Equal(rule.Section), string(r.Name))
				g.Expect(r.Specification).To(Equal(phiguardv1alpha1.Required), string(r.Name))
			}
			g.Expect(row(g, phiguardv1alpha1.EncryptedAtRest)).To(And(
				HaveField("Section", "§164.312(b)"), HaveField("Mode", phiguardv1alpha1.ModeAudit),
				HaveField("ModeSource", phiguardv1alpha1.SourcePolicy), HaveField("Status", metav1.ConditionFalse),
				HaveField("Reason", phiguardv1alpha1.ReasonDecisionNotRecognised)))
			g.Expect(row(g, phiguardv1alpha1.AuditLogging)).To(HaveField("Section", "§164.312(d)"))

			c := condition(g, w, string(phiguardv1alpha1.EncryptedAtRest))
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonDecisionNotRecognised))
			g.Expect(c.Message).To(HavePrefix("EncryptedAtRest is turned off under a decision (kind NotReasonable, approved by security-officer) " +
				"that ruleset ProposedRule2025 (HHS NPRM 90 FR 898) does not recognise: every safeguard is Required there. " +
				"Set its mode to Audit or Enforce and remove the decision. Meanwhile it runs in Audit and is judged not to hold: " +
				"UnencryptedVolumes: 1 of 1 persistent volume claims are not encrypted at rest: records-data (class " + class))

			g.Expect(got.Status.Score).To(Equal("2/8"))
			g.Expect(got.Status.Compliance).To(Equal(phiguardv1alpha1.NonCompliant))
			ready := condition(g, w, phiguardv1alpha1.ReadyCondition)
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Message).To(Equal("failing: EncryptedAtRest, BackupScheduled, TransmissionSecure, AccessControlled, IntegrityProtected, Available"))

			g.Expect(result(g, phiguardv1alpha1.EncryptedAtRest)).To(And(
				HaveField("Category", "§164.312(b)"), HaveField("Severity", policyreport.SeverityHigh),
				HaveField("Outcome", policyreport.Fail),
				HaveField("Properties", HaveKeyWithValue(policyreport.PropertyReason, phiguardv1alpha1.ReasonDecisionNotRecognised))))
			g.Expect(result(g, phiguardv1alpha1.Available)).To(HaveField("Category", "§164.308(a)(13)"))
		}, timeout, poll).Should(Succeed())

		By("recording the change as a Warning Event")
		Eventually(func(g Gomega) {
			g.Expect(eventsFor(g, w)).To(ContainElement(And(
				HaveField("Reason", phiguardv1alpha1.ReasonDecisionNotRecognised), HaveField("Type", corev1.EventTypeWarning),
				HaveField("Action", string(phiguardv1alpha1.EncryptedAtRest)),
				HaveField("Note", HavePrefix("EncryptedAtRest is False: EncryptedAtRest is turned off under a decision")))))
		}, timeout, poll).Should(Succeed())
	})

	It("lets the score and Ready follow the judgement when it holds", func() {
		sc := &storagev1.StorageClass{}
		Expect(k8s.Get(ctx, objectKey(class), sc)).To(Succeed())
		sc.Annotations = map[string]string{"phiguard.io/encrypted": "true"}
		Expect(k8s.Update(ctx, sc)).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(g, w, string(phiguardv1alpha1.EncryptedAtRest))
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonDecisionNotRecognised))
			g.Expect(c.Message).To(ContainSubstring("Meanwhile it runs in Audit and is judged to hold: AllVolumesEncrypted: "))
			g.Expect(fetch(g, w).Status.Score).To(Equal("3/8"))
			g.Expect(condition(g, w, phiguardv1alpha1.ReadyCondition).Message).To(
				Equal("failing: BackupScheduled, TransmissionSecure, AccessControlled, IntegrityProtected, Available"))
			g.Expect(result(g, phiguardv1alpha1.EncryptedAtRest)).To(HaveField("Outcome", policyreport.Pass))
		}, timeout, poll).Should(Succeed())
	})

	It("counts the decision again when the policy returns to the rule in force", func() {
		setRuleset(phiguardv1alpha1.RulesetSecurityRule2013)
		Eventually(func(g Gomega) {
			c := condition(g, w, string(phiguardv1alpha1.EncryptedAtRest))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonDocumentedDecision))
			g.Expect(row(g, phiguardv1alpha1.EncryptedAtRest)).To(And(
				HaveField("Section", "§164.312(a)(2)(iv)"), HaveField("Specification", phiguardv1alpha1.Addressable),
				HaveField("Mode", phiguardv1alpha1.ModeOff), HaveField("ModeSource", phiguardv1alpha1.SourceWorkload)))
			g.Expect(row(g, phiguardv1alpha1.Available)).To(HaveField("Section", "§164.308(a)(7)(ii)(C)"))
		}, timeout, poll).Should(Succeed())
	})
})
