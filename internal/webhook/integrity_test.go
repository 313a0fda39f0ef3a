package webhook_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

const pinnedImage = "registry.example/records@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// integrityWorkload stores a PHIWorkload selecting app=records with
// integrity in mode; audit logging keeps its built-in Enforce, so that the
// pods judged carry the injected sidecar.
func integrityWorkload(ns string, mode phiguardv1alpha1.Mode) {
	workload(ns, phiguardv1alpha1.ModeAudit, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.Integrity = &phiguardv1alpha1.IntegritySpec{Mode: mode}
	})
}

// hardenedContainer passes every integrity check.
func hardenedContainer(name string) corev1.Container {
	return corev1.Container{Name: name, Image: pinnedImage, SecurityContext: &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}}
}

// mutableSpec fails checks in two containers and an init container.
func mutableSpec() corev1.PodSpec {
	migrate := hardenedContainer("migrate")
	migrate.SecurityContext.ReadOnlyRootFilesystem = nil
	worker := hardenedContainer("worker")
	worker.SecurityContext.Privileged = ptr.To(true)
	worker.SecurityContext.AllowPrivilegeEscalation = nil
	return corev1.PodSpec{
		InitContainers: []corev1.Container{migrate},
		Containers:     []corev1.Container{{Name: "app", Image: "registry.example/records:1"}, worker},
	}
}

// mutableProblems is what mutableSpec fails, as the webhook lists it.
const mutableProblems = "init container migrate: root filesystem not read-only (securityContext.readOnlyRootFilesystem must be true); " +
	`container app: allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false), ` +
	`unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"]), ` +
	`runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true), ` +
	`seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost"), ` +
	"root filesystem not read-only (securityContext.readOnlyRootFilesystem must be true), image registry.example/records:1 not pinned by digest; " +
	`container worker: privileged (container "worker" must not set securityContext.privileged=true), ` +
	`allowPrivilegeEscalation != false (container "worker" must set securityContext.allowPrivilegeEscalation=false)`

const integrityFix = "set each container's securityContext as the restricted Pod Security Standard requires (runAsNonRoot: true, " +
	"allowPrivilegeEscalation: false, capabilities.drop: [ALL], seccompProfile.type: RuntimeDefault) and readOnlyRootFilesystem: true, " +
	"and pin each image by digest (image@sha256:...)"

var _ = Describe("Integrity admission", func() {
	It("refuses, in Enforce, a pod and a Deployment that fail, listing every container and check", func() {
		ns := newNamespace()
		integrityWorkload(ns, phiguardv1alpha1.ModeEnforce)
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-0", Labels: records}, Spec: mutableSpec()}
		Expect(deniedEventually(p)).To(MatchError(`admission webhook "vpod-integrity.phiguard.io" denied the request: ` +
			"Pod records-0 would run containers that could alter their own software: " + mutableProblems +
			". PHIWorkload " + ns + "/records requires integrity controls (HIPAA §164.312(c)(1), integrity.mode Enforce); " + integrityFix))

		By("recording the denial as an Event on the workload, related to the pod")
		w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}}
		Eventually(func(g Gomega) {
			g.Expect(admissionEvents(g, w)).To(ContainElement(And(
				HaveField("Reason", phiguardv1alpha1.ReasonAdmissionDenied),
				HaveField("Related", HaveValue(And(HaveField("Kind", "Pod"), HaveField("Name", "records-0")))),
				HaveField("Note", ContainSubstring("create of Pod "+ns+"/records-0: Pod records-0 would run containers")))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

		By("a Deployment whose pod template the workload selects")
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec: appsv1.DeploymentSpec{
				Selector: &metav1.LabelSelector{MatchLabels: records},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: records}, Spec: mutableSpec()},
			},
		}
		Expect(k8s.Create(ctx, d)).To(MatchError(`admission webhook "vworkload-integrity.phiguard.io" denied the request: ` +
			"Deployment records would run containers that could alter their own software: " + mutableProblems +
			". PHIWorkload " + ns + "/records requires integrity controls (HIPAA §164.312(c)(1), integrity.mode Enforce); " + integrityFix))

		By("a template the workload does not select")
		d.Spec.Selector.MatchLabels = map[string]string{"app": "batch"}
		d.Spec.Template.Labels = map[string]string{"app": "batch"}
		Expect(k8s.Create(ctx, d)).To(Succeed())
	})

	It("admits a compliant pod, with phiguard's sidecar injected", func() {
		ns := newNamespace()
		integrityWorkload(ns, phiguardv1alpha1.ModeEnforce)
		Expect(deniedEventually(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe", Labels: records},
			Spec: mutableSpec()})).To(HaveOccurred())
		warnings.take()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-0", Labels: records},
			Spec: corev1.PodSpec{Containers: []corev1.Container{hardenedContainer("app")}}}
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Expect(withoutIdentityWarnings(warnings.take())).To(BeEmpty())
		Expect(p.Spec.InitContainers).To(ConsistOf(HaveField("Name", safeguard.AuditSidecarName)), "the audit sidecar was injected")
	})

	It("admits with a warning in Audit", func() {
		ns := newNamespace()
		integrityWorkload(ns, phiguardv1alpha1.ModeAudit)
		var got []string
		Eventually(func(g Gomega) {
			warnings.take()
			g.Expect(k8s.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe", Labels: records},
				Spec: mutableSpec()}, client.DryRunAll)).To(Succeed())
			got = withoutIdentityWarnings(warnings.take())
			g.Expect(got).NotTo(BeEmpty())
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		Expect(got).To(ConsistOf("phiguard (Audit, allowed): Pod probe would run containers that could alter their own software: " + mutableProblems +
			". PHIWorkload " + ns + "/records requires integrity controls (HIPAA §164.312(c)(1), integrity.mode Audit); " + integrityFix))
		Expect(k8s.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-0", Labels: records},
			Spec: mutableSpec()})).To(Succeed())
	})
})
