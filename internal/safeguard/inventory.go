package safeguard

import (
	"cmp"
	"context"
	"slices"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	rbacauthorizer "k8s.io/kubernetes/plugin/pkg/auth/authorizer/rbac"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// What kubectl phiguard's risk analysis and asset inventory read of the
// safeguards' own judgments, so that the report and the conditions never
// disagree about which Service serves a pod, which Schedule backs a workload
// up or who may reach inside its pods.

// ReachAccess is one subject RBAC allows to reach inside a namespace's pods,
// and how.
type ReachAccess struct {
	// Subject is "Group system:masters", "User alice" or "ServiceAccount ns/name".
	Subject string
	// Via are the subresources it may use, in this order: exec, attach,
	// portforward, ephemeralcontainers.
	Via []string
}

// ReachInsideBy is ReachInside with the ways in: every subject RBAC allows to
// exec into, attach to, port-forward to or add ephemeral containers to pods
// of namespace, sorted by subject, each with the subresources it may use.
func ReachInsideBy(ctx context.Context, o *RBACObjects, namespace string) []ReachAccess {
	x := newRBACIndex(o)
	locator := rbacauthorizer.NewSubjectAccessEvaluator(x, x, x, x, "")
	via := map[string][]string{}
	for _, req := range reachRequests {
		req.Namespace = namespace
		subjects, _ := locator.AllowedSubjects(ctx, req) // an error is a missing role: it grants nothing
		for _, s := range subjects {
			name := s.Kind + " " + s.Name
			if s.Kind == rbacv1.ServiceAccountKind {
				name = s.Kind + " " + cmp.Or(s.Namespace, namespace) + "/" + s.Name
			}
			if !slices.Contains(via[name], req.Subresource) {
				via[name] = append(via[name], req.Subresource)
			}
		}
	}
	out := make([]ReachAccess, 0, len(via))
	for _, name := range sortedKeys(via) {
		out = append(out, ReachAccess{Subject: name, Via: via[name]})
	}
	return out
}

// PodServiceAccount names the ServiceAccount a pod spec runs as, as
// AccessControlled judges it: spec.serviceAccountName, else the namespace's
// default.
func PodServiceAccount(spec *corev1.PodSpec) string {
	return podServiceAccount(spec)
}

// ServicePods returns the names of the pods among pods that a Service
// selects, as TransmissionSecure finds the Services in front of a workload
// (none for a Service without a selector).
func ServicePods(svc *corev1.Service, pods []corev1.Pod) []string {
	return selectedBy(svc, pods)
}

// HostPathVolumes names the pods' hostPath volumes, as EncryptedAtRest
// reports them: "pod/volume (path)", sorted.
func HostPathVolumes(pods []corev1.Pod) []string {
	return hostPathVolumes(pods)
}

// WorkloadBackup finds, as BackupScheduled does, the Velero Schedule that
// backs up a workload (phiguard's own when it keeps one, else any Schedule
// covering its namespace and selector) and the BackupStorageLocation it
// writes to. problem says what is missing when either is nil; v may be nil
// (Velero's API is not served).
func WorkloadBackup(w *phiguardv1alpha1.PHIWorkload, v *Velero) (sched *velerov1.Schedule, bsl *velerov1.BackupStorageLocation, problem string) {
	switch {
	case v == nil:
		return nil, nil, "Velero is not installed (no velero.io CRDs)"
	case v.NamespaceMissing:
		return nil, nil, "Velero's CRDs are installed but its namespace does not exist"
	}
	if i := slices.IndexFunc(v.Schedules, func(sc velerov1.Schedule) bool { return Keeps(&sc, w) }); i >= 0 {
		sched = &v.Schedules[i]
	} else if sched = coveringSchedule(w, v.Schedules); sched == nil {
		return nil, nil, "no Velero Schedule backs up namespace " + w.Namespace + " with the workload's pods"
	}
	bsl, problem = storageLocation(v.StorageLocations, sched.Spec.Template.StorageLocation)
	return sched, bsl, problem
}
