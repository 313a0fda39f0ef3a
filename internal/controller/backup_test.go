package controller_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
	"github.com/phiguard/phiguard/internal/testenv"
)

// Covers the BackupScheduled safeguard against Velero's own CRDs, installed
// into the running apiserver after the manager started (as a cluster that gets
// Velero later would), and Backup objects the test writes as Velero would.
// The reason each step produces is named in the step.
var _ = Describe("Backups", Ordered, func() {
	const timeout, poll = 15 * time.Second, 50 * time.Millisecond
	const velero = "velero"
	var first *phiguardv1alpha1.PHIWorkload

	// lastSuccess reads the last-success gauge of the workload "records" in ns; nil when it has no series.
	lastSuccess := func(g Gomega, ns string) *float64 {
		families, err := metricsRegistry.Gather()
		g.Expect(err).NotTo(HaveOccurred())
		for _, f := range families {
			if f.GetName() != "phiguard_backup_last_success_timestamp_seconds" {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["namespace"] == ns && labels["workload"] == "records" {
					return ptr.To(m.GetGauge().GetValue())
				}
			}
		}
		return nil
	}
	backupCondition := func(g Gomega, w *phiguardv1alpha1.PHIWorkload) metav1.Condition {
		return condition(g, w, string(phiguardv1alpha1.BackupScheduled))
	}
	schedule := func(g Gomega, w *phiguardv1alpha1.PHIWorkload) *velerov1.Schedule {
		s := &velerov1.Schedule{}
		g.ExpectWithOffset(1, k8s.Get(ctx, types.NamespacedName{Namespace: velero, Name: safeguard.ScheduleName(w)}, s)).To(Succeed())
		return s
	}
	backup := func(name, sched string, phase velerov1.BackupPhase, started, completed time.Time) *velerov1.Backup {
		GinkgoHelper()
		b := &velerov1.Backup{
			ObjectMeta: metav1.ObjectMeta{Namespace: velero, Name: name, Labels: map[string]string{velerov1.ScheduleNameLabel: sched}},
			Status: velerov1.BackupStatus{Phase: phase, StartTimestamp: &metav1.Time{Time: started},
				CompletionTimestamp: &metav1.Time{Time: completed}},
		}
		Expect(k8s.Create(ctx, b)).To(Succeed())
		return b
	}
	location := func(name string, phase velerov1.BackupStorageLocationPhase, isDefault bool, provider string, config map[string]string) {
		GinkgoHelper()
		Expect(k8s.Create(ctx, &velerov1.BackupStorageLocation{
			ObjectMeta: metav1.ObjectMeta{Namespace: velero, Name: name},
			Spec: velerov1.BackupStorageLocationSpec{Provider: provider, Default: isDefault, Config: config,
				StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: "phi-backups"}}},
			Status: velerov1.BackupStorageLocationStatus{Phase: phase},
		})).To(Succeed())
	}

	It("reports VeleroNotInstalled while Velero's CRDs are absent", func() {
		ns := newNamespace()
		first = newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) {
			c := backupCondition(g, first)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonVeleroNotInstalled))
			g.Expect(c.Message).To(ContainSubstring("install Velero"))
		}, timeout, poll).Should(Succeed())
	})

	It("manages the Schedule once Velero's CRDs appear, without a restart (AwaitingFirstBackup)", func() {
		paths, err := testenv.VeleroCRDs()
		Expect(err).NotTo(HaveOccurred())
		_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{Paths: paths})
		Expect(err).NotTo(HaveOccurred())
		ensureNamespace(velero)
		location("default", velerov1.BackupStorageLocationPhaseAvailable, true, "aws", map[string]string{"region": "eu-west-1", "kmsKeyId": "alias/phi"})

		Eventually(func(g Gomega) {
			s := schedule(g, first)
			g.Expect(s.Labels).To(HaveKeyWithValue(phiguardv1alpha1.ManagedByLabel, phiguardv1alpha1.ManagedByValue))
			g.Expect(s.Labels).To(HaveKeyWithValue(phiguardv1alpha1.WorkloadLabel, "records"))
			g.Expect(s.OwnerReferences).To(BeEmpty(), "no owner reference across namespaces")
			g.Expect(s.Spec.Schedule).To(Equal("0 2 * * *"))
			g.Expect(s.Spec.UseOwnerReferencesInBackup).To(HaveValue(BeFalse()), "backups must never be garbage collected with their schedule")
			g.Expect(s.Spec.Template.IncludedNamespaces).To(Equal([]string{first.Namespace}))
			g.Expect(s.Spec.Template.LabelSelector).To(HaveValue(Equal(first.Spec.Selector)))
			g.Expect(s.Spec.Template.TTL.Duration).To(Equal(52560 * time.Hour))
			g.Expect(s.Spec.Template.SnapshotVolumes).To(HaveValue(BeTrue()))

			c := backupCondition(g, first)
			g.Expect(c.Status).To(Equal(metav1.ConditionUnknown))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonAwaitingFirstBackup))
			g.Expect(c.Message).To(ContainSubstring("storage: BackupStorageLocation default encrypts with KMS key alias/phi"))
			var created bool
			for _, e := range eventsFor(g, fetch(g, first)) {
				created = created || (e.Reason == phiguardv1alpha1.ReasonScheduleCreated && e.Action == string(phiguardv1alpha1.BackupScheduled) &&
					e.Related != nil && e.Related.Kind == "Schedule")
			}
			g.Expect(created).To(BeTrue(), "a ScheduleCreated Event naming the Schedule")
		}, timeout, poll).Should(Succeed())
	})

	It("judges freshness from the schedule's backups (BackupFresh, BackupFailed, BackupStale)", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{RPO: &metav1.Duration{Duration: time.Hour}}
		})
		var name string
		Eventually(func(g Gomega) { name = schedule(g, w).Name }, timeout, poll).Should(Succeed())
		now := time.Now()

		backup(name+"-1", name, velerov1.BackupPhaseCompleted, now.Add(-10*time.Minute), now.Add(-9*time.Minute))
		Eventually(func(g Gomega) {
			c := backupCondition(g, w)
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonBackupFresh))
			g.Expect(c.Message).To(ContainSubstring("the last successful backup " + name + "-1 completed at"))
		}, timeout, poll).Should(Succeed())

		By("exporting the completion time of the last successful backup")
		Eventually(func(g Gomega) {
			g.Expect(lastSuccess(g, ns)).To(HaveValue(BeEquivalentTo(now.Add(-9 * time.Minute).Unix())))
		}, timeout, poll).Should(Succeed())

		backup(name+"-2", name, velerov1.BackupPhasePartiallyFailed, now.Add(-5*time.Minute), now.Add(-4*time.Minute))
		Eventually(func(g Gomega) {
			c := backupCondition(g, w)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonBackupFailed))
			g.Expect(c.Message).To(HavePrefix("the latest backup " + name + "-2 of Schedule " + name + " ended PartiallyFailed; the last successful one, " + name + "-1"))
		}, timeout, poll).Should(Succeed())

		By("a newer successful backup clears the failure")
		backup(name+"-3", name, velerov1.BackupPhaseCompleted, now.Add(-2*time.Minute), now.Add(-time.Minute))
		Eventually(func(g Gomega) { g.Expect(backupCondition(g, w).Reason).To(Equal(phiguardv1alpha1.ReasonBackupFresh)) }, timeout, poll).Should(Succeed())

		By("a workload whose last backup is older than its RPO")
		stale := newWorkload(newNamespace(), "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{RPO: &metav1.Duration{Duration: 30 * time.Minute}}
		})
		var staleName string
		Eventually(func(g Gomega) { staleName = schedule(g, stale).Name }, timeout, poll).Should(Succeed())
		backup(staleName+"-old", staleName, velerov1.BackupPhaseCompleted, now.Add(-3*time.Hour), now.Add(-2*time.Hour))
		Eventually(func(g Gomega) {
			c := backupCondition(g, stale)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonBackupStale))
			g.Expect(c.Message).To(ContainSubstring("longer ago than the rpo of 30m0s"))
		}, timeout, poll).Should(Succeed())
	})

	It("follows the spec, and removes the Schedule but keeps the backups when the mode leaves Enforce", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", nil)
		Eventually(func(g Gomega) { schedule(g, w) }, timeout, poll).Should(Succeed())

		Expect(k8s.Patch(ctx, w, client.RawPatch(types.MergePatchType,
			[]byte(`{"spec":{"backup":{"schedule":"@every 6h","ttl":"8760h","volumes":"FileSystem"}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			s := schedule(g, w)
			g.Expect(s.Spec.Schedule).To(Equal("@every 6h"))
			g.Expect(s.Spec.Template.TTL.Duration).To(Equal(8760 * time.Hour))
			g.Expect(s.Spec.Template.SnapshotVolumes).To(HaveValue(BeFalse()))
			g.Expect(s.Spec.Template.DefaultVolumesToFsBackup).To(HaveValue(BeTrue()))
		}, timeout, poll).Should(Succeed())

		By("a deleted Schedule is re-created")
		var s velerov1.Schedule
		Expect(k8s.Get(ctx, types.NamespacedName{Namespace: velero, Name: safeguard.ScheduleName(w)}, &s)).To(Succeed())
		Expect(k8s.Delete(ctx, &s)).To(Succeed())
		Eventually(func(g Gomega) { g.Expect(schedule(g, w).UID).NotTo(Equal(s.UID)) }, timeout, poll).Should(Succeed())

		b := backup(s.Name+"-kept", s.Name, velerov1.BackupPhaseCompleted, time.Now().Add(-time.Minute), time.Now())
		Expect(k8s.Patch(ctx, w, client.RawPatch(types.MergePatchType, []byte(`{"spec":{"backup":{"mode":"Audit"}}}`)))).To(Succeed())
		Eventually(func(g Gomega) {
			err := k8s.Get(ctx, types.NamespacedName{Namespace: velero, Name: s.Name}, &velerov1.Schedule{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Schedule still there: %v", err)
			c := backupCondition(g, w)
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonScheduleMissing), "Audit finds no schedule covering the workload")
			reasons := map[string]bool{}
			for _, e := range eventsFor(g, fetch(g, w)) {
				reasons[e.Reason] = true
			}
			g.Expect(reasons).To(HaveKey(phiguardv1alpha1.ReasonScheduleUpdated))
			g.Expect(reasons).To(HaveKey(phiguardv1alpha1.ReasonScheduleRemoved))
		}, timeout, poll).Should(Succeed())
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(b), &velerov1.Backup{})).To(Succeed(), "the backup is kept")
	})

	It("accepts, in Audit mode, a Schedule someone else keeps for the namespace", func() {
		ns := newNamespace()
		Expect(k8s.Create(ctx, &velerov1.Schedule{
			ObjectMeta: metav1.ObjectMeta{Namespace: velero, Name: "nightly-" + ns},
			Spec:       velerov1.ScheduleSpec{Schedule: "0 1 * * *", Template: velerov1.BackupSpec{IncludedNamespaces: []string{ns}}},
		})).To(Succeed())
		w := newWorkload(ns, "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{Mode: phiguardv1alpha1.ModeAudit}
		})
		Eventually(func(g Gomega) {
			c := backupCondition(g, w)
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonAwaitingFirstBackup))
			g.Expect(c.Message).To(ContainSubstring("Schedule nightly-" + ns))
		}, timeout, poll).Should(Succeed())
	})

	It("reports a missing Velero namespace as VeleroNotInstalled, without trying to write there", func() {
		w := newWorkload(newNamespace(), "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{VeleroNamespace: "velero-elsewhere"}
		})
		Eventually(func(g Gomega) {
			c := backupCondition(g, w)
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonVeleroNotInstalled))
			g.Expect(c.Message).To(HavePrefix("Velero's CRDs are installed but namespace velero-elsewhere does not exist"))
		}, timeout, poll).Should(Succeed())
	})

	It("checks the storage location (StorageLocationMissing, StorageLocationUnavailable) and says whether it encrypts", func() {
		missing := newWorkload(newNamespace(), "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{StorageLocation: "nowhere"}
		})
		location("offline", velerov1.BackupStorageLocationPhaseUnavailable, false, "gcp", nil)
		offline := newWorkload(newNamespace(), "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{StorageLocation: "offline"}
		})
		location("gcs", velerov1.BackupStorageLocationPhaseAvailable, false, "velero.io/gcp", nil)
		gcs := newWorkload(newNamespace(), "records", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{StorageLocation: "gcs"}
		})
		Eventually(func(g Gomega) {
			c := backupCondition(g, missing)
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonStorageLocationMissing))
			g.Expect(c.Message).To(Equal("BackupStorageLocation nowhere does not exist in Velero's namespace: create it or name another in backup.storageLocation"))
			c = backupCondition(g, offline)
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonStorageLocationUnavailable))
			g.Expect(c.Message).To(HavePrefix(`BackupStorageLocation offline is "Unavailable", not Available`))
			c = backupCondition(g, gcs)
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(phiguardv1alpha1.ReasonStorageLocationUnencrypted))
			g.Expect(c.Message).To(ContainSubstring("storage: BackupStorageLocation gcs declares no encryption at rest (Google-managed keys); set config.kmsKeyName for a customer-managed key, or accept the provider's default with PHIPolicy backup.acceptProviderDefaultEncryption"))
		}, timeout, poll).Should(Succeed())
	})

	It("deletes the Schedule with the workload, and never a Backup", func() {
		ns := newNamespace()
		w := newWorkload(ns, "records", nil)
		var s *velerov1.Schedule
		Eventually(func(g Gomega) { s = schedule(g, w) }, timeout, poll).Should(Succeed())
		Eventually(func(g Gomega) { g.Expect(fetch(g, w).Finalizers).To(ContainElement("compliance.phiguard.io/cleanup")) }, timeout, poll).Should(Succeed())
		kept := backup(s.Name+"-before-delete", s.Name, velerov1.BackupPhaseCompleted, time.Now().Add(-time.Minute), time.Now())
		Eventually(func(g Gomega) { g.Expect(lastSuccess(g, ns)).NotTo(BeNil()) }, timeout, poll).Should(Succeed())

		Expect(k8s.Delete(ctx, w)).To(Succeed())
		Eventually(func(g Gomega) {
			err := k8s.Get(ctx, client.ObjectKeyFromObject(w), &phiguardv1alpha1.PHIWorkload{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "workload still there: %v", err)
			err = k8s.Get(ctx, client.ObjectKeyFromObject(s), &velerov1.Schedule{})
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "Schedule still there: %v", err)
			g.Expect(lastSuccess(g, ns)).To(BeNil(), "the workload's metric series goes with it")
		}, timeout, poll).Should(Succeed())
		Consistently(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(kept), &velerov1.Backup{})).To(Succeed())
		}, 2*time.Second, 200*time.Millisecond).Should(Succeed(), "the backup outlives its schedule and workload")
	})
})
