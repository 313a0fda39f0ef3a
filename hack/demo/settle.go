package main

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// unsettled says, for each workload whose status does not yet describe its
// current spec in full, what is missing; it is empty once all have settled. A
// workload settles when status.observedGeneration equals metadata.generation
// and it has a condition for every safeguard and Ready. Every expected workload
// must be in the list.
func unsettled(list []phiguardv1alpha1.PHIWorkload, expected []types.NamespacedName) []string {
	var out []string
	seen := make(map[types.NamespacedName]bool, len(list))
	for i := range list {
		w := &list[i]
		key := types.NamespacedName{Namespace: w.Namespace, Name: w.Name}
		seen[key] = true
		if why := notSettled(w); why != "" {
			out = append(out, key.String()+": "+why)
		}
	}
	for _, key := range expected {
		if !seen[key] {
			out = append(out, key.String()+": not found")
		}
	}
	return out
}

// notReady says, for each of the workloads in ready that is not Ready=True,
// what its Ready condition says fails.
func notReady(list []phiguardv1alpha1.PHIWorkload, ready []types.NamespacedName) []string {
	return whyNot(list, ready, func(w *phiguardv1alpha1.PHIWorkload) string {
		c := meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition)
		switch {
		case c == nil:
			return "meets every safeguard in the samples, but is not Ready (no Ready condition)"
		case c.Status != metav1.ConditionTrue:
			return "meets every safeguard in the samples, but is not Ready (" + c.Message + ")"
		}
		return ""
	})
}

// notDrilled says, for each of the workloads in ready, whether its backups
// are not yet proven: the demo's PHIPolicy runs a restore drill as soon as
// a backup has completed, and BackupScheduled says RestoreVerified once one
// passed.
func notDrilled(list []phiguardv1alpha1.PHIWorkload, ready []types.NamespacedName) []string {
	return whyNot(list, ready, func(w *phiguardv1alpha1.PHIWorkload) string {
		c := meta.FindStatusCondition(w.Status.Conditions, string(phiguardv1alpha1.BackupScheduled))
		switch {
		case c == nil:
			return "no restore drill verified yet (no BackupScheduled condition)"
		case c.Reason != phiguardv1alpha1.ReasonRestoreVerified:
			return "no restore drill verified yet (" + c.Reason + ": " + c.Message + ")"
		}
		return ""
	})
}

// drillPending says, for each of the workloads in keys, whether its first
// restore drill has not yet ended: the demo takes every sample's first
// backup, and shows how each drill ended.
func drillPending(list []phiguardv1alpha1.PHIWorkload, keys []types.NamespacedName) []string {
	return whyNot(list, keys, func(w *phiguardv1alpha1.PHIWorkload) string {
		c := meta.FindStatusCondition(w.Status.Conditions, string(phiguardv1alpha1.BackupScheduled))
		if c != nil && (c.Reason == phiguardv1alpha1.ReasonRestoreVerified || c.Reason == phiguardv1alpha1.ReasonRestoreFailed) {
			return ""
		}
		return "its first restore drill has not ended"
	})
}

// whyNot applies check to each of the workloads in keys found in list and
// returns what it says, prefixed by the workload, for those it finds wanting.
func whyNot(list []phiguardv1alpha1.PHIWorkload, keys []types.NamespacedName, check func(*phiguardv1alpha1.PHIWorkload) string) []string {
	var out []string
	for _, key := range keys {
		for i := range list {
			if w := &list[i]; w.Namespace == key.Namespace && w.Name == key.Name {
				if why := check(w); why != "" {
					out = append(out, key.String()+": "+why)
				}
			}
		}
	}
	return out
}

// notSettled says what the workload's status lacks, or "" when it has settled.
func notSettled(w *phiguardv1alpha1.PHIWorkload) string {
	var why []string
	if w.Status.ObservedGeneration != w.Generation {
		why = append(why, fmt.Sprintf("status.observedGeneration is %d, metadata.generation %d",
			w.Status.ObservedGeneration, w.Generation))
	}
	var missing []string
	for _, typ := range settledConditions() {
		if meta.FindStatusCondition(w.Status.Conditions, typ) == nil {
			missing = append(missing, typ)
		}
	}
	if len(missing) > 0 {
		why = append(why, "no condition "+strings.Join(missing, ", "))
	}
	// Pods started before their workload are being restarted with the
	// sidecar (restartNonCompliant): wait for the new ones.
	if c := meta.FindStatusCondition(w.Status.Conditions, string(phiguardv1alpha1.AuditLogging)); c != nil &&
		c.Reason == phiguardv1alpha1.ReasonPodsWithoutSidecar && w.Status.MatchedPods > 0 {
		why = append(why, "pods without the audit sidecar are being restarted")
	}
	return strings.Join(why, "; ")
}

// settledConditions are the condition types of a fully evaluated workload.
func settledConditions() []string {
	out := make([]string, 0, len(safeguard.New(safeguard.Options{}).Names())+1)
	for _, name := range safeguard.New(safeguard.Options{}).Names() {
		out = append(out, string(name))
	}
	return append(out, phiguardv1alpha1.ReadyCondition)
}

// stalled returns an error for the first workload whose current spec the
// controller reports it cannot act on: such a workload never settles.
func stalled(list []phiguardv1alpha1.PHIWorkload) error {
	for i := range list {
		w := &list[i]
		c := meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.StalledCondition)
		if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == w.Generation {
			return fmt.Errorf("PHIWorkload %s/%s is Stalled (%s): %s", w.Namespace, w.Name, c.Reason, c.Message)
		}
	}
	return nil
}
