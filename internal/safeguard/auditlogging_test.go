package safeguard

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func auditSpec(t *testing.T) *phiguardv1alpha1.AuditLoggingSpec {
	t.Helper()
	s, _, err := New(Options{}).Effective(&phiguardv1alpha1.SafeguardSettings{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.AuditLogging
}

func TestInjectAuditSidecarIsIdempotent(t *testing.T) {
	g := NewWithT(t)
	spec := auditSpec(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app"}, {Name: "cache"}, {Name: "proxy"}}}}

	InjectAuditSidecar(pod, "records", spec)
	once := pod.DeepCopy()
	InjectAuditSidecar(pod, "records", spec)
	g.Expect(pod).To(Equal(once), "a second injection changes nothing")

	g.Expect(once.Spec.InitContainers).To(HaveLen(1))
	g.Expect(once.Spec.Volumes).To(HaveLen(1))
	for _, c := range once.Spec.Containers {
		g.Expect(c.VolumeMounts).To(ConsistOf(corev1.VolumeMount{Name: AuditVolumeName, MountPath: DefaultAuditLogPath}))
	}
	g.Expect(once.Spec.InitContainers[0].Image).To(Equal(DefaultAuditSidecarImage))
	g.Expect(once.Spec.InitContainers[0].Resources.Requests.Memory().String()).To(Equal("32Mi"))
}

func TestInjectAuditSidecarOnReinvocationMountsNewContainersOnly(t *testing.T) {
	g := NewWithT(t)
	spec := auditSpec(t)
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	InjectAuditSidecar(pod, "records", spec)
	// A later webhook adds a container, and one that already uses the path.
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "mesh-proxy"},
		corev1.Container{Name: "own-logs", VolumeMounts: []corev1.VolumeMount{{Name: "mine", MountPath: DefaultAuditLogPath}}})

	InjectAuditSidecar(pod, "records", spec)
	g.Expect(pod.Spec.InitContainers).To(HaveLen(1))
	g.Expect(pod.Spec.Volumes).To(HaveLen(1))
	g.Expect(pod.Spec.Containers[1].VolumeMounts).To(ConsistOf(HaveField("Name", AuditVolumeName)))
	g.Expect(pod.Spec.Containers[2].VolumeMounts).To(ConsistOf(HaveField("Name", "mine")), "a container's own mount at the path is kept")
}
