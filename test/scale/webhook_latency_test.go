package scale

import (
	"fmt"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// TestWebhookAddedLatency measures what the claim webhook adds to a claim
// create through the apiserver: the same creates (a covered claim on an
// encrypted class, so the webhook evaluates in full and admits) with the
// webhook configuration installed, then without it. It logs the medians.
//
//	PHIGUARD_WEBHOOK_CREATES=500 go test ./test/scale/ -run TestWebhookAddedLatency -v
func TestWebhookAddedLatency(t *testing.T) {
	g := NewWithT(t)
	creates := envInt(t, "PHIGUARD_WEBHOOK_CREATES", 100)
	k8s, _ := start(t, true)
	ctx := t.Context()

	const ns = "latency"
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "encrypted"},
		Provisioner: "ebs.csi.aws.com", Parameters: map[string]string{"encrypted": "true"}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "plain"},
		Provisioner: "ebs.csi.aws.com"})).To(Succeed())
	g.Expect(k8s.Create(ctx, &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}},
	})).To(Succeed())
	claim := func(name, class string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "records"}},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(class),
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
		}
	}
	// The webhook is live once it denies an unencrypted claim.
	g.Eventually(func() error {
		return k8s.Create(ctx, claim("probe", "plain"), client.DryRunAll)
	}, 30*time.Second, 50*time.Millisecond).Should(HaveOccurred())

	timeCreates := func(prefix string) []time.Duration {
		out := make([]time.Duration, 0, creates)
		for i := range creates {
			c := claim(fmt.Sprintf("%s-%d", prefix, i), "encrypted")
			start := time.Now()
			g.Expect(k8s.Create(ctx, c)).To(Succeed())
			out = append(out, time.Since(start))
		}
		return out
	}
	with := timeCreates("with")

	var hooks admissionregistrationv1.ValidatingWebhookConfigurationList
	g.Expect(k8s.List(ctx, &hooks)).To(Succeed())
	for i := range hooks.Items {
		g.Expect(k8s.Delete(ctx, &hooks.Items[i])).To(Succeed())
	}
	// Gone once an unencrypted claim is admitted.
	g.Eventually(func() error {
		return k8s.Create(ctx, claim("probe", "plain"), client.DryRunAll)
	}, 30*time.Second, 50*time.Millisecond).Should(Succeed())
	without := timeCreates("without")

	t.Logf("webhook: %d claim creates each; with the webhook %s", creates, summary(with))
	t.Logf("webhook: without the webhook %s", summary(without))
	t.Logf("webhook: added median %s", (median(with) - median(without)).Round(10*time.Microsecond))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// TestPodWebhookAddedLatency measures what the audit sidecar injection adds to
// a pod create through the apiserver: a selected pod with 3 containers created
// with the mutating webhook installed (which injects the sidecar), then the
// same pod already injected, without the webhook.
//
//	PHIGUARD_WEBHOOK_CREATES=500 go test ./test/scale/ -run TestPodWebhookAddedLatency -v
func TestPodWebhookAddedLatency(t *testing.T) {
	g := NewWithT(t)
	creates := envInt(t, "PHIGUARD_WEBHOOK_CREATES", 100)
	k8s, _ := start(t, true)
	ctx := t.Context()

	pod, removeInjection := injectedPods(t, k8s, "pod-latency")

	// Without the webhook the pods are sent already injected, so that both runs
	// store the same pod and the difference is the webhook alone.
	effective, _, err := safeguard.New(safeguard.Options{}).Effective(&phiguardv1alpha1.SafeguardSettings{}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	timeCreates := func(prefix string, preInjected bool) []time.Duration {
		out := make([]time.Duration, 0, creates)
		for i := range creates {
			p := pod(fmt.Sprintf("%s-%d", prefix, i))
			if preInjected {
				safeguard.InjectAuditSidecar(p, "records", effective.AuditLogging)
			}
			start := time.Now()
			g.Expect(k8s.Create(ctx, p)).To(Succeed())
			out = append(out, time.Since(start))
			g.Expect(p.Spec.InitContainers).To(HaveLen(1))
		}
		return out
	}
	with := timeCreates("with", false)

	removeInjection()
	without := timeCreates("without", true)

	t.Logf("pod webhook: %d pod creates each (3 containers); with the webhook %s", creates, summary(with))
	t.Logf("pod webhook: without the webhook %s", summary(without))
	t.Logf("pod webhook: added median %s", (median(with) - median(without)).Round(10*time.Microsecond))
}

// injectedPods creates namespace ns with a PHIWorkload selecting app=records
// and waits until the pod webhook injects its pods. It returns how to make a
// pod of 3 containers it selects, and a probe (a dry-run create) that says
// whether the webhook injects; and removeInjection deletes the mutating
// webhook configurations and waits until it no longer does.
func injectedPods(t *testing.T, k8s client.Client, ns string) (pod func(name string) *corev1.Pod, removeInjection func()) {
	t.Helper()
	g := NewWithT(t)
	ctx := t.Context()
	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}},
	})).To(Succeed())
	pod = func(name string) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "records"}}}
		for _, c := range []string{"app", "cache", "proxy"} {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: c, Image: "registry.example/" + c + ":1"})
		}
		return p
	}
	injected := func(g Gomega) bool {
		p := pod("probe")
		g.Expect(k8s.Create(ctx, p, client.DryRunAll)).To(Succeed())
		return len(p.Spec.InitContainers) == 1
	}
	g.Eventually(injected, 30*time.Second, 50*time.Millisecond).Should(BeTrue())
	removeInjection = func() {
		var hooks admissionregistrationv1.MutatingWebhookConfigurationList
		g.Expect(k8s.List(ctx, &hooks)).To(Succeed())
		for i := range hooks.Items {
			g.Expect(k8s.Delete(ctx, &hooks.Items[i])).To(Succeed())
		}
		g.Eventually(injected, 30*time.Second, 50*time.Millisecond).Should(BeFalse())
	}
	return pod, removeInjection
}
