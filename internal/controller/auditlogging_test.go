package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// Covers the AuditLogging condition (this suite runs no webhook, so pods keep
// what they were created with) and the rollout restart of their owners.
var _ = Describe("Audit logging status", func() {
	const timeout, poll = 10 * time.Second, 50 * time.Millisecond
	records := map[string]string{"app": "records"}

	// withSidecar gives a pod the built-in sidecar, as the webhook injects it.
	withSidecar := func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: safeguard.AuditSidecarName, Image: safeguard.DefaultAuditSidecarImage,
			RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
		p.Annotations = map[string]string{safeguard.AuditInjectedAnnotation: "records/" + safeguard.DefaultAuditSidecarImage}
	}
	podWith := func(ns, name string, mutate func(*corev1.Pod)) *corev1.Pod {
		GinkgoHelper()
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: records},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
		}
		if mutate != nil {
			mutate(p)
		}
		Expect(k8s.Create(ctx, p)).To(Succeed())
		return p
	}

	It("names the pods created without the sidecar, opted-out ones and look-alikes included", func() {
		ns := newNamespace()
		podWith(ns, "records-0", nil)
		podWith(ns, "records-1", nil)
		podWith(ns, "records-2", withSidecar)
		podWith(ns, "records-opted", func(p *corev1.Pod) {
			p.Annotations = map[string]string{safeguard.AuditOptOutAnnotation: "false"}
		})
		podWith(ns, "records-named", func(p *corev1.Pod) {
			withSidecar(p)
			p.Annotations = nil
		})
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) {
			c := condition(g, w, string(phiguardv1alpha1.AuditLogging))
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonPodsWithoutSidecar))
			g.Expect(c.Message).To(HavePrefix("4 of 5 selected pods lack the audit sidecar: records-0 (no phiguard-audit container), " +
				"records-1 (no phiguard-audit container), records-named (no phiguard.io/audit-sidecar annotation), " +
				"records-opted (opted out with phiguard.io/inject-audit-sidecar=false); "))
		}, timeout, poll).Should(Succeed())
	})

	It("holds when every selected pod carries it", func() {
		ns := newNamespace()
		podWith(ns, "records-0", withSidecar)
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) {
			c := condition(g, w, string(phiguardv1alpha1.AuditLogging))
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonSidecarsPresent))
			g.Expect(c.Message).To(Equal("all 1 selected pods carry the audit sidecar " + safeguard.DefaultAuditSidecarImage))
		}, timeout, poll).Should(Succeed())

		By("a new sidecar image in the settings leaves the pod with the old one until it is re-created")
		const newer = "registry.example/forwarder:2"
		Expect(k8s.Patch(ctx, w, client.RawPatch(types.MergePatchType,
			[]byte(`{"spec":{"auditLogging":{"sidecar":{"image":"`+newer+`"}}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(g, w, string(phiguardv1alpha1.AuditLogging))
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonPodsWithoutSidecar))
			g.Expect(c.Message).To(HavePrefix("1 of 1 selected pods lack the audit sidecar: records-0 (container phiguard-audit has image " +
				safeguard.DefaultAuditSidecarImage + ", the settings say " + newer + " (changed after the pod was created; re-creating the pod brings it)); "))
		}, timeout, poll).Should(Succeed())
	})

	It("restarts the owning Deployment once per generation when asked to", func() {
		ns := newNamespace()
		dep := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: records},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: records},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
				},
			},
		}
		Expect(k8s.Create(ctx, dep)).To(Succeed())
		// envtest runs no ReplicaSet controller: make the ReplicaSet and its pod
		// as the controllers would, with controlling owner references.
		rs := &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-7d9f", OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: ptr.To(true)}}},
			Spec: appsv1.ReplicaSetSpec{Selector: dep.Spec.Selector, Template: dep.Spec.Template},
		}
		Expect(k8s.Create(ctx, rs)).To(Succeed())
		podWith(ns, "records-7d9f-x1", func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}
		})
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{RestartNonCompliant: ptr.To(true)}
		})

		restarted := func(g Gomega) *appsv1.Deployment {
			d := &appsv1.Deployment{}
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(dep), d)).To(Succeed())
			g.Expect(d.Spec.Template.Annotations).To(HaveKey("kubectl.kubernetes.io/restartedAt"))
			return d
		}
		var first *appsv1.Deployment
		Eventually(func(g Gomega) {
			first = restarted(g)
			got := fetch(g, w)
			g.Expect(first.Annotations).To(HaveKeyWithValue("phiguard.io/restarted-for", string(got.UID)+"/1"))
			g.Expect(announced(g, got, phiguardv1alpha1.ReasonRolloutRestarted,
				"restarted Deployment records so that its pods are re-created with the audit sidecar")).To(BeTrue())
		}, timeout, poll).Should(Succeed())

		By("another reconcile of the same generation restarts nothing")
		podWith(ns, "records-7d9f-x2", func(p *corev1.Pod) {
			p.OwnerReferences = []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}
		})
		Eventually(func(g Gomega) { g.Expect(fetch(g, w).Status.MatchedPods).To(BeEquivalentTo(2)) }, timeout, poll).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(restarted(g).Generation).To(Equal(first.Generation))
		}, time.Second, 100*time.Millisecond).Should(Succeed())

		By("a new generation of the PHIWorkload may restart it again")
		Expect(k8s.Patch(ctx, w, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"auditLogging":{"logPath":"/var/log/audit"}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			d := restarted(g)
			g.Expect(d.Generation).To(BeNumerically(">", first.Generation))
			g.Expect(d.Annotations).To(HaveKeyWithValue("phiguard.io/restarted-for", HaveSuffix("/2")))
		}, timeout, poll).Should(Succeed())
	})
})
