package webhook_test

import (
	"fmt"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

var nsCounter atomic.Int64

func newNamespace() string {
	name := fmt.Sprintf("w%d", nsCounter.Add(1))
	ExpectWithOffset(1, k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}

func workload(ns string, mode phiguardv1alpha1.Mode, mutate ...func(*phiguardv1alpha1.PHIWorkload)) {
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
				EncryptionAtRest: &phiguardv1alpha1.EncryptionAtRestSpec{Mode: mode},
			},
		},
	}
	for _, m := range mutate {
		m(w)
	}
	ExpectWithOffset(1, k8s.Create(ctx, w)).To(Succeed())
}

func claim(ns, name string, class *string, labels map[string]string) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

var records = map[string]string{"app": "records"}

// deniedEventually waits until the webhook's cache knows the workload (probing
// with dry-run creates, which the webhook sees but nothing stores), then
// returns the error of a real create.
func deniedEventually(obj client.Object) error {
	GinkgoHelper()
	Eventually(func() error {
		return k8s.Create(ctx, obj.DeepCopyObject().(client.Object), client.DryRunAll)
	}, 10*time.Second, 50*time.Millisecond).Should(HaveOccurred())
	return k8s.Create(ctx, obj)
}

var _ = Describe("Encryption at rest admission", Ordered, func() {
	const unknownProvisioner = "provisioner rancher.io/local-path is not one phiguard knows to encrypt; " +
		`if the class is encrypted by other means, annotate it phiguard.io/encrypted="true" or list it in PHIPolicy spec.storage.encryptedStorageClasses`

	BeforeAll(func() {
		for _, sc := range []*storagev1.StorageClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "plain", Annotations: map[string]string{"storageclass.kubernetes.io/is-default-class": "true"}},
				Provisioner: "rancher.io/local-path"},
			{ObjectMeta: metav1.ObjectMeta{Name: "gp3-encrypted"}, Provisioner: "ebs.csi.aws.com",
				Parameters: map[string]string{"type": "gp3", "encrypted": "true"}},
		} {
			Expect(k8s.Create(ctx, sc)).To(Succeed())
		}
	})

	It("denies an unencrypted claim in Enforce with a message that says what to fix", func() {
		ns := newNamespace()
		workload(ns, phiguardv1alpha1.ModeEnforce)
		err := deniedEventually(claim(ns, "data", ptr.To("plain"), records))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(Equal(`admission webhook "vpersistentvolumeclaim.phiguard.io" denied the request: ` +
			"PersistentVolumeClaim data would keep ePHI unencrypted at rest: claim data: StorageClass plain is not encrypted (" +
			unknownProvisioner + "). PHIWorkload " + ns + "/records requires encryption at rest (HIPAA §164.312(a)(2)(iv), " +
			"encryptionAtRest.mode Enforce); use an encrypted StorageClass: gp3-encrypted"))

		By("recording the denial as an Event on the workload, related to the claim")
		w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}}
		Eventually(func(g Gomega) {
			g.Expect(admissionEvents(g, w)).To(ContainElement(And(
				HaveField("Reason", phiguardv1alpha1.ReasonAdmissionDenied),
				HaveField("Related", HaveValue(And(HaveField("Kind", "PersistentVolumeClaim"), HaveField("Name", "data")))),
				HaveField("Note", ContainSubstring("create of PersistentVolumeClaim "+ns+"/data: PersistentVolumeClaim data would keep ePHI unencrypted at rest")))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

		By("an encrypted class is admitted")
		Expect(k8s.Create(ctx, claim(ns, "data", ptr.To("gp3-encrypted"), records))).To(Succeed())
	})

	It("resolves a claim without a class to the default class, as the apiserver does", func() {
		ns := newNamespace()
		workload(ns, phiguardv1alpha1.ModeEnforce)
		err := deniedEventually(claim(ns, "data", nil, records))
		Expect(err).To(MatchError(ContainSubstring("claim data: StorageClass plain is not encrypted")))
	})

	It("admits with a warning in Audit mode", func() {
		ns := newNamespace()
		workload(ns, phiguardv1alpha1.ModeAudit)
		var got []string
		Eventually(func(g Gomega) {
			warnings.take()
			g.Expect(k8s.Create(ctx, claim(ns, "probe", ptr.To("plain"), records), client.DryRunAll)).To(Succeed())
			got = warnings.take()
			g.Expect(got).NotTo(BeEmpty())
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
		Expect(k8s.Create(ctx, claim(ns, "data", ptr.To("plain"), records))).To(Succeed())
		Expect(got).To(ConsistOf(HavePrefix("phiguard (Audit, allowed): PersistentVolumeClaim probe would keep ePHI unencrypted at rest")))
		Expect(got[0]).To(ContainSubstring("encryptionAtRest.mode Audit"))
	})

	It("covers a claim that a selected pod already mounts, whatever its labels", func() {
		ns := newNamespace()
		workload(ns, phiguardv1alpha1.ModeEnforce)
		Expect(k8s.Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-0", Labels: records},
			Spec: corev1.PodSpec{
				Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}},
				Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "records-data"}}}},
			},
		})).To(Succeed())
		Expect(deniedEventually(claim(ns, "records-data", ptr.To("plain"), nil))).
			To(MatchError(ContainSubstring("PersistentVolumeClaim records-data would keep ePHI unencrypted")))
	})

	It("never blocks what no PHIWorkload covers", func() {
		By("a namespace without PHIWorkloads")
		ns := newNamespace()
		warnings.take()
		Expect(k8s.Create(ctx, claim(ns, "data", ptr.To("plain"), records))).To(Succeed())
		Expect(warnings.take()).To(BeEmpty())

		By("a claim no workload selects, in a covered namespace")
		covered := newNamespace()
		workload(covered, phiguardv1alpha1.ModeEnforce)
		Expect(deniedEventually(claim(covered, "probe", ptr.To("plain"), records))).To(HaveOccurred())
		Expect(k8s.Create(ctx, claim(covered, "scratch", ptr.To("plain"), map[string]string{"app": "batch"}))).To(Succeed())

		By("kube-system (where no PHIWorkload is admitted; the handler's own exemption is unit-tested)")
		Consistently(func() error {
			return k8s.Create(ctx, claim("kube-system", "data", ptr.To("plain"), records), client.DryRunAll)
		}, time.Second, 100*time.Millisecond).Should(Succeed())

		By("a workload that turned encryption off under a decision")
		decided := newNamespace()
		workload(decided, phiguardv1alpha1.ModeOff, func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Decisions = []phiguardv1alpha1.Decision{{
				Safeguard: phiguardv1alpha1.EncryptedAtRest, Kind: phiguardv1alpha1.DecisionNotReasonable,
				Justification: "scratch data only, wiped at every restart", ApprovedBy: "ciso",
				Expires: metav1.NewTime(time.Now().Add(24 * time.Hour)),
			}}
		})
		Consistently(func() error {
			return k8s.Create(ctx, claim(decided, "data", ptr.To("plain"), records), client.DryRunAll)
		}, time.Second, 100*time.Millisecond).Should(Succeed())
	})

	It("honours the PHIPolicy's list of classes encrypted by other means", func() {
		ns := newNamespace()
		policy := &phiguardv1alpha1.PHIPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
			Spec: phiguardv1alpha1.PHIPolicySpec{Storage: &phiguardv1alpha1.StoragePolicy{
				EncryptedStorageClasses: []string{"plain"}}},
		}
		Expect(k8s.Create(ctx, policy)).To(Succeed())
		DeferCleanup(func() { Expect(k8s.Delete(ctx, policy)).To(Succeed()) })
		workload(ns, phiguardv1alpha1.ModeEnforce)
		Eventually(func() error {
			return k8s.Create(ctx, claim(ns, "data", ptr.To("plain"), records), client.DryRunAll)
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})

	It("judges a StatefulSet's claim templates", func() {
		ns := newNamespace()
		workload(ns, phiguardv1alpha1.ModeEnforce)
		sts := func(name, class string) *appsv1.StatefulSet {
			return &appsv1.StatefulSet{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
				Spec: appsv1.StatefulSetSpec{
					Selector: &metav1.LabelSelector{MatchLabels: records},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: records},
						Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "registry.example/db:1"}}},
					},
					VolumeClaimTemplates: []corev1.PersistentVolumeClaim{
						*claim("", "data", ptr.To(class), nil), *claim("", "wal", ptr.To("gp3-encrypted"), nil)},
				},
			}
		}
		err := deniedEventually(sts("db", "plain"))
		Expect(err).To(MatchError(Equal(`admission webhook "vstatefulset.phiguard.io" denied the request: ` +
			"StatefulSet db would keep ePHI unencrypted at rest: claim data: StorageClass plain is not encrypted (" +
			unknownProvisioner + "). PHIWorkload " + ns + "/records requires encryption at rest (HIPAA §164.312(a)(2)(iv), " +
			"encryptionAtRest.mode Enforce); use an encrypted StorageClass: gp3-encrypted")))
		Expect(k8s.Create(ctx, sts("db", "gp3-encrypted"))).To(Succeed())
	})
})
