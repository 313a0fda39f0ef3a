// Package storageclass decides whether a StorageClass encrypts the volumes it
// provisions, provider by provider, and says why. It reads only the objects
// it is given.
package storageclass

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
)

// EncryptedAnnotation is the annotation that, set to "true" on a StorageClass,
// declares that its volumes are encrypted by means phiguard cannot see (a self-encrypting array,
// account-wide default encryption).
const EncryptedAnnotation = "phiguard.io/encrypted"

// Default-class annotations, as the DefaultStorageClass admission plugin reads them.
const (
	defaultClassAnnotation     = "storageclass.kubernetes.io/is-default-class"
	defaultClassBetaAnnotation = "storageclass.beta.kubernetes.io/is-default-class"
)

// Verdict says whether a class encrypts at rest, and why.
type Verdict struct {
	// Encrypted is true when the class's volumes are encrypted at rest.
	Encrypted bool
	// Provider is the storage provider the class's provisioner belongs to, or
	// "" when phiguard does not know it.
	Provider string
	// Reason says which parameter, annotation or rule decided, in words.
	Reason string
}

// Options are the cluster's own facts about its storage, from the PHIPolicy.
type Options struct {
	// EncryptedClasses are classes known to be encrypted by other means.
	EncryptedClasses []string
	// RejectPlatformManaged refuses the encryption that some platforms apply to
	// every disk with keys they manage (Azure Disk, GCE PD): only customer-managed
	// keys then count.
	RejectPlatformManaged bool
}

// provider is one row of the table: the provisioners it answers to and how it
// judges a class's parameters.
type provider struct {
	name         string
	provisioners []string
	// suffix matches provisioners named "<prefix>.<suffix>", as Rook names Ceph's.
	suffix string
	// off is the parameter that turns encryption on when "true": set to
	// anything else, the class says outright that it does not encrypt.
	off   string
	judge func(params map[string]string, o Options) (bool, string)
}

// paramEncrypted is the parameter EBS, Ceph RBD and Longhorn encrypt by.
const paramEncrypted = "encrypted"

var providers = []provider{
	{name: "AWS EBS", provisioners: []string{"ebs.csi.aws.com", "kubernetes.io/aws-ebs"}, off: paramEncrypted, judge: judgeEBS},
	{name: "GCE PD", provisioners: []string{"pd.csi.storage.gke.io", "kubernetes.io/gce-pd"},
		judge: platformManaged("disk-encryption-kms-key", "Google encrypts every persistent disk at rest with Google-managed keys")},
	{name: "Azure Disk", provisioners: []string{"disk.csi.azure.com", "kubernetes.io/azure-disk"},
		judge: platformManaged("diskEncryptionSetID", "Azure encrypts every managed disk at rest with platform-managed keys (server-side encryption)")},
	{name: "Ceph RBD", provisioners: []string{"rbd.csi.ceph.com"}, suffix: ".rbd.csi.ceph.com", off: paramEncrypted, judge: flag(paramEncrypted)},
	{name: "Longhorn", provisioners: []string{"driver.longhorn.io"}, off: paramEncrypted, judge: flag(paramEncrypted)},
	{name: "Portworx", provisioners: []string{"pxd.portworx.com", "kubernetes.io/portworx-volume"}, off: "secure", judge: flag("secure")},
}

// Classify judges a StorageClass: the phiguard annotation and the allow-list
// first (the cluster knows best what phiguard cannot see), unless the
// provider's own parameters say outright that the class does not encrypt (a
// contradiction is not encrypted, with both facts); then the provider's
// parameters. Unknown provisioners are not encrypted.
func Classify(sc *storagev1.StorageClass, o Options) Verdict {
	p := providerOf(sc.Provisioner)
	params := lowerKeys(sc.Parameters)
	if claim := declared(sc, o); claim != "" {
		if v, set := params[p.off]; p.off != "" && set && !strings.EqualFold(v, "true") {
			return Verdict{Provider: p.name, Reason: fmt.Sprintf(
				"%s, but its %s parameter %s is %q: the class says it does not encrypt; set %s: \"true\" or remove the declaration",
				claim, p.name, p.off, v, p.off)}
		}
		return Verdict{Encrypted: true, Provider: p.name, Reason: claim}
	}
	if p.judge == nil {
		return Verdict{Reason: fmt.Sprintf("provisioner %s is not one phiguard knows to encrypt; if the class is encrypted by other means, annotate it %s=\"true\" or list it in PHIPolicy spec.storage.encryptedStorageClasses",
			sc.Provisioner, EncryptedAnnotation)}
	}
	ok, why := p.judge(params, o)
	return Verdict{Encrypted: ok, Provider: p.name, Reason: p.name + ": " + why}
}

// declared says how the cluster declares the class encrypted by means
// phiguard cannot see, or "" when it does not.
func declared(sc *storagev1.StorageClass, o Options) string {
	switch {
	case strings.EqualFold(sc.Annotations[EncryptedAnnotation], "true"):
		return fmt.Sprintf("annotated %s=\"true\"", EncryptedAnnotation)
	case slices.Contains(o.EncryptedClasses, sc.Name):
		return "listed in PHIPolicy spec.storage.encryptedStorageClasses"
	}
	return ""
}

func providerOf(provisioner string) provider {
	for _, p := range providers {
		if slices.Contains(p.provisioners, provisioner) || (p.suffix != "" && strings.HasSuffix(provisioner, p.suffix)) {
			return p
		}
	}
	return provider{}
}

// lowerKeys makes parameter names case-insensitive, as the Azure and GCE
// drivers treat them.
func lowerKeys(params map[string]string) map[string]string {
	out := make(map[string]string, len(params))
	for k, v := range params {
		out[strings.ToLower(k)] = v
	}
	return out
}

// judgeEBS: EBS encrypts only with encrypted "true"; kmsKeyId picks the key
// and is ignored without it.
func judgeEBS(params map[string]string, _ Options) (bool, string) {
	key := params["kmskeyid"]
	switch {
	case strings.EqualFold(params["encrypted"], "true") && key != "":
		return true, "parameter encrypted=\"true\" with kmsKeyId " + key
	case strings.EqualFold(params["encrypted"], "true"):
		return true, "parameter encrypted=\"true\" (the region's default KMS key)"
	case key != "":
		return false, "kmsKeyId is set but encrypted is not \"true\", and the driver uses the key only when it is; set encrypted: \"true\""
	default:
		return false, "parameter encrypted is not \"true\"; set encrypted: \"true\""
	}
}

// flag judges providers that encrypt when one parameter is "true".
func flag(param string) func(map[string]string, Options) (bool, string) {
	return func(params map[string]string, _ Options) (bool, string) {
		if strings.EqualFold(params[strings.ToLower(param)], "true") {
			return true, fmt.Sprintf("parameter %s=\"true\"", param)
		}
		return false, fmt.Sprintf("parameter %s is not \"true\"; set %s: \"true\"", param, param)
	}
}

// platformManaged judges providers that encrypt every disk with platform keys
// and take a customer-managed key in one parameter. Whether platform keys are
// enough is the PHIPolicy's call (spec.storage.platformManagedEncryption).
func platformManaged(param, always string) func(map[string]string, Options) (bool, string) {
	return func(params map[string]string, o Options) (bool, string) {
		if key := params[strings.ToLower(param)]; key != "" {
			return true, fmt.Sprintf("customer-managed key in parameter %s (%s)", param, key)
		}
		if o.RejectPlatformManaged {
			return false, fmt.Sprintf("no customer-managed key (parameter %s), and PHIPolicy spec.storage.platformManagedEncryption is Reject", param)
		}
		return true, always + "; no customer-managed key (parameter " + param + ")"
	}
}

// IsDefault says whether the class is marked as the cluster's default.
func IsDefault(sc *storagev1.StorageClass) bool {
	return sc.Annotations[defaultClassAnnotation] == "true" || sc.Annotations[defaultClassBetaAnnotation] == "true"
}

// ClassName resolves the class a claim asks for, as the apiserver does: a nil
// storageClassName means the default class (the newest one when several are
// marked default); "" means no class at all. ok is false when there is none.
func ClassName(claim *corev1.PersistentVolumeClaimSpec, classes []storagev1.StorageClass) (name string, ok bool) {
	if claim.StorageClassName != nil {
		return *claim.StorageClassName, *claim.StorageClassName != ""
	}
	var newest *storagev1.StorageClass
	for i := range classes {
		sc := &classes[i]
		if !IsDefault(sc) {
			continue
		}
		if newest == nil || sc.CreationTimestamp.After(newest.CreationTimestamp.Time) ||
			(sc.CreationTimestamp.Equal(&newest.CreationTimestamp) && sc.Name < newest.Name) {
			newest = sc
		}
	}
	if newest == nil {
		return "", false
	}
	return newest.Name, true
}

// Judge resolves a claim's class and classifies it. The reason names the class.
func Judge(claim *corev1.PersistentVolumeClaimSpec, classes []storagev1.StorageClass, o Options) (class string, v Verdict) {
	name, ok := ClassName(claim, classes)
	switch {
	case !ok && claim.StorageClassName != nil:
		return "", Verdict{Reason: "storageClassName is \"\": the claim binds a pre-provisioned volume whose encryption phiguard cannot see; name an encrypted StorageClass"}
	case !ok:
		return "", Verdict{Reason: "no storageClassName and the cluster has no default StorageClass; name an encrypted StorageClass"}
	}
	for i := range classes {
		if classes[i].Name == name {
			return name, Classify(&classes[i], o)
		}
	}
	return name, Verdict{Reason: fmt.Sprintf("StorageClass %s does not exist", name)}
}

// Encrypted returns the names of the classes that encrypt, sorted.
func Encrypted(classes []storagev1.StorageClass, o Options) []string {
	var out []string
	for i := range classes {
		if Classify(&classes[i], o).Encrypted {
			out = append(out, classes[i].Name)
		}
	}
	slices.Sort(out)
	return out
}
