package safeguard

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

const pinned = "registry.example/records@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// hardened is a container that passes every integrity check.
func hardened(name string) corev1.Container {
	return corev1.Container{Name: name, Image: pinned, SecurityContext: &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		ReadOnlyRootFilesystem:   ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}}
}

func integrityPod(name string, mutate func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name, Labels: map[string]string{"app": "records"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{hardened("app")}}}
	if mutate != nil {
		mutate(&p)
	}
	return p
}

const (
	escalation = `allowPrivilegeEscalation != false (container "app" must set securityContext.allowPrivilegeEscalation=false)`
	notRO      = "root filesystem not read-only (securityContext.readOnlyRootFilesystem must be true)"
)

func TestIntegrityProblems(t *testing.T) {
	sidecar := func(image string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			InjectAuditSidecar(p, "records", &phiguardv1alpha1.AuditLoggingSpec{LogPath: DefaultAuditLogPath,
				Sidecar: &phiguardv1alpha1.AuditSidecar{Image: image}})
		}
	}
	tagged := "registry.example/fluent-bit:3.2.4"
	for _, tc := range []struct {
		name string
		pod  corev1.Pod
		opts IntegrityOptions
		want []string
	}{
		{name: "hardened and pinned", pod: integrityPod("p", nil), opts: IntegrityOptions{RequireImageDigest: true}},
		{name: "a tag, digests required", opts: IntegrityOptions{RequireImageDigest: true},
			pod:  integrityPod("p", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "registry.example/records:1" }),
			want: []string{"container app: image registry.example/records:1 not pinned by digest"}},
		{name: "a tag, digests not required",
			pod: integrityPod("p", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "registry.example/records:1" })},
		{name: "tag and digest", opts: IntegrityOptions{RequireImageDigest: true},
			pod: integrityPod("p", func(p *corev1.Pod) {
				p.Spec.Containers[0].Image = "registry.example/records:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			})},
		{name: "no security context: every check named", opts: IntegrityOptions{RequireImageDigest: true},
			pod: integrityPod("p", func(p *corev1.Pod) {
				p.Spec.Containers[0] = corev1.Container{Name: "app", Image: "registry.example/records:1"}
			}),
			want: []string{"container app: " + escalation +
				`, unrestricted capabilities (container "app" must set securityContext.capabilities.drop=["ALL"])` +
				`, runAsNonRoot != true (pod or container "app" must set securityContext.runAsNonRoot=true)` +
				`, seccompProfile (pod or container "app" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")` +
				", " + notRO + ", image registry.example/records:1 not pinned by digest"}},
		{name: "the pod's security context counts for its containers",
			pod: integrityPod("p", func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}
				p.Spec.Containers[0].SecurityContext.RunAsNonRoot = nil
				p.Spec.Containers[0].SecurityContext.SeccompProfile = nil
			})},
		{name: "a writable root filesystem",
			pod:  integrityPod("p", func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = ptr.To(false) }),
			want: []string{"container app: " + notRO}},
		{name: "init containers are judged, each named",
			pod: integrityPod("p", func(p *corev1.Pod) {
				initC := hardened("migrate")
				initC.SecurityContext.Privileged = ptr.To(true)
				p.Spec.InitContainers = []corev1.Container{initC}
				p.Spec.Containers = append(p.Spec.Containers, hardened("worker"))
				p.Spec.Containers[1].SecurityContext.AllowPrivilegeEscalation = nil
			}),
			want: []string{`init container migrate: privileged (container "migrate" must not set securityContext.privileged=true)`,
				`container worker: allowPrivilegeEscalation != false (container "worker" must set securityContext.allowPrivilegeEscalation=false)`}},
		{name: "the pod's own fields are named once, not per container",
			pod: integrityPod("p", func(p *corev1.Pod) {
				p.Spec.HostNetwork = true
				p.Spec.Containers = append(p.Spec.Containers, hardened("worker"))
			}),
			want: []string{"pod: host namespaces (hostNetwork=true)"}},
		{name: "phiguard's sidecar is not judged, even with a tag only", opts: IntegrityOptions{RequireImageDigest: true, SidecarImage: tagged},
			pod: integrityPod("p", sidecar(tagged))},
		{name: "phiguard's default sidecar passes when judged", opts: IntegrityOptions{RequireImageDigest: true},
			pod: integrityPod("p", sidecar(DefaultAuditSidecarImage))},
		{name: "a look-alike sidecar is judged", opts: IntegrityOptions{RequireImageDigest: true, SidecarImage: DefaultAuditSidecarImage},
			pod: integrityPod("p", func(p *corev1.Pod) {
				p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: AuditSidecarName, Image: tagged,
					SecurityContext: hardened("x").SecurityContext})
			}),
			want: []string{"container phiguard-audit: image " + tagged + " not pinned by digest"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NewWithT(t).Expect(IntegrityProblems(&tc.pod, tc.opts)).To(Equal(tc.want))
		})
	}
}

func TestIntegrityReconcile(t *testing.T) {
	settings := func(requireDigest bool) phiguardv1alpha1.SafeguardSettings {
		s := New(Options{}).Defaults()
		s.Integrity.RequireImageDigest = ptr.To(requireDigest)
		return s
	}
	writable := func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.ReadOnlyRootFilesystem = nil }
	many := make([]corev1.Pod, 12)
	for i := range many {
		many[i] = integrityPod(string(rune('a'+i)), writable)
	}
	for _, tc := range []struct {
		name     string
		pods     []corev1.Pod
		settings phiguardv1alpha1.SafeguardSettings
		status   metav1.ConditionStatus
		reason   string
		message  string
	}{
		{name: "every pod passes", pods: []corev1.Pod{integrityPod("a", nil), integrityPod("b", nil)}, settings: settings(true),
			status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonContainersImmutable,
			message: "every container of the 2 selected pods passes the restricted Pod Security Standard with a read-only root filesystem, and runs an image pinned by digest"},
		{name: "digests not required", pods: []corev1.Pod{integrityPod("a", nil)}, settings: settings(false),
			status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonContainersImmutable,
			message: "every container of the 1 selected pods passes the restricted Pod Security Standard with a read-only root filesystem (integrity.requireImageDigest is false: images are not required to be pinned by digest)"},
		{name: "one pod fails", pods: []corev1.Pod{integrityPod("a", nil), integrityPod("b", writable)}, settings: settings(false),
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonContainersMutable,
			message: "1 of 2 selected pods run containers that could alter their own software: b (container app: " + notRO + "); " +
				"set each container's securityContext as the restricted Pod Security Standard requires (runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities.drop: [ALL], seccompProfile.type: RuntimeDefault) and readOnlyRootFilesystem: true"},
		{name: "the first 10 pods named, then a count", pods: many, settings: settings(false),
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonContainersMutable,
			message: "12 of 12 selected pods run containers that could alter their own software: " +
				"a (container app: " + notRO + "), b (container app: " + notRO + "), c (container app: " + notRO + "), " +
				"d (container app: " + notRO + "), e (container app: " + notRO + "), f (container app: " + notRO + "), " +
				"g (container app: " + notRO + "), h (container app: " + notRO + "), i (container app: " + notRO + "), " +
				"j (container app: " + notRO + "), and 2 more; " +
				"set each container's securityContext as the restricted Pod Security Standard requires (runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities.drop: [ALL], seccompProfile.type: RuntimeDefault) and readOnlyRootFilesystem: true"},
		{name: "no pods", settings: settings(true), status: metav1.ConditionUnknown, reason: phiguardv1alpha1.ReasonNoPodsSelected},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			s := &Scope{Workload: &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records"}},
				Pods: tc.pods, Settings: tc.settings}
			r := Integrity{}.Reconcile(t.Context(), s)
			g.Expect(r.Status).To(Equal(tc.status))
			g.Expect(r.Reason).To(Equal(tc.reason))
			if tc.message != "" {
				g.Expect(r.Message).To(Equal(tc.message))
			}
			g.Expect(r.Err).NotTo(HaveOccurred())
			g.Expect(r.Events).To(BeEmpty())
		})
	}
}
