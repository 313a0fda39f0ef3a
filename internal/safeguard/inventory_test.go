package safeguard

import (
	"testing"

	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func TestReachInsideBy(t *testing.T) {
	g := NewWithT(t)
	o := clinicRBAC()
	o.Roles = append(o.Roles, rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "port-forward"},
		Rules: []rbacv1.PolicyRule{rule(list("create"), list(""), list("pods/portforward"))}})
	o.RoleBindings = append(o.RoleBindings, rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "tunnel"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "port-forward"},
		Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "tunnel"}}})

	reach := ReachInsideBy(t.Context(), &o, "clinic")
	subjects := make([]string, 0, len(reach))
	for _, r := range reach {
		subjects = append(subjects, r.Subject)
	}
	g.Expect(subjects).To(Equal(ReachInside(t.Context(), &o, "clinic")), "the same subjects as ReachInside")
	g.Expect(reach).To(ContainElements(
		ReachAccess{Subject: "Group system:masters", Via: []string{"exec", "attach", "portforward", "ephemeralcontainers"}},
		ReachAccess{Subject: "ServiceAccount clinic/tunnel", Via: []string{"portforward"}},
	))
}

func TestWorkloadBackup(t *testing.T) {
	g := NewWithT(t)
	w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records", "tier": "db"}}}}
	everything := velerov1.Schedule{ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: "a-everything"},
		Spec: velerov1.ScheduleSpec{Template: velerov1.BackupSpec{StorageLocation: "offsite"}}}
	own := velerov1.Schedule{ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: ScheduleName(w), Labels: ScheduleLabels(w)}}
	locations := []velerov1.BackupStorageLocation{
		{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: velerov1.BackupStorageLocationSpec{Default: true}},
		{ObjectMeta: metav1.ObjectMeta{Name: "offsite"}},
	}

	sched, bsl, problem := WorkloadBackup(w, &Velero{Schedules: []velerov1.Schedule{everything, own}, StorageLocations: locations})
	g.Expect(problem).To(BeEmpty())
	g.Expect(sched.Name).To(Equal(own.Name), "phiguard's own Schedule first")
	g.Expect(bsl.Name).To(Equal("default"), "a Schedule naming no location writes to Velero's default")

	sched, bsl, _ = WorkloadBackup(w, &Velero{Schedules: []velerov1.Schedule{everything}, StorageLocations: locations})
	g.Expect(sched.Name).To(Equal("a-everything"), "else any Schedule covering the namespace")
	g.Expect(bsl.Name).To(Equal("offsite"))

	_, bsl, problem = WorkloadBackup(w, &Velero{Schedules: []velerov1.Schedule{everything}})
	g.Expect(bsl).To(BeNil())
	g.Expect(problem).To(ContainSubstring("BackupStorageLocation offsite does not exist"))

	_, _, problem = WorkloadBackup(w, &Velero{})
	g.Expect(problem).To(Equal("no Velero Schedule backs up namespace clinic with the workload's pods"))
	_, _, problem = WorkloadBackup(w, nil)
	g.Expect(problem).To(Equal("Velero is not installed (no velero.io CRDs)"))
}
