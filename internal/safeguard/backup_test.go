package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlevent "sigs.k8s.io/controller-runtime/pkg/event"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func TestFreshness(t *testing.T) {
	now := time.Date(2030, 3, 1, 12, 0, 0, 0, time.UTC)
	sched := &velerov1.Schedule{ObjectMeta: metav1.ObjectMeta{Name: "s", CreationTimestamp: metav1.NewTime(now.Add(-2 * time.Hour))},
		Spec: velerov1.ScheduleSpec{Schedule: "0 * * * *"}}
	b := func(name string, phase velerov1.BackupPhase, started, done time.Duration) velerov1.Backup {
		return velerov1.Backup{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{velerov1.ScheduleNameLabel: "s"}},
			Status: velerov1.BackupStatus{Phase: phase, StartTimestamp: &metav1.Time{Time: now.Add(started)},
				CompletionTimestamp: &metav1.Time{Time: now.Add(done)}}}
	}
	other := b("other", velerov1.BackupPhaseCompleted, -time.Minute, -time.Minute)
	other.Labels[velerov1.ScheduleNameLabel] = "someone-else"

	cases := []struct {
		name    string
		rpo     time.Duration
		backups []velerov1.Backup
		reason  string
		requeue time.Duration
		message string
	}{
		{"nothing yet, within the rpo", 3 * time.Hour, []velerov1.Backup{other}, phiguardv1alpha1.ReasonAwaitingFirstBackup, time.Hour,
			"has not completed a backup yet; it must before 2030-03-01T13:00:00Z"},
		{"nothing, past the rpo", time.Hour, nil, phiguardv1alpha1.ReasonBackupStale, 0, "has completed no backup since it was created at 2030-03-01T10:00:00Z"},
		{"fresh: requeue when it would lapse", time.Hour, []velerov1.Backup{b("a", velerov1.BackupPhaseCompleted, -20*time.Minute, -15*time.Minute)},
			phiguardv1alpha1.ReasonBackupFresh, 45 * time.Minute, "the last successful backup a completed at 2030-03-01T11:45:00Z"},
		{"stale", 10 * time.Minute, []velerov1.Backup{b("a", velerov1.BackupPhaseCompleted, -20*time.Minute, -15*time.Minute)},
			phiguardv1alpha1.ReasonBackupStale, 0, "longer ago than the rpo of 10m0s"},
		{"the latest failed", time.Hour, []velerov1.Backup{
			b("a", velerov1.BackupPhaseCompleted, -50*time.Minute, -45*time.Minute),
			b("b", velerov1.BackupPhaseFailed, -10*time.Minute, -9*time.Minute),
			b("c", velerov1.BackupPhaseInProgress, -time.Minute, 0)}, phiguardv1alpha1.ReasonBackupFailed, 0, "the latest backup b of Schedule s ended Failed; the last successful one, a"},
		{"an old failure before a success", time.Hour, []velerov1.Backup{
			b("a", velerov1.BackupPhaseFailedValidation, -50*time.Minute, -45*time.Minute),
			b("b", velerov1.BackupPhaseCompleted, -10*time.Minute, -9*time.Minute)}, phiguardv1alpha1.ReasonBackupFresh, 51 * time.Minute, "backup b completed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			r := freshness(sched, tc.backups, tc.rpo, now)
			g.Expect(r.Reason).To(Equal(tc.reason))
			g.Expect(r.RequeueAfter).To(Equal(tc.requeue))
			g.Expect(r.Message).To(ContainSubstring(tc.message))
		})
	}
}

func TestStorageEncryption(t *testing.T) {
	bsl := func(provider string, config map[string]string) *velerov1.BackupStorageLocation {
		return &velerov1.BackupStorageLocation{ObjectMeta: metav1.ObjectMeta{Name: "loc"},
			Spec: velerov1.BackupStorageLocationSpec{Provider: provider, Config: config}}
	}
	T, F, U := metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown
	for _, tc := range []struct {
		loc           *velerov1.BackupStorageLocation
		acceptDefault bool
		status        metav1.ConditionStatus
		reason        string
		want          string
	}{
		{bsl("aws", map[string]string{"kmsKeyId": "alias/phi"}), false, T, "", "BackupStorageLocation loc encrypts with KMS key alias/phi"},
		{bsl("velero.io/aws", map[string]string{"serverSideEncryption": "AES256"}), false, T, "", "BackupStorageLocation loc encrypts server-side (AES256)"},
		{bsl("aws", nil), false, F, phiguardv1alpha1.ReasonStorageLocationUnencrypted,
			"BackupStorageLocation loc declares no encryption at rest (the bucket's default encryption); set config.serverSideEncryption or config.kmsKeyId, or accept the provider's default with PHIPolicy backup.acceptProviderDefaultEncryption"},
		{bsl("aws", nil), true, T, "",
			"BackupStorageLocation loc declares no encryption and relies on the bucket's default encryption, which PHIPolicy backup.acceptProviderDefaultEncryption accepts"},
		{bsl("gcp", map[string]string{"kmsKeyName": "projects/p/keys/k"}), false, T, "", "BackupStorageLocation loc encrypts with customer-managed key projects/p/keys/k"},
		{bsl("velero.io/gcp", nil), false, F, phiguardv1alpha1.ReasonStorageLocationUnencrypted,
			"BackupStorageLocation loc declares no encryption at rest (Google-managed keys); set config.kmsKeyName for a customer-managed key, or accept the provider's default with PHIPolicy backup.acceptProviderDefaultEncryption"},
		{bsl("azure", nil), true, T, "", "relies on Azure Storage's platform-managed keys"},
		{bsl("community.example/minio", nil), true, U, phiguardv1alpha1.ReasonStorageEncryptionUnknown,
			"phiguard cannot tell whether BackupStorageLocation loc (provider community.example/minio) encrypts at rest; check it"},
	} {
		g := NewWithT(t)
		got := storageEncryption(tc.loc, tc.acceptDefault)
		g.Expect(got.status).To(Equal(tc.status), tc.want)
		g.Expect(got.reason).To(Equal(tc.reason), tc.want)
		g.Expect(got.message).To(ContainSubstring(tc.want))
	}
}

func TestLocationJudgementChanged(t *testing.T) {
	g := NewWithT(t)
	bsl := &velerov1.BackupStorageLocation{ObjectMeta: metav1.ObjectMeta{Name: "default", Generation: 1},
		Spec:   velerov1.BackupStorageLocationSpec{Provider: "aws", Config: map[string]string{"region": "us-east-1"}},
		Status: velerov1.BackupStorageLocationStatus{Phase: velerov1.BackupStorageLocationPhaseAvailable}}
	update := func(change func(*velerov1.BackupStorageLocation)) bool {
		after := bsl.DeepCopy()
		change(after)
		return locationJudgementChanged.Update(ctrlevent.UpdateEvent{ObjectOld: bsl, ObjectNew: after})
	}
	g.Expect(update(func(b *velerov1.BackupStorageLocation) {
		b.Generation++ // no status subresource: a status write bumps it
		b.Status.LastValidationTime = &metav1.Time{Time: time.Now()}
	})).To(BeFalse(), "Velero validated it again, nothing changed")
	g.Expect(update(func(b *velerov1.BackupStorageLocation) {
		b.Status.Phase, b.Status.Message = velerov1.BackupStorageLocationPhaseUnavailable, "bucket not found"
	})).To(BeTrue(), "unavailable")
	g.Expect(update(func(b *velerov1.BackupStorageLocation) { b.Status.Message = "slow" })).To(BeTrue())
	g.Expect(update(func(b *velerov1.BackupStorageLocation) { b.Spec.Config["kmsKeyId"] = "alias/phi" })).To(BeTrue(), "its encryption")
	g.Expect(update(func(b *velerov1.BackupStorageLocation) { b.Spec.Default = true })).To(BeTrue(), "the default")
	g.Expect(locationJudgementChanged.Create(ctrlevent.CreateEvent{Object: bsl})).To(BeTrue())
	g.Expect(locationJudgementChanged.Delete(ctrlevent.DeleteEvent{Object: bsl})).To(BeTrue())
}
