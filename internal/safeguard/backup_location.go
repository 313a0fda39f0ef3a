package safeguard

import (
	"context"
	"fmt"
	"time"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/objectlock"
)

// LocationChecker judges whether a BackupStorageLocation's bucket keeps
// backups immutable for ttl (objectlock.Checker, which reuses its answers).
type LocationChecker interface {
	Check(ctx context.Context, bsl *velerov1.BackupStorageLocation, creds objectlock.Credentials, ttl time.Duration) (objectlock.Verdict, error)
}

// immutabilityRecheck is how soon a location's bucket is judged again: the
// checker's answers are reused about this long.
const immutabilityRecheck = 10 * time.Minute

// The Secret named by PHIPolicy backup.locationCredentials is read from the
// cache, which holds Secrets of phiguard's own namespace only (see the
// manager's cache options).
// +kubebuilder:rbac:groups="",namespace=phiguard-system,resources=secrets,verbs=get;list;watch

// locationVerdict is phiguard's verdict on one property of a
// BackupStorageLocation (its encryption at rest, its immutability).
type locationVerdict struct {
	status  metav1.ConditionStatus
	reason  string
	message string
	// requeue, when set, is how soon to judge again.
	requeue time.Duration
}

// immutability judges whether the location's bucket keeps a backup from
// being deleted or overwritten before its ttl, with the read-only
// credentials PHIPolicy backup.locationCredentials names. Without them,
// the verdict is True and says that immutability was not checked: phiguard
// cannot see it, and reports so in the message, without failing backups
// that are otherwise held. Credentials that cannot be read, or a bucket that
// cannot be, are Unknown.
func (b BackupScheduling) immutability(ctx context.Context, s *Scope, bsl *velerov1.BackupStorageLocation) locationVerdict {
	ref := s.Policy.LocationCredentials()
	switch {
	case ref == nil:
		return locationVerdict{status: metav1.ConditionTrue, message: fmt.Sprintf("immutability of BackupStorageLocation %s not checked: "+
			"PHIPolicy %s names no backup.locationCredentials (a Secret in phiguard's namespace with read-only S3 credentials: %s)",
			bsl.Name, phiguardv1alpha1.DefaultPolicyName, objectlock.Permissions)}
	case b.Locations == nil:
		return locationVerdict{status: metav1.ConditionTrue, message: fmt.Sprintf("immutability of BackupStorageLocation %s not checked: "+
			"this phiguard runs no location checker", bsl.Name)}
	}
	unknown := func(format string, args ...any) locationVerdict {
		return locationVerdict{status: metav1.ConditionUnknown, reason: phiguardv1alpha1.ReasonStorageImmutabilityUnknown,
			message: fmt.Sprintf(format, args...), requeue: time.Minute}
	}
	var secret corev1.Secret
	key := types.NamespacedName{Namespace: b.Namespace, Name: ref.Name}
	if err := s.Client.Get(ctx, key, &secret); apierrors.IsNotFound(err) {
		return unknown("cannot check whether BackupStorageLocation %s is immutable: the Secret %s named by PHIPolicy backup.locationCredentials does not exist", bsl.Name, key)
	} else if err != nil {
		return unknown("cannot check whether BackupStorageLocation %s is immutable: reading the Secret %s: %v", bsl.Name, key, err)
	}
	creds, err := objectlock.CredentialsFromSecret(&secret)
	if err != nil {
		return unknown("cannot check whether BackupStorageLocation %s is immutable: %v", bsl.Name, err)
	}
	verdict, err := b.Locations.Check(ctx, bsl, creds, s.Settings.Backup.TTL.Duration)
	if err != nil {
		return unknown("cannot check whether BackupStorageLocation %s is immutable: %v", bsl.Name, err)
	}
	if !verdict.Immutable {
		return locationVerdict{status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonStorageLocationMutable,
			message: fmt.Sprintf("BackupStorageLocation %s is not immutable: %s", bsl.Name, verdict.Message), requeue: immutabilityRecheck}
	}
	return locationVerdict{status: metav1.ConditionTrue, message: fmt.Sprintf("BackupStorageLocation %s is immutable: %s", bsl.Name, verdict.Message),
		requeue: immutabilityRecheck}
}

// overlay applies a location verdict to the freshness result: a location
// that fails fails the safeguard whatever the backups' age; one phiguard
// cannot judge keeps a fresh backup from counting as held.
func (v locationVerdict) overlay(r Result) Result {
	r.Message += "; " + v.message
	switch {
	case v.status == metav1.ConditionFalse && r.Status != metav1.ConditionFalse:
		r.Status, r.Reason, r.RequeueAfter = metav1.ConditionFalse, v.reason, 0
	case v.status == metav1.ConditionUnknown && r.Status == metav1.ConditionTrue:
		r.Status, r.Reason = metav1.ConditionUnknown, v.reason
	}
	if v.requeue > 0 && (r.RequeueAfter == 0 || v.requeue < r.RequeueAfter) {
		r.RequeueAfter = v.requeue
	}
	return r
}
