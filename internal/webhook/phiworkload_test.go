package webhook_test

import (
	"time"

	eventsv1 "k8s.io/api/events/v1"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Covers the PHIWorkload webhook: the PHIPolicy's exempt namespaces and
// minimum modes, applied at admission by the real apiserver's call.
var _ = Describe("PHIWorkload admission", Ordered, func() {
	var policy *phiguardv1alpha1.PHIPolicy
	newPHIWorkload := func(ns string, settings phiguardv1alpha1.SafeguardSettings) *phiguardv1alpha1.PHIWorkload {
		return &phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: records}, SafeguardSettings: settings},
		}
	}

	BeforeAll(func() {
		policy = &phiguardv1alpha1.PHIPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
			Spec: phiguardv1alpha1.PHIPolicySpec{
				ExemptNamespaces: []string{"legacy-lab"},
				MinimumModes: []phiguardv1alpha1.MinimumMode{
					{Safeguard: phiguardv1alpha1.NetworkIsolated, Mode: phiguardv1alpha1.ModeEnforce},
					{Safeguard: phiguardv1alpha1.AuditLogging, Mode: phiguardv1alpha1.ModeEnforce},
				},
			},
		}
		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })
		Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "legacy-lab"}})).To(Succeed())
	})

	It("refuses modes below the policy's minimum, naming the policy", func() {
		ns := newNamespace()
		w := newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{
			NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{Mode: phiguardv1alpha1.ModeAudit},
			AuditLogging:     &phiguardv1alpha1.AuditLoggingSpec{Mode: phiguardv1alpha1.ModeAudit},
			Backup:           &phiguardv1alpha1.BackupSpec{Mode: phiguardv1alpha1.ModeAudit},
		})
		var err error
		Eventually(func() error { err = k8s.Create(ctx, w.DeepCopy()); return err }, 10*time.Second, 50*time.Millisecond).Should(HaveOccurred())
		Expect(err.Error()).To(Equal(`admission webhook "vphiworkload.phiguard.io" denied the request: ` +
			"NetworkIsolated mode Audit is below the minimum Enforce; AuditLogging mode Audit is below the minimum Enforce " +
			"set by PHIPolicy default (spec.minimumModes); raise the mode or leave it empty to inherit"))

		By("leaving the modes empty inherits, and is admitted")
		Expect(k8s.Create(ctx, newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{}))).To(Succeed())
	})

	It("refuses PHIWorkloads in exempt namespaces, built-in or the policy's", func() {
		for _, ns := range []string{"kube-system", "legacy-lab"} {
			err := k8s.Create(ctx, newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{}))
			Expect(err).To(MatchError(ContainSubstring("namespace "+ns+" is exempt from phiguard")), ns)
		}
	})

	It("warns about a decision that has already expired", func() {
		ns := newNamespace()
		w := newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{
			TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}})
		w.Spec.Decisions = []phiguardv1alpha1.Decision{{
			Safeguard: phiguardv1alpha1.TransmissionSecure, Kind: phiguardv1alpha1.DecisionNotReasonable,
			Justification: "traffic stays on an isolated node pool", ApprovedBy: "ciso",
			Expires: metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second)),
		}}
		warnings.take()
		Expect(k8s.Create(ctx, w)).To(Succeed())
		Expect(warnings.take()).To(ContainElement(ContainSubstring("the decision for TransmissionSecure expired at")))
	})

	It("refuses what phiguard could never act on, naming the fix", func() {
		ns := newNamespace()
		cases := []struct {
			name   string
			mutate func(*phiguardv1alpha1.PHIWorkload)
			want   string
		}{
			{"a selector that cannot select pods", func(w *phiguardv1alpha1.PHIWorkload) {
				w.Spec.Selector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn}}}
			}, "spec.selector cannot select pods: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty; give each matchExpressions entry a key, an operator (In, NotIn, Exists, DoesNotExist) and, for In and NotIn, at least one value"},
			{"a cron field out of range", func(w *phiguardv1alpha1.PHIWorkload) {
				w.Spec.Backup = &phiguardv1alpha1.BackupSpec{Schedule: "61 * * * *"}
			}, `backup.schedule "61 * * * *" is not a valid cron schedule: end of range (61) above maximum (59): 61`},
			{"a zero ttl", func(w *phiguardv1alpha1.PHIWorkload) {
				w.Spec.Backup = &phiguardv1alpha1.BackupSpec{TTL: &metav1.Duration{}}
			}, "backup.ttl is 0s: give a positive duration such as 720h, or leave it empty for the default"},
			{"a ttl below the policy's minimum", func(w *phiguardv1alpha1.PHIWorkload) {
				w.Spec.Backup = &phiguardv1alpha1.BackupSpec{TTL: &metav1.Duration{Duration: 720 * time.Hour}}
			}, "backup.ttl 720h0m0s is shorter than the 2160h0m0s every backup of ePHI must be kept under PHIPolicy default (spec.backup.minimumTTL, default 2160h0m0s): raise it, or leave it empty for the default of six years"},
			{"a zero rpo", func(w *phiguardv1alpha1.PHIWorkload) {
				w.Spec.Backup = &phiguardv1alpha1.BackupSpec{RPO: &metav1.Duration{}}
			}, "backup.rpo is 0s: give a positive duration such as 720h, or leave it empty for the default"},
			{"a schedule that never runs", func(w *phiguardv1alpha1.PHIWorkload) {
				w.Spec.Backup = &phiguardv1alpha1.BackupSpec{Schedule: "0 0 30 2 *"}
			}, `backup.schedule "0 0 30 2 *" never runs: no date matches all its fields; give one that does, such as "0 2 * * *"`},
			{"a peer's selector the NetworkPolicy API refuses", func(w *phiguardv1alpha1.PHIWorkload) {
				w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{Ingress: []phiguardv1alpha1.NetworkIngressRule{{From: []phiguardv1alpha1.NetworkPeer{
					{PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn}}}}}}}}
			}, "networkIsolation.ingress[0].from[0].podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'; " +
				"correct it: the NetworkPolicy phiguard generates would be refused by the apiserver"},
			{"a port name and a CIDR the NetworkPolicy API refuses", func(w *phiguardv1alpha1.PHIWorkload) {
				w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{Egress: []phiguardv1alpha1.NetworkEgressRule{{
					To:    []phiguardv1alpha1.NetworkPeer{{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: "10.1.2.3/16"}}},
					Ports: []phiguardv1alpha1.NetworkPort{{Port: ptr.To(intstr.FromString("web--tls"))}}}}}
			}, `[networkIsolation.egress[0].to[0].ipBlock.cidr: Invalid value: "10.1.2.3/16": must not have bits set beyond the prefix length, ` +
				`networkIsolation.egress[0].ports[0].port: Invalid value: "web--tls": must not contain consecutive hyphens]; ` +
				"correct it: the NetworkPolicy phiguard generates would be refused by the apiserver"},
		}
		for _, tc := range cases {
			w := newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{})
			w.Name = "refused"
			tc.mutate(w)
			Expect(k8s.Create(ctx, w)).To(MatchError(`admission webhook "vphiworkload.phiguard.io" denied the request: `+tc.want), tc.name)
		}
	})

	It("admits allows that open the workload to everyone, with a warning naming each rule", func() {
		ns := newNamespace()
		w := newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{
			Ingress: []phiguardv1alpha1.NetworkIngressRule{{From: []phiguardv1alpha1.NetworkPeer{
				{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
				{NamespaceSelector: &metav1.LabelSelector{}},
			}}},
			Egress: []phiguardv1alpha1.NetworkEgressRule{{To: []phiguardv1alpha1.NetworkPeer{
				{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: "0.0.0.0/0"}},
				{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: "0.0.0.0/0", Except: []string{"10.0.0.0/8"}}},
			}}},
		}})
		warnings.take()
		Expect(k8s.Create(ctx, w)).To(Succeed())
		Expect(warnings.take()).To(ConsistOf(
			"networkIsolation.ingress[0].from[1] lets in every pod in every namespace (an empty namespaceSelector): ePHI pods reachable this widely are rarely intended",
			"networkIsolation.egress[0].to[0] lets the pods reach every address (ipBlock 0.0.0.0/0): ePHI could leave this way",
		))

		By("recording the warnings as an Event on the workload")
		Eventually(func(g Gomega) {
			g.Expect(admissionEvents(g, w)).To(ConsistOf(And(
				HaveField("Reason", phiguardv1alpha1.ReasonAdmissionWarned), HaveField("Type", corev1.EventTypeWarning),
				HaveField("Note", MatchRegexp(`^admitted .*'s create of PHIWorkload `+ns+`/records with warnings: `+
					`networkIsolation.ingress\[0\].from\[1\] lets in every pod in every namespace .*; `+
					`networkIsolation.egress\[0\].to\[0\] lets the pods reach every address`)))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})

	It("records a denial as an Event on the workload it refused", func() {
		ns := newNamespace()
		w := newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{Backup: &phiguardv1alpha1.BackupSpec{Schedule: "0 25 * * *"}})
		Expect(k8s.Create(ctx, w)).NotTo(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(admissionEvents(g, w)).To(ConsistOf(And(
				HaveField("Reason", phiguardv1alpha1.ReasonAdmissionDenied), HaveField("Type", corev1.EventTypeWarning),
				HaveField("Note", MatchRegexp(`^denied .*'s create of PHIWorkload `+ns+`/records: backup.schedule "0 25 \* \* \*" is not a valid cron schedule`)))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

		By("a dry run records nothing")
		other := newPHIWorkload(ns, phiguardv1alpha1.SafeguardSettings{Backup: &phiguardv1alpha1.BackupSpec{Schedule: "0 25 * * *"}})
		other.Name = "dry"
		Expect(k8s.Create(ctx, other, client.DryRunAll)).NotTo(Succeed())
		Consistently(func(g Gomega) { g.Expect(admissionEvents(g, other)).To(BeEmpty()) }, "1s", "100ms").Should(Succeed())
	})
})

// admissionEvents lists the admission Events regarding a workload, by name
// (a refused workload has no UID).
func admissionEvents(g Gomega, w *phiguardv1alpha1.PHIWorkload) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(k8s.List(ctx, &list, client.InNamespace(w.Namespace))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Kind == "PHIWorkload" && e.Regarding.Name == w.Name && e.Action == "Admission" {
			out = append(out, e)
		}
	}
	return out
}
