package safeguard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/storageclass"
)

// The webhook configurations below are generated into config/webhook by
// `make manifests`. Choices, one by one:
//   - failurePolicy=ignore: the webhook sees every claim in the cluster, and an
//     outage of phiguard must not stop every namespace from creating volumes. A
//     claim admitted while phiguard is down is still caught: EncryptedAtRest
//     reports it on the PHIWorkload's status.
//   - timeoutSeconds=5: the decision reads only the manager's cache; five
//     seconds is ample, and a hung webhook must not hold a create for 30.
//   - sideEffects=None: deciding writes nothing.
//   - verbs: claims only on create (their class cannot change afterwards);
//     StatefulSets on create and update (their claim templates can change).
//   - namespaces: config/webhook's kustomization adds a namespaceSelector that
//     skips kube-system and phiguard's own namespace; the handlers skip them
//     too, and every namespace no PHIWorkload covers.

// +kubebuilder:webhook:path=/validate--v1-persistentvolumeclaim,mutating=false,failurePolicy=ignore,sideEffects=None,groups="",resources=persistentvolumeclaims,verbs=create,versions=v1,name=vpersistentvolumeclaim.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-apps-v1-statefulset,mutating=false,failurePolicy=ignore,sideEffects=None,groups=apps,resources=statefulsets,verbs=create;update,versions=v1,name=vstatefulset.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// encryptionAdmission decides whether new volume claims may be created:
// denied in namespaces where a PHIWorkload in Enforce mode covers them and
// their StorageClass does not encrypt, allowed with a warning under Audit.
type encryptionAdmission struct {
	AdmissionEnv
}

// SetupWebhooks implements Admitter: the claim and StatefulSet validators.
func (EncryptionAtRest) SetupWebhooks(mgr ctrl.Manager, env AdmissionEnv) error {
	e := &encryptionAdmission{env}
	if err := ctrl.NewWebhookManagedBy(mgr, &corev1.PersistentVolumeClaim{}).WithValidator(claimValidator{e}).Complete(); err != nil {
		return fmt.Errorf("registering the PersistentVolumeClaim webhook: %w", err)
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &appsv1.StatefulSet{}).WithValidator(statefulSetValidator{e}).Complete(); err != nil {
		return fmt.Errorf("registering the StatefulSet webhook: %w", err)
	}
	return nil
}

// claimCovered says whether a PHIWorkload's selector covers a claim: the claim
// carries the selected labels (claims a StatefulSet creates carry its
// selector's), or a selected pod already mounts it.
func (e *encryptionAdmission) claimCovered(ctx context.Context, pvc *corev1.PersistentVolumeClaim) func(labels.Selector) (bool, error) {
	return func(sel labels.Selector) (bool, error) {
		if sel.Matches(labels.Set(pvc.Labels)) {
			return true, nil
		}
		// Read only (claim names): the cache's own objects, not copies.
		var pods corev1.PodList
		if err := e.Reader.List(ctx, &pods, client.InNamespace(pvc.Namespace), client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy); err != nil {
			return false, fmt.Errorf("listing pods in %s: %w", pvc.Namespace, err)
		}
		return mountsClaim(pods.Items, pvc.Name), nil
	}
}

// judge decides claims against a cover: nil when all are encrypted; otherwise
// the denial (Enforce) or warnings (Audit). subject names the object ("PersistentVolumeClaim data").
func (e *encryptionAdmission) judge(ctx context.Context, c cover, subject string, claims map[string]*corev1.PersistentVolumeClaimSpec) (admission.Warnings, error) {
	// Read only (storageclass.Judge): the cache's own objects, not copies.
	var classes storagev1.StorageClassList
	if err := e.Reader.List(ctx, &classes, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing StorageClasses: %w", err)
	}
	opts := StorageOptions(c.policy)
	names := make([]string, 0, len(claims))
	for name := range claims {
		names = append(names, name)
	}
	slices.Sort(names)
	var problems []string
	for _, name := range names {
		class, v := storageclass.Judge(claims[name], classes.Items, opts)
		if v.Encrypted {
			continue
		}
		if class == "" {
			problems = append(problems, fmt.Sprintf("claim %s: %s", name, v.Reason))
			continue
		}
		problems = append(problems, fmt.Sprintf("claim %s: StorageClass %s is not encrypted (%s)", name, class, v.Reason))
	}
	if len(problems) == 0 {
		return nil, nil
	}
	fix := "no StorageClass in the cluster is encrypted: create one (for example with encrypted: \"true\" on EBS) or annotate an encrypted class " + storageclass.EncryptedAnnotation + "=\"true\""
	if enc := storageclass.Encrypted(classes.Items, opts); len(enc) > 0 {
		fix = "use an encrypted StorageClass: " + strings.Join(enc, ", ")
	}
	msg := fmt.Sprintf("%s would keep ePHI unencrypted at rest: %s. PHIWorkload %s/%s requires encryption at rest (HIPAA §164.312(a)(2)(iv), encryptionAtRest.mode %s); %s",
		subject, strings.Join(problems, "; "), c.workload.Namespace, c.workload.Name, c.mode, fix)
	if c.mode == phiguardv1alpha1.ModeAudit {
		warnings := admission.Warnings{"phiguard (Audit, allowed): " + msg}
		e.Record(ctx, c.workload, nil, warnings)
		return warnings, nil
	}
	err := errors.New(msg)
	e.Record(ctx, c.workload, err, nil)
	return nil, err
}

type claimValidator struct{ *encryptionAdmission }

func (v claimValidator) ValidateCreate(ctx context.Context, pvc *corev1.PersistentVolumeClaim) (admission.Warnings, error) {
	c, ok, err := v.coverage(ctx, pvc.Namespace, phiguardv1alpha1.EncryptedAtRest, v.claimCovered(ctx, pvc))
	if err != nil || !ok {
		return nil, err
	}
	return v.judge(ctx, c, "PersistentVolumeClaim "+pvc.Name, map[string]*corev1.PersistentVolumeClaimSpec{pvc.Name: &pvc.Spec})
}

func (v claimValidator) ValidateUpdate(context.Context, *corev1.PersistentVolumeClaim, *corev1.PersistentVolumeClaim) (admission.Warnings, error) {
	return nil, nil // a claim's class cannot change after creation
}

func (v claimValidator) ValidateDelete(context.Context, *corev1.PersistentVolumeClaim) (admission.Warnings, error) {
	return nil, nil
}

type statefulSetValidator struct{ *encryptionAdmission }

func (v statefulSetValidator) ValidateCreate(ctx context.Context, sts *appsv1.StatefulSet) (admission.Warnings, error) {
	if len(sts.Spec.VolumeClaimTemplates) == 0 {
		return nil, nil
	}
	c, ok, err := v.coverage(ctx, sts.Namespace, phiguardv1alpha1.EncryptedAtRest, func(sel labels.Selector) (bool, error) {
		return sel.Matches(labels.Set(sts.Spec.Template.Labels)), nil
	})
	if err != nil || !ok {
		return nil, err
	}
	claims := make(map[string]*corev1.PersistentVolumeClaimSpec, len(sts.Spec.VolumeClaimTemplates))
	for i := range sts.Spec.VolumeClaimTemplates {
		t := &sts.Spec.VolumeClaimTemplates[i]
		claims[t.Name] = &t.Spec
	}
	return v.judge(ctx, c, "StatefulSet "+sts.Name, claims)
}

func (v statefulSetValidator) ValidateUpdate(ctx context.Context, _, sts *appsv1.StatefulSet) (admission.Warnings, error) {
	return v.ValidateCreate(ctx, sts)
}

func (v statefulSetValidator) ValidateDelete(context.Context, *appsv1.StatefulSet) (admission.Warnings, error) {
	return nil, nil
}
