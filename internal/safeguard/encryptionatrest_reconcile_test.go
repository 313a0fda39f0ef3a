package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// newEBSClass stores an EBS StorageClass; StorageClasses are cluster-wide, so
// tests name theirs after their namespace.
func newEBSClass(t *testing.T, name string, params map[string]string) {
	t.Helper()
	create(t, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: "ebs.csi.aws.com", Parameters: params})
}

// newDataClaim creates the claim "data" of a class.
func newDataClaim(t *testing.T, ns, class string) {
	t.Helper()
	create(t, &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	})
}

// mounting makes a pod mount claims, each as a volume of the claim's name.
func mounting(claims ...string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		for _, c := range claims {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: c,
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c}}})
		}
	}
}

func TestEncryptionAtRestReportsAClaimOfAnUnencryptedClass(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	plain := ns + "-gp3-plain"
	newEBSClass(t, plain, map[string]string{"type": "gp3"})
	newEBSClass(t, ns+"-gp3-encrypted", map[string]string{"type": "gp3", "encrypted": "true"})
	newDataClaim(t, ns, plain)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, mounting("data"))
	c, writes := countingClient(t)

	r := EncryptionAtRest{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonUnencryptedVolumes))
	g.Expect(r.Message).To(HavePrefix(`1 of 1 persistent volume claims are not encrypted at rest: data (class ` + plain +
		`: AWS EBS: parameter encrypted is not "true"; set encrypted: "true"); move the data to a claim of an encrypted StorageClass (encrypted classes: `))
	// Other tests' classes share the cluster: only this test's is known to be listed.
	g.Expect(r.Message).To(ContainSubstring(ns + "-gp3-encrypted"))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(BeZero(), "EncryptionAtRest only reports")
}

func TestEncryptionAtRestHoldsForAnEncryptedEBSClass(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	encrypted := ns + "-gp3-encrypted"
	newEBSClass(t, encrypted, map[string]string{"type": "gp3", "encrypted": "true"})
	newDataClaim(t, ns, encrypted)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, mounting("data"))
	newPod(t, ns, "records-1", map[string]string{"app": "records"}, mounting("data"))
	c, writes := countingClient(t)

	r := EncryptionAtRest{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonAllVolumesEncrypted))
	g.Expect(r.Message).To(Equal("all 1 persistent volume claims of the 2 selected pods use encrypted StorageClasses, and no pod mounts a hostPath volume"))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(BeZero())
}

// A claim a pod names before it exists cannot be judged: it is not a pass.
func TestEncryptionAtRestReportsAClaimThatDoesNotExist(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	encrypted := ns + "-gp3-encrypted"
	newEBSClass(t, encrypted, map[string]string{"type": "gp3", "encrypted": "true"})
	newDataClaim(t, ns, encrypted)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, mounting("data", "scratch"))
	c, _ := countingClient(t)

	r := EncryptionAtRest{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonClaimMissing))
	g.Expect(r.Message).To(Equal("1 claims the pods mount do not exist, so their class cannot be judged: scratch"))
}

// A hostPath volume keeps ePHI on the node's disk, outside any StorageClass;
// an unencrypted claim beside it is named too, under the worse reason.
func TestEncryptionAtRestReportsHostPathVolumes(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	hostPath := func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "node-disk",
			VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/records"}}})
	}
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, hostPath)
	c, _ := countingClient(t)

	r := EncryptionAtRest{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonHostPathVolume))
	g.Expect(r.Message).To(Equal("1 hostPath volumes put data on the node's disk, outside any StorageClass: records-0/node-disk (/var/lib/records); use a claim of an encrypted StorageClass"))

	plain := ns + "-gp2"
	newEBSClass(t, plain, map[string]string{"type": "gp2"})
	newDataClaim(t, ns, plain)
	newPod(t, ns, "records-1", map[string]string{"app": "records"}, mounting("data"))
	r = EncryptionAtRest{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonUnencryptedVolumes))
	g.Expect(r.Message).To(ContainSubstring("; and 1 hostPath volumes put data on the node's disk"))
}

func TestEncryptionAtRestWithNoPodSelectedIsUnknown(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	c, _ := countingClient(t)

	r := EncryptionAtRest{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionUnknown))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonNoPodsSelected))
	g.Expect(r.Message).To(Equal("spec.selector matches no pod in namespace " + ns + ", so there is nothing to judge; check the selector (app=records)"))
}
