package safeguard

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Scope is everything one reconcile of a PHIWorkload reads, resolved once
// before any safeguard runs. Safeguards read it and never list the cluster
// themselves; they write only through Client, and only in Enforce mode.
type Scope struct {
	// Workload is the PHIWorkload being reconciled. Safeguards must not modify it.
	Workload *phiguardv1alpha1.PHIWorkload

	// Policy is the PHIPolicy named "default"; nil when none exists.
	Policy *phiguardv1alpha1.PHIPolicy

	// Settings are the effective settings: the workload's own, then the policy's,
	// then the built-in defaults, merged field by field. Every mode is set.
	Settings phiguardv1alpha1.SafeguardSettings

	// ModeSources says where each safeguard's effective mode came from.
	ModeSources map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.SettingSource

	// Selector is the workload's spec.selector, parsed.
	Selector labels.Selector

	// Pods are the pods in the workload's namespace that Selector matches,
	// excluding pods already being deleted. Read from the cache.
	Pods []corev1.Pod

	// NetworkPolicies are all NetworkPolicies in the workload's namespace, the
	// ones phiguard owns and the hand-written ones. Read from the cache.
	NetworkPolicies []networkingv1.NetworkPolicy

	// Claims are the PersistentVolumeClaims in the workload's namespace. Read
	// from the cache.
	Claims []corev1.PersistentVolumeClaim

	// StorageClasses are the cluster's StorageClasses. Read from the cache.
	StorageClasses []storagev1.StorageClass

	// Velero holds Velero's Schedules, Backups and BackupStorageLocations in
	// the effective Velero namespace; nil when Velero's CRDs are not installed.
	Velero *Velero
	// VeleroPending means Velero's CRDs exist but the apiserver does not serve
	// their kinds yet (Velero == nil): look again shortly.
	VeleroPending bool

	// Now is the time this reconcile evaluates decisions and ages against.
	Now time.Time

	// Client writes what a safeguard acts on (server-side apply, field owner
	// "phiguard", for objects it owns) and reads, from the cache, the single
	// objects it must act on (a pod's owning Deployment). Lists go through the
	// fields above.
	Client client.Client
}

// Mode returns the effective mode of a safeguard.
func (s *Scope) Mode(name phiguardv1alpha1.SafeguardName) phiguardv1alpha1.Mode {
	return s.Settings.Mode(name)
}
