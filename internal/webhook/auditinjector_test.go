package webhook_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// Covers the audit sidecar injection, with the real apiserver calling the
// mutating webhook and storing what it returns.
var _ = Describe("Audit sidecar injection", func() {
	const forwarder = "registry.example/forwarder:2"
	auditWorkload := func(ns string, mode phiguardv1alpha1.Mode) {
		GinkgoHelper()
		Expect(k8s.Create(ctx, &phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{
				Selector: metav1.LabelSelector{MatchLabels: records},
				SafeguardSettings: phiguardv1alpha1.SafeguardSettings{AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{
					Mode: mode, LogPath: "/var/log/audit",
					Sidecar: &phiguardv1alpha1.AuditSidecar{
						Image: forwarder, Args: []string{"--watch", "/var/log/audit"},
						Env:       []phiguardv1alpha1.AuditSidecarEnv{{Name: "SIEM", Value: "siem.example:6514"}},
						Resources: &phiguardv1alpha1.AuditSidecarResources{Limits: &phiguardv1alpha1.CPUMemory{CPU: "100m", Memory: "64Mi"}},
					},
				}},
			},
		})).To(Succeed())
	}
	pod := func(ns, name string, labels map[string]string, containers ...string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels}}
		for _, c := range containers {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "registry.example/" + c + ":1"})
		}
		return p
	}
	// injectedEventually waits until the webhook's cache knows the workload
	// (a dry-run create comes back mutated), then creates the pod for real.
	injectedEventually := func(p *corev1.Pod) *corev1.Pod {
		GinkgoHelper()
		Eventually(func(g Gomega) {
			probe := p.DeepCopy()
			g.Expect(k8s.Create(ctx, probe, client.DryRunAll)).To(Succeed())
			g.Expect(probe.Annotations).To(HaveKey(safeguard.AuditInjectedAnnotation))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		Expect(k8s.Create(ctx, p)).To(Succeed())
		return p
	}

	It("injects a restricted native sidecar, the log volume and its mounts, once", func() {
		ns := newNamespace()
		auditWorkload(ns, phiguardv1alpha1.ModeEnforce)
		p := injectedEventually(pod(ns, "records-0", records, "app", "cache", "proxy"))

		Expect(p.Spec.InitContainers).To(HaveLen(1))
		sidecar := p.Spec.InitContainers[0]
		Expect(sidecar.Name).To(Equal(safeguard.AuditSidecarName))
		Expect(sidecar.Image).To(Equal(forwarder))
		Expect(sidecar.Args).To(Equal([]string{"--watch", "/var/log/audit"}))
		Expect(sidecar.Env).To(ConsistOf(corev1.EnvVar{Name: "SIEM", Value: "siem.example:6514"}))
		Expect(sidecar.Resources.Limits.Cpu().String()).To(Equal("100m"))
		Expect(sidecar.RestartPolicy).To(HaveValue(Equal(corev1.ContainerRestartPolicyAlways)), "a native sidecar")
		Expect(sidecar.SecurityContext).To(And(
			HaveField("RunAsNonRoot", HaveValue(BeTrue())), HaveField("ReadOnlyRootFilesystem", HaveValue(BeTrue())),
			HaveField("RunAsUser", HaveValue(Equal(int64(65532)))), HaveField("RunAsGroup", HaveValue(Equal(int64(65532)))),
			HaveField("AllowPrivilegeEscalation", HaveValue(BeFalse())), HaveField("Capabilities.Drop", ConsistOf(corev1.Capability("ALL")))))
		Expect(sidecar.VolumeMounts).To(ConsistOf(corev1.VolumeMount{Name: safeguard.AuditVolumeName, MountPath: "/var/log/audit", ReadOnly: true},
			corev1.VolumeMount{Name: safeguard.AuditStateVolumeName, MountPath: safeguard.AuditStatePath}))
		Expect(p.Spec.Volumes).To(ContainElement(And(HaveField("Name", safeguard.AuditVolumeName), HaveField("EmptyDir", Not(BeNil())))))
		Expect(p.Spec.Volumes).To(ContainElement(And(HaveField("Name", safeguard.AuditStateVolumeName), HaveField("EmptyDir", Not(BeNil())))))
		for _, c := range p.Spec.Containers {
			Expect(c.VolumeMounts).To(ContainElement(corev1.VolumeMount{Name: safeguard.AuditVolumeName, MountPath: "/var/log/audit"}), c.Name)
		}
		Expect(p.Spec.SecurityContext.FSGroup).To(HaveValue(Equal(int64(65532))), "the pod set none: the sidecar's group owns the log volume")
		Expect(p.Annotations).To(HaveKeyWithValue(safeguard.AuditInjectedAnnotation, "records/"+forwarder))

		By("a pod that already carries it is left as it is")
		again := p.DeepCopy()
		again.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "records-1", Labels: records, Annotations: p.Annotations}
		Expect(k8s.Create(ctx, again)).To(Succeed())
		Expect(again.Spec.InitContainers).To(HaveLen(1))
		Expect(again.Spec.Volumes).To(HaveLen(len(p.Spec.Volumes)))
		Expect(again.Spec.Containers[0].VolumeMounts).To(HaveLen(len(p.Spec.Containers[0].VolumeMounts)))

		By("as on a reinvocation: a pod with the sidecar and a container added since gets only the missing mount")
		later := p.DeepCopy()
		later.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "records-2", Labels: records, Annotations: p.Annotations}
		later.Spec.Containers = append(later.Spec.Containers, corev1.Container{Name: "mesh-proxy", Image: "registry.example/mesh:1"})
		Expect(k8s.Create(ctx, later)).To(Succeed())
		Expect(later.Spec.InitContainers).To(HaveLen(1))
		Expect(later.Spec.Containers[3].VolumeMounts).To(ConsistOf(corev1.VolumeMount{Name: safeguard.AuditVolumeName, MountPath: "/var/log/audit"}))
	})

	It("only warns in Audit mode", func() {
		ns := newNamespace()
		auditWorkload(ns, phiguardv1alpha1.ModeAudit)
		var got []string
		Eventually(func(g Gomega) {
			warnings.take()
			g.Expect(k8s.Create(ctx, pod(ns, "probe", records, "app"), client.DryRunAll)).To(Succeed())
			got = withoutIdentityWarnings(warnings.take())
			g.Expect(got).NotTo(BeEmpty())
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		// IntegrityProtected is Audit by default too, and the pod is not hardened.
		Expect(got).To(ConsistOf(
			ContainSubstring("phiguard (Audit): PHIWorkload "+ns+"/records selects this pod; in Enforce mode it would get the audit sidecar "+forwarder),
			HavePrefix("phiguard (Audit, allowed): Pod probe would run containers that could alter their own software: container app: ")))
		p := pod(ns, "records-0", records, "app")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Expect(p.Spec.InitContainers).To(BeEmpty())

		By("recording the warning as an Event on the workload, related to the pod (the dry run records nothing)")
		w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}}
		Eventually(func(g Gomega) {
			// The integrity webhook's warning about the same pod has the same
			// regarding object, reason, action and related object: events.k8s.io
			// folds it into this Event's series.
			g.Expect(admissionEvents(g, w)).To(ConsistOf(And(
				HaveField("Reason", phiguardv1alpha1.ReasonAdmissionWarned),
				HaveField("Related", HaveValue(And(HaveField("Kind", "Pod"), HaveField("Name", "records-0")))),
				HaveField("Note", ContainSubstring("create of Pod "+ns+"/records-0 with warnings: phiguard (Audit): PHIWorkload "+ns+"/records selects this pod")))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})

	It("mutates nothing it does not cover", func() {
		By("a namespace without PHIWorkloads")
		ns := newNamespace()
		p := pod(ns, "records-0", records, "app")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Expect(p.Spec.InitContainers).To(BeEmpty())

		By("a pod the workload does not select")
		covered := newNamespace()
		auditWorkload(covered, phiguardv1alpha1.ModeEnforce)
		injectedEventually(pod(covered, "probe", records, "app"))
		other := pod(covered, "batch-0", map[string]string{"app": "batch"}, "app")
		Expect(k8s.Create(ctx, other)).To(Succeed())
		Expect(other.Spec.InitContainers).To(BeEmpty())

		By("a pod that opted out, with a warning that it is still reported")
		warnings.take()
		optedOut := pod(covered, "records-opted-out", records, "app")
		optedOut.Annotations = map[string]string{safeguard.AuditOptOutAnnotation: "false"}
		Expect(k8s.Create(ctx, optedOut)).To(Succeed())
		Expect(optedOut.Spec.InitContainers).To(BeEmpty())
		Expect(warnings.take()).To(ContainElement(ContainSubstring("reports it as lacking audit controls")))

		By("kube-system (where no PHIWorkload is admitted; the handler's own exemption is unit-tested)")
		Consistently(func(g Gomega) {
			probe := pod("kube-system", "probe", records, "app")
			g.Expect(k8s.Create(ctx, probe, client.DryRunAll)).To(Succeed())
			g.Expect(probe.Spec.InitContainers).To(BeEmpty())
		}, time.Second, 100*time.Millisecond).Should(Succeed())
	})

	It("injects into pods made from a template, which have no name yet", func() {
		ns := newNamespace()
		auditWorkload(ns, phiguardv1alpha1.ModeEnforce)
		p := pod(ns, "", records, "app")
		p.GenerateName = "records-"
		p.Spec.RestartPolicy = corev1.RestartPolicyAlways
		p.Spec.TerminationGracePeriodSeconds = ptr.To[int64](5)
		injectedEventually(p)
		Expect(p.Name).To(HavePrefix("records-"))
		Expect(safeguard.AuditSidecarProblem(p, forwarder)).To(BeEmpty())
	})

	It("replaces a container that has the sidecar's name but is not phiguard's current sidecar, with a warning", func() {
		ns := newNamespace()
		auditWorkload(ns, phiguardv1alpha1.ModeEnforce)
		injectedEventually(pod(ns, "probe", records, "app"))

		By("a container named phiguard-audit, without phiguard's annotation")
		warnings.take()
		named := pod(ns, "records-0", records, "app")
		named.Spec.Containers = append(named.Spec.Containers, corev1.Container{Name: safeguard.AuditSidecarName, Image: "registry.example/lookalike:1"})
		Expect(k8s.Create(ctx, named)).To(Succeed())
		Expect(named.Spec.Containers).To(HaveExactElements(HaveField("Name", "app")))
		Expect(named.Spec.InitContainers).To(HaveExactElements(And(HaveField("Name", safeguard.AuditSidecarName), HaveField("Image", forwarder))))
		Expect(named.Annotations).To(HaveKeyWithValue(safeguard.AuditInjectedAnnotation, "records/"+forwarder))
		Expect(warnings.take()).To(ContainElement("phiguard: replaced this pod's container phiguard-audit (no phiguard.io/audit-sidecar annotation) " +
			"with the audit sidecar " + forwarder + " of PHIWorkload " + ns + "/records"))

		By("a pod copied from one injected with an image the settings no longer name")
		stale := pod(ns, "records-1", records, "app")
		stale.Annotations = map[string]string{safeguard.AuditInjectedAnnotation: "records/registry.example/forwarder:1"}
		stale.Spec.InitContainers = []corev1.Container{{Name: safeguard.AuditSidecarName, Image: "registry.example/forwarder:1",
			RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
		Expect(k8s.Create(ctx, stale)).To(Succeed())
		Expect(stale.Spec.InitContainers).To(HaveExactElements(HaveField("Image", forwarder)))
		Expect(stale.Annotations).To(HaveKeyWithValue(safeguard.AuditInjectedAnnotation, "records/"+forwarder))
		Expect(warnings.take()).To(ContainElement(ContainSubstring(
			"(container phiguard-audit has image registry.example/forwarder:1, the settings say " + forwarder)))
	})

	It("keeps the pod's own fsGroup and builds Fluent Bit's command line from the output", func() {
		ns := newNamespace()
		out := phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputForward, Host: "fluentd.logging.svc", Port: 24224}
		Expect(k8s.Create(ctx, &phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{
				Selector: metav1.LabelSelector{MatchLabels: records},
				SafeguardSettings: phiguardv1alpha1.SafeguardSettings{AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{
					Sidecar: &phiguardv1alpha1.AuditSidecar{Image: safeguard.DefaultAuditSidecarImage, Output: &out, RunAsUser: ptr.To[int64](10001)},
				}},
			},
		})).To(Succeed())
		p := pod(ns, "records-0", records, "app")
		p.Spec.SecurityContext = &corev1.PodSecurityContext{FSGroup: ptr.To[int64](2000)}
		injectedEventually(p)

		Expect(p.Spec.SecurityContext.FSGroup).To(HaveValue(Equal(int64(2000))), "the app's fsGroup is never changed")
		sidecar := p.Spec.InitContainers[0]
		Expect(sidecar.Args).To(Equal(safeguard.FluentBitArgs(safeguard.DefaultAuditLogPath, &out)))
		Expect(sidecar.Args).To(ContainElements("-o", "forward", "host=fluentd.logging.svc", "port=24224"))
		Expect(sidecar.SecurityContext.RunAsUser).To(HaveValue(Equal(int64(10001))))
		Expect(sidecar.SecurityContext.RunAsGroup).To(HaveValue(Equal(int64(65532))), "the built-in group")
	})
})
