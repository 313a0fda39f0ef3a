package storageclass

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func class(name, provisioner string, params map[string]string, annotations ...string) storagev1.StorageClass {
	sc := storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Provisioner: provisioner, Parameters: params}
	if len(annotations) == 2 {
		sc.Annotations = map[string]string{annotations[0]: annotations[1]}
	}
	return sc
}

func TestClassify(t *testing.T) {
	cases := []struct {
		name      string
		sc        storagev1.StorageClass
		opts      Options
		encrypted bool
		provider  string
		reason    string
	}{
		{"EBS CSI encrypted", class("gp3", "ebs.csi.aws.com", map[string]string{"type": "gp3", "encrypted": "true"}), Options{},
			true, "AWS EBS", `AWS EBS: parameter encrypted="true" (the region's default KMS key)`},
		{"EBS CSI encrypted with a key", class("gp3-kms", "ebs.csi.aws.com", map[string]string{"encrypted": "true", "kmsKeyId": "arn:aws:kms:eu-west-1:1:key/abc"}), Options{},
			true, "AWS EBS", "with kmsKeyId arn:aws:kms:eu-west-1:1:key/abc"},
		{"EBS CSI unencrypted", class("gp2", "ebs.csi.aws.com", map[string]string{"type": "gp2"}), Options{},
			false, "AWS EBS", `AWS EBS: parameter encrypted is not "true"; set encrypted: "true"`},
		{"EBS key without encrypted", class("kms-only", "ebs.csi.aws.com", map[string]string{"kmsKeyId": "arn:k"}), Options{},
			false, "AWS EBS", "kmsKeyId is set but encrypted is not \"true\""},
		{"EBS in-tree encrypted", class("legacy", "kubernetes.io/aws-ebs", map[string]string{"encrypted": "True"}), Options{},
			true, "AWS EBS", `parameter encrypted="true"`},
		{"EBS encrypted false", class("off", "ebs.csi.aws.com", map[string]string{"encrypted": "false"}), Options{},
			false, "AWS EBS", "encrypted is not"},
		{"GCE PD with CMEK", class("pd-cmek", "pd.csi.storage.gke.io", map[string]string{"disk-encryption-kms-key": "projects/p/locations/l/keyRings/r/cryptoKeys/k"}), Options{},
			true, "GCE PD", "customer-managed key in parameter disk-encryption-kms-key"},
		{"GCE PD platform keys accepted", class("standard-rwo", "pd.csi.storage.gke.io", map[string]string{"type": "pd-balanced"}), Options{},
			true, "GCE PD", "Google encrypts every persistent disk at rest"},
		{"GCE PD platform keys rejected", class("standard-rwo", "pd.csi.storage.gke.io", nil), Options{RejectPlatformManaged: true},
			false, "GCE PD", "PHIPolicy spec.storage.platformManagedEncryption is Reject"},
		{"Azure Disk with a disk encryption set, any case", class("managed-cmk", "disk.csi.azure.com", map[string]string{"DiskEncryptionSetID": "/subscriptions/s/des"}), Options{},
			true, "Azure Disk", "customer-managed key in parameter diskEncryptionSetID"},
		{"Azure Disk platform keys accepted", class("managed-csi", "disk.csi.azure.com", map[string]string{"skuname": "StandardSSD_LRS"}), Options{},
			true, "Azure Disk", "platform-managed keys"},
		{"Azure in-tree platform keys rejected", class("default", "kubernetes.io/azure-disk", nil), Options{RejectPlatformManaged: true},
			false, "Azure Disk", "no customer-managed key (parameter diskEncryptionSetID)"},
		{"Ceph RBD encrypted", class("rbd-enc", "rbd.csi.ceph.com", map[string]string{"encrypted": "true", "encryptionKMSID": "vault"}), Options{},
			true, "Ceph RBD", `parameter encrypted="true"`},
		{"Ceph RBD through Rook, unencrypted", class("rook-rbd", "rook-ceph.rbd.csi.ceph.com", map[string]string{"pool": "replicapool"}), Options{},
			false, "Ceph RBD", `parameter encrypted is not "true"`},
		{"Longhorn encrypted", class("longhorn-crypto", "driver.longhorn.io", map[string]string{"encrypted": "true"}), Options{},
			true, "Longhorn", `Longhorn: parameter encrypted="true"`},
		{"Longhorn plain", class("longhorn", "driver.longhorn.io", map[string]string{"numberOfReplicas": "3"}), Options{},
			false, "Longhorn", "set encrypted"},
		{"Portworx secure", class("px-secure", "pxd.portworx.com", map[string]string{"secure": "true"}), Options{},
			true, "Portworx", `parameter secure="true"`},
		{"Portworx in-tree not secure", class("px", "kubernetes.io/portworx-volume", map[string]string{"repl": "2"}), Options{},
			false, "Portworx", `set secure: "true"`},
		{"unknown provisioner", class("local-path", "rancher.io/local-path", nil), Options{},
			false, "", "provisioner rancher.io/local-path is not one phiguard knows to encrypt"},
		{"unknown provisioner, annotated", class("san", "csi.example.com", nil, EncryptedAnnotation, "true"), Options{},
			true, "", `annotated phiguard.io/encrypted="true"`},
		{"unknown provisioner, allow-listed", class("san-gold", "csi.example.com", nil), Options{EncryptedClasses: []string{"san-gold"}},
			true, "", "listed in PHIPolicy spec.storage.encryptedStorageClasses"},
		{"annotation stands in for a parameter the class leaves out", class("gp2-sse", "ebs.csi.aws.com", nil, EncryptedAnnotation, "true"), Options{},
			true, "AWS EBS", "annotated"},
		{"annotation contradicted by EBS encrypted false", class("gp2-off", "ebs.csi.aws.com", map[string]string{"encrypted": "false"}, EncryptedAnnotation, "true"), Options{},
			false, "AWS EBS", `annotated phiguard.io/encrypted="true", but its AWS EBS parameter encrypted is "false": the class says it does not encrypt`},
		{"allow-list contradicted by Portworx secure false", class("px-plain", "pxd.portworx.com", map[string]string{"secure": "false"}), Options{EncryptedClasses: []string{"px-plain"}},
			false, "Portworx", `listed in PHIPolicy spec.storage.encryptedStorageClasses, but its Portworx parameter secure is "false"`},
		{"annotation agreeing with the parameter", class("gp3", "ebs.csi.aws.com", map[string]string{"encrypted": "true"}, EncryptedAnnotation, "true"), Options{},
			true, "AWS EBS", "annotated"},
		{"annotation false is no claim", class("x", "rancher.io/local-path", nil, EncryptedAnnotation, "false"), Options{},
			false, "", "not one phiguard knows"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			v := Classify(&tc.sc, tc.opts)
			g.Expect(v.Encrypted).To(Equal(tc.encrypted), v.Reason)
			g.Expect(v.Provider).To(Equal(tc.provider))
			g.Expect(v.Reason).To(ContainSubstring(tc.reason))
		})
	}
}

func TestClassNameResolvesTheDefaultAsTheAPIServerDoes(t *testing.T) {
	g := NewWithT(t)
	old := class("old-default", "ebs.csi.aws.com", nil, defaultClassAnnotation, "true")
	old.CreationTimestamp = metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	newer := class("new-default", "ebs.csi.aws.com", map[string]string{"encrypted": "true"}, defaultClassBetaAnnotation, "true")
	newer.CreationTimestamp = metav1.NewTime(old.CreationTimestamp.Add(time.Hour))
	plain := class("plain", "ebs.csi.aws.com", nil)
	classes := []storagev1.StorageClass{old, newer, plain}

	name, ok := ClassName(&corev1.PersistentVolumeClaimSpec{}, classes)
	g.Expect(ok).To(BeTrue())
	g.Expect(name).To(Equal("new-default"), "the newest default wins")

	name, ok = ClassName(&corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("plain")}, classes)
	g.Expect(ok).To(BeTrue())
	g.Expect(name).To(Equal("plain"))

	_, ok = ClassName(&corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("")}, classes)
	g.Expect(ok).To(BeFalse(), `"" means no class`)
	_, ok = ClassName(&corev1.PersistentVolumeClaimSpec{}, []storagev1.StorageClass{plain})
	g.Expect(ok).To(BeFalse(), "no default class")

	class, v := Judge(&corev1.PersistentVolumeClaimSpec{}, classes, Options{})
	g.Expect(class).To(Equal("new-default"))
	g.Expect(v.Encrypted).To(BeTrue())
	_, v = Judge(&corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("")}, classes, Options{})
	g.Expect(v.Reason).To(ContainSubstring("pre-provisioned volume"))
	_, v = Judge(&corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("gone")}, classes, Options{})
	g.Expect(v.Reason).To(Equal("StorageClass gone does not exist"))
	g.Expect(Encrypted(classes, Options{})).To(Equal([]string{"new-default"}))
}
