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

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Covers the EncryptedAtRest condition: claims that exist before (or without)
// admission are judged and named on the status, and it follows changes.
var _ = Describe("Encryption at rest status", Ordered, func() {
	const timeout, poll = 10 * time.Second, 50 * time.Millisecond

	BeforeAll(func() {
		for _, sc := range []*storagev1.StorageClass{
			{ObjectMeta: metav1.ObjectMeta{Name: "status-plain"}, Provisioner: "rancher.io/local-path"},
			{ObjectMeta: metav1.ObjectMeta{Name: "status-longhorn-crypto"}, Provisioner: "driver.longhorn.io",
				Parameters: map[string]string{"encrypted": "true"}},
		} {
			Expect(k8s.Create(ctx, sc)).To(Succeed())
		}
	})

	newClaim := func(ns, name, class string) {
		GinkgoHelper()
		Expect(k8s.Create(ctx, &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: ptr.To(class),
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		})).To(Succeed())
	}
	podMounting := func(ns, name string, claims ...string) {
		GinkgoHelper()
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "records"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
		}
		for _, c := range claims {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: c, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
		}
		Expect(k8s.Create(ctx, pod)).To(Succeed())
	}

	It("names the unencrypted claims the selected pods mount", func() {
		ns := newNamespace()
		newClaim(ns, "records-data", "status-plain")
		newClaim(ns, "records-wal", "status-longhorn-crypto")
		newClaim(ns, "unrelated", "status-plain") // mounted by no selected pod
		podMounting(ns, "records-0", "records-data", "records-wal")
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.EncryptionAtRest = &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeAudit}
		})

		Eventually(func(g Gomega) {
			c := condition(g, w, string(phiguardv1alpha1.EncryptedAtRest))
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonUnencryptedVolumes))
			g.Expect(c.Message).To(HavePrefix("1 of 2 persistent volume claims are not encrypted at rest: records-data (class status-plain: provisioner rancher.io/local-path is not one phiguard knows to encrypt"))
			g.Expect(c.Message).To(HaveSuffix("move the data to a claim of an encrypted StorageClass (encrypted classes: status-longhorn-crypto)"))
			g.Expect(c.Message).NotTo(ContainSubstring("unrelated"))
		}, timeout, poll).Should(Succeed())

		By("marking the class encrypted by other means turns the condition True")
		sc := &storagev1.StorageClass{}
		Expect(k8s.Get(ctx, objectKey("status-plain"), sc)).To(Succeed())
		DeferCleanup(func() {
			Expect(k8s.Get(ctx, objectKey("status-plain"), sc)).To(Succeed())
			delete(sc.Annotations, "phiguard.io/encrypted")
			Expect(k8s.Update(ctx, sc)).To(Succeed())
		})
		sc.Annotations = map[string]string{"phiguard.io/encrypted": "true"}
		Expect(k8s.Update(ctx, sc)).To(Succeed())
		Eventually(func(g Gomega) {
			c := condition(g, w, string(phiguardv1alpha1.EncryptedAtRest))
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonAllVolumesEncrypted))
			g.Expect(c.Message).To(Equal("all 2 persistent volume claims of the 1 selected pods use encrypted StorageClasses, and no pod mounts a hostPath volume"))
		}, timeout, poll).Should(Succeed())
	})

	It("reports a claim that is mounted but not created yet, and judges it once it is", func() {
		ns := newNamespace()
		podMounting(ns, "records-0", "records-data")
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) {
			c := condition(g, w, string(phiguardv1alpha1.EncryptedAtRest))
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonClaimMissing))
			g.Expect(c.Message).To(Equal("1 claims the pods mount do not exist, so their class cannot be judged: records-data"))
		}, timeout, poll).Should(Succeed())

		newClaim(ns, "records-data", "status-plain")
		Eventually(func(g Gomega) {
			c := condition(g, w, string(phiguardv1alpha1.EncryptedAtRest))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonUnencryptedVolumes))
		}, timeout, poll).Should(Succeed())
	})
})
