package safeguard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/storageclass"
)

// EncryptionAtRest reports whether the volumes of the selected pods are
// encrypted at rest (HIPAA §164.312(a)(2)(iv), Addressable). It changes
// nothing: in Enforce mode the admission webhook keeps new unencrypted claims
// out; existing ones can only be reported, as a volume cannot change class.
type EncryptionAtRest struct{}

// What EncryptionAtRest reads and watches.
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get;list;watch
// +kubebuilder:rbac:groups=storage.k8s.io,resources=storageclasses,verbs=get;list;watch

// Both are only read (storageclass.Judge), so Shared.
var (
	// Claims are the PersistentVolumeClaims in the workload's namespace.
	Claims = ListIn("PersistentVolumeClaims", Shared, func(l *corev1.PersistentVolumeClaimList) []corev1.PersistentVolumeClaim { return l.Items })
	// StorageClasses are the cluster's StorageClasses.
	StorageClasses = &InputOf[[]storagev1.StorageClass]{Name: "StorageClasses", Sharing: Shared,
		Read: func(ctx context.Context, r client.Reader, _ *Scope) ([]storagev1.StorageClass, error) {
			var list storagev1.StorageClassList
			if err := r.List(ctx, &list); err != nil {
				return nil, fmt.Errorf("listing StorageClasses: %w", err)
			}
			return list.Items, nil
		}}
)

// Name implements Safeguard.
func (EncryptionAtRest) Name() phiguardv1alpha1.SafeguardName {
	return phiguardv1alpha1.EncryptedAtRest
}

// Rule implements Safeguard.
func (EncryptionAtRest) Rule() Rule {
	// Proposed: §164.312(b), encryption and decryption, a standard of its own
	// whose (b)(2) asks to encrypt all ePHI at rest and in transit.
	return Rule{Section: "§164.312(a)(2)(iv)", Specification: phiguardv1alpha1.Addressable,
		ProposedSection: "§164.312(b)",
		Summary:         "ePHI volumes use encrypted StorageClasses"}
}

// Defaults implements Safeguard: Enforce.
func (EncryptionAtRest) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.EncryptionAtRest = &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeEnforce}
}

// Inputs implements Reader.
func (EncryptionAtRest) Inputs() []Input { return []Input{Claims, StorageClasses} }

// Watches implements Watcher. Claims are few per namespace and classes change
// rarely, so each maps to every workload it could affect.
func (EncryptionAtRest) Watches() []Watch {
	return []Watch{
		{Object: &corev1.PersistentVolumeClaim{},
			Map: func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
				return w.In(ctx, obj.GetNamespace())
			}},
		{Object: &storagev1.StorageClass{},
			Map: func(ctx context.Context, w Workloads, _ client.Object) []reconcile.Request { return w.In(ctx, "") }},
	}
}

// Reconcile implements Safeguard.
func (EncryptionAtRest) Reconcile(_ context.Context, s *Scope) Result {
	claims := ClaimNames(s.Pods)
	opts := StorageOptions(s.Policy)
	var unencrypted, missing []string
	for _, name := range claims {
		pvc := byName(Claims.Get(s), name)
		if pvc == nil {
			missing = append(missing, name)
			continue
		}
		class, v := storageclass.Judge(&pvc.Spec, StorageClasses.Get(s), opts)
		if !v.Encrypted {
			unencrypted = append(unencrypted, describeClaim(name, class, v))
		}
	}
	hostPaths := hostPathVolumes(s.Pods)
	// Each problem found is named, the worst first; the reason is the worst's.
	var problems []string
	reason := ""
	if len(unencrypted) > 0 {
		reason = phiguardv1alpha1.ReasonUnencryptedVolumes
		problems = append(problems, fmt.Sprintf("%d of %d persistent volume claims are not encrypted at rest: %s; move the data to a claim of an encrypted StorageClass (%s)",
			len(unencrypted), len(claims)-len(missing), strings.Join(named(unencrypted), "; "), availableClasses(s, opts)))
	}
	if len(hostPaths) > 0 {
		reason = cmp.Or(reason, phiguardv1alpha1.ReasonHostPathVolume)
		problems = append(problems, fmt.Sprintf("%d hostPath volumes put data on the node's disk, outside any StorageClass: %s; use a claim of an encrypted StorageClass",
			len(hostPaths), strings.Join(named(hostPaths), ", ")))
	}
	if len(missing) > 0 {
		reason = cmp.Or(reason, phiguardv1alpha1.ReasonClaimMissing)
		problems = append(problems, fmt.Sprintf("%d claims the pods mount do not exist, so their class cannot be judged: %s",
			len(missing), strings.Join(named(missing), ", ")))
	}
	if reason != "" {
		return Result{Status: metav1.ConditionFalse, Reason: reason, Message: strings.Join(problems, "; and ")}
	}
	return NoPods(s, Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonAllVolumesEncrypted,
		Message: fmt.Sprintf("all %d persistent volume claims of the %d selected pods use encrypted StorageClasses, and no pod mounts a hostPath volume",
			len(claims), len(s.Pods))})
}

// hostPathVolumes names the hostPath volumes of the pods, as "pod/volume (path)", sorted.
func hostPathVolumes(pods []corev1.Pod) []string {
	var out []string
	for i := range pods {
		for _, v := range pods[i].Spec.Volumes {
			if v.HostPath != nil {
				out = append(out, fmt.Sprintf("%s/%s (%s)", pods[i].Name, v.Name, v.HostPath.Path))
			}
		}
	}
	slices.Sort(out)
	return out
}

// ClaimNames lists the claims the pods mount, by name, sorted: persistentVolumeClaim
// volumes (as StatefulSets' claim templates become) and generic ephemeral volumes,
// whose claim is named <pod>-<volume>.
func ClaimNames(pods []corev1.Pod) []string {
	var out []string
	for i := range pods {
		for j := range pods[i].Spec.Volumes {
			if name, ok := volumeClaim(&pods[i], &pods[i].Spec.Volumes[j]); ok {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mountsClaim says whether one of the pods mounts the claim named claim, as
// ClaimNames names claims, without building the list.
func mountsClaim(pods []corev1.Pod, claim string) bool {
	for i := range pods {
		for j := range pods[i].Spec.Volumes {
			if name, ok := volumeClaim(&pods[i], &pods[i].Spec.Volumes[j]); ok && name == claim {
				return true
			}
		}
	}
	return false
}

// volumeClaim names the claim a pod's volume mounts: a persistentVolumeClaim
// volume's own, a generic ephemeral volume's <pod>-<volume>; ok is false for
// other volumes.
func volumeClaim(pod *corev1.Pod, v *corev1.Volume) (name string, ok bool) {
	switch {
	case v.PersistentVolumeClaim != nil:
		return v.PersistentVolumeClaim.ClaimName, true
	case v.Ephemeral != nil:
		return pod.Name + "-" + v.Name, true
	}
	return "", false
}

// StorageOptions reads the cluster's storage facts from the PHIPolicy.
func StorageOptions(policy *phiguardv1alpha1.PHIPolicy) storageclass.Options {
	if policy == nil || policy.Spec.Storage == nil {
		return storageclass.Options{}
	}
	return storageclass.Options{
		EncryptedClasses:      policy.Spec.Storage.EncryptedStorageClasses,
		RejectPlatformManaged: policy.Spec.Storage.PlatformManagedEncryption == phiguardv1alpha1.PlatformManagedReject,
	}
}

func describeClaim(name, class string, v storageclass.Verdict) string {
	if class == "" {
		return fmt.Sprintf("%s (%s)", name, v.Reason)
	}
	return fmt.Sprintf("%s (class %s: %s)", name, class, v.Reason)
}

func availableClasses(s *Scope, opts storageclass.Options) string {
	if enc := storageclass.Encrypted(StorageClasses.Get(s), opts); len(enc) > 0 {
		return "encrypted classes: " + strings.Join(enc, ", ")
	}
	return "no StorageClass in the cluster is encrypted yet"
}

// named keeps the first maxNamed items and counts the rest.
func named(items []string) []string {
	if len(items) <= maxNamed {
		return items
	}
	return append(items[:maxNamed:maxNamed], fmt.Sprintf("and %d more", len(items)-maxNamed))
}
