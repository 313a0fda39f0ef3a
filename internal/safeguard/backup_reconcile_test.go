package safeguard

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
)

const veleroNamespace = "velero"

var (
	veleroOnce sync.Once
	veleroErr  error
)

// withVelero creates, once for the package, what an installed Velero has
// besides its CRDs: its namespace and an Available default
// BackupStorageLocation (encrypting with a KMS key).
func withVelero(t *testing.T) {
	t.Helper()
	veleroOnce.Do(func() { veleroErr = installVelero(t.Context()) })
	if veleroErr != nil {
		t.Fatalf("installing Velero's namespace and storage location: %v", veleroErr)
	}
}

func installVelero(ctx context.Context) error {
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: veleroNamespace}}); err != nil {
		return err
	}
	bsl := &velerov1.BackupStorageLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: "default"},
		Spec: velerov1.BackupStorageLocationSpec{
			Provider: "aws", Default: true, Config: map[string]string{"region": "eu-west-1", "kmsKeyId": "alias/phi"},
			StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: "phi-backups"}},
		},
		// Velero's CRD has no status subresource: status is stored as given.
		Status: velerov1.BackupStorageLocationStatus{Phase: velerov1.BackupStorageLocationPhaseAvailable},
	}
	return k8s.Create(ctx, bsl)
}

func schedule(ns string) *velerov1.Schedule {
	return &velerov1.Schedule{ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: "phiguard-" + ns + "-records"}}
}

// newCompletedBackup stores a Backup of a Schedule as Velero leaves one that
// completed at done.
func newCompletedBackup(t *testing.T, sched string, done time.Time) *velerov1.Backup {
	t.Helper()
	b := &velerov1.Backup{
		ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: sched + "-" + done.UTC().Format("20060102150405"),
			Labels: map[string]string{velerov1.ScheduleNameLabel: sched}},
		Status: velerov1.BackupStatus{Phase: velerov1.BackupPhaseCompleted,
			StartTimestamp: &metav1.Time{Time: done.Add(-time.Minute)}, CompletionTimestamp: &metav1.Time{Time: done}},
	}
	create(t, b) // Backup has no status subresource: status is stored as given
	return b
}

// storageMessage ends the message of every backup verdict here: the
// location's encryption, and, with no PHIPolicy backup.locationCredentials,
// that its immutability was not checked.
const storageMessage = "; storage: BackupStorageLocation default encrypts with KMS key alias/phi" +
	"; immutability of BackupStorageLocation default not checked: PHIPolicy default names no backup.locationCredentials" +
	" (a Secret in phiguard's namespace with read-only S3 credentials: s3:GetBucketVersioning and s3:GetBucketObjectLockConfiguration)"

func TestBackupSchedulingEnforceCreatesTheScheduleAndJudgesItsBackups(t *testing.T) {
	g := NewWithT(t)
	withVelero(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	c, writes := countingClient(t)

	now := time.Now()
	s := scopeAt(t, c, w, now)
	g.Expect(s.API(optionalapi.Velero)).To(Equal(optionalapi.Served))
	r := BackupScheduling{}.Reconcile(t.Context(), s)
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(writes.N()).To(Equal(int64(1)), "one apply")

	sched := schedule(ns)
	get(t, sched)
	g.Expect(sched.Spec.Schedule).To(Equal("0 2 * * *"))
	g.Expect(sched.Spec.UseOwnerReferencesInBackup).To(Equal(ptr.To(false)),
		"set, and false: deleting the Schedule must never garbage-collect its backups")
	g.Expect(sched.OwnerReferences).To(BeEmpty(), "no owner reference across namespaces")
	g.Expect(sched.Labels).To(Equal(map[string]string{
		phiguardv1alpha1.ManagedByLabel:  phiguardv1alpha1.ManagedByValue,
		phiguardv1alpha1.WorkloadLabel:   "records",
		"phiguard.io/workload-namespace": ns,
	}))
	g.Expect(sched.Spec.Template.IncludedNamespaces).To(Equal([]string{ns}))
	g.Expect(sched.Spec.Template.LabelSelector).To(Equal(&metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}))
	g.Expect(sched.Spec.Template.TTL.Duration).To(Equal(52560 * time.Hour))

	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonScheduleCreated}))
	g.Expect(r.Events[0].Message).To(Equal("created Velero Schedule velero/" + sched.Name + ` ("0 2 * * *", ttl 52560h0m0s)`))
	g.Expect(r.Events[0].Related).To(HaveValue(Equal(corev1.ObjectReference{
		APIVersion: "velero.io/v1", Kind: "Schedule", Namespace: veleroNamespace, Name: sched.Name,
		UID: sched.UID, ResourceVersion: sched.ResourceVersion,
	})))
	lapse := sched.CreationTimestamp.Add(25 * time.Hour)
	g.Expect(r.Status).To(Equal(metav1.ConditionUnknown))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonAwaitingFirstBackup))
	g.Expect(r.Message).To(Equal("Schedule " + sched.Name + ` ("0 2 * * *") has not completed a backup yet; it must before ` +
		lapse.UTC().Format(time.RFC3339) + " (rpo 25h0m0s)" + storageMessage))
	g.Expect(r.RequeueAfter).To(Equal(lapse.Sub(now)), "looks again when the first backup is overdue")

	// Steady: the stored Schedule matches, nothing is written or reported.
	r = BackupScheduling{}.Reconcile(t.Context(), scopeAt(t, c, w, now))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonAwaitingFirstBackup))
	g.Expect(writes.N()).To(Equal(int64(1)))

	done := time.Now().Truncate(time.Second) // what metav1.Time stores
	b := newCompletedBackup(t, sched.Name, done)
	r = BackupScheduling{}.Reconcile(t.Context(), scopeAt(t, c, w, done.Add(time.Hour)))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonBackupFresh))
	g.Expect(r.Message).To(Equal("the last successful backup " + b.Name + " completed at " + done.UTC().Format(time.RFC3339) +
		", within the rpo of 25h0m0s (Schedule " + sched.Name + `, "0 2 * * *")` + storageMessage))
	g.Expect(r.RequeueAfter).To(Equal(24*time.Hour), "looks again when the backup outlives the rpo")
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(int64(1)))
}

func TestBackupSchedulingAuditRemovesPhiguardsScheduleAndReportsItMissing(t *testing.T) {
	g := NewWithT(t)
	withVelero(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	c, writes := countingClient(t)
	r := BackupScheduling{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonScheduleCreated}))
	sched := schedule(ns)
	get(t, sched)
	b := newCompletedBackup(t, sched.Name, time.Now())
	before := writes.N()

	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.Backup = &phiguardv1alpha1.BackupSpec{Mode: phiguardv1alpha1.ModeAudit}
	})
	r = BackupScheduling{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonScheduleRemoved}))
	g.Expect(r.Events[0].Message).To(Equal("deleted Velero Schedule velero/" + sched.Name + "; the backups it made are kept until their TTL"))
	g.Expect(r.Events[0].Related).To(HaveValue(HaveField("UID", sched.UID)))
	g.Expect(apierrors.IsNotFound(k8s.Get(t.Context(), client.ObjectKeyFromObject(sched), &velerov1.Schedule{}))).To(BeTrue())
	get(t, b) // the backup stays
	g.Expect(writes.N()).To(Equal(before+1), "one delete")
	// The pass that deletes the Schedule judges without it: none covers the workload.
	missing := "no Velero Schedule in velero backs up namespace " + ns + " with the workload's pods; set backup.mode to Enforce for phiguard to keep one"
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonScheduleMissing))
	g.Expect(r.Message).To(Equal(missing))

	// The next one reads what is left, and says the same.
	r = BackupScheduling{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonScheduleMissing))
	g.Expect(r.Message).To(Equal(missing))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(before+1), "Audit creates nothing")
}

func TestBackupSchedulingFinalizeDeletesTheScheduleButNeverABackup(t *testing.T) {
	g := NewWithT(t)
	withVelero(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	c, writes := countingClient(t)
	r := BackupScheduling{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonScheduleCreated}))
	sched := schedule(ns)
	get(t, sched)
	b := newCompletedBackup(t, sched.Name, time.Now())
	before := writes.N()

	events, err := BackupScheduling{}.Finalize(t.Context(), c, w)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(eventReasons(events)).To(Equal([]string{phiguardv1alpha1.ReasonScheduleRemoved}))
	g.Expect(apierrors.IsNotFound(k8s.Get(t.Context(), client.ObjectKeyFromObject(sched), &velerov1.Schedule{}))).To(BeTrue())
	g.Expect(writes.N()).To(Equal(before+1), "one delete: the Schedule's")
	kept := &velerov1.Backup{ObjectMeta: metav1.ObjectMeta{Namespace: veleroNamespace, Name: b.Name}}
	get(t, kept)
	g.Expect(kept.UID).To(Equal(b.UID))
	g.Expect(kept.DeletionTimestamp).To(BeNil())

	// Finalizing again finds nothing of the workload's left.
	events, err = BackupScheduling{}.Finalize(t.Context(), c, w)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(before + 1))
}

func TestBackupSchedulingReportsVeleroNotInstalledAndLooksAgainWhilePending(t *testing.T) {
	for _, tc := range []struct {
		state   optionalapi.State
		message string
		requeue time.Duration
	}{
		{optionalapi.NotInstalled, "Velero is not installed (no velero.io/v1 CRDs): install Velero (velero install, or its Helm chart) " +
			"with a BackupStorageLocation; phiguard starts using it as soon as the CRDs appear", 0},
		{optionalapi.Pending, "Velero's CRDs are installed but the apiserver does not serve velero.io/v1 yet; phiguard looks again shortly",
			2 * time.Second},
	} {
		t.Run(tc.state.String(), func(t *testing.T) {
			g := NewWithT(t)
			w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "records", Name: "records"},
				Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}}}}
			settings, _, err := New(Options{}).Effective(&w.Spec.SafeguardSettings, nil)
			g.Expect(err).NotTo(HaveOccurred())
			c, writes := countingClient(t)
			s := &Scope{Workload: w, Settings: settings, Now: time.Now(), Client: c}
			s.SetAPI(optionalapi.Velero, tc.state)

			r := BackupScheduling{}.Reconcile(t.Context(), s)
			g.Expect(r).To(Equal(Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonVeleroNotInstalled,
				Message: tc.message, RequeueAfter: tc.requeue}))
			g.Expect(writes.N()).To(BeZero())
		})
	}
}
