package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func TestEffectiveMergesFieldByField(t *testing.T) {
	g := NewWithT(t)
	workload := phiguardv1alpha1.SafeguardSettings{
		Backup:           &phiguardv1alpha1.BackupSpec{Schedule: "0 4 * * *"},
		NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{AllowDNS: ptr.To(false)},
	}
	policy := &phiguardv1alpha1.PHIPolicy{Spec: phiguardv1alpha1.PHIPolicySpec{Defaults: phiguardv1alpha1.SafeguardSettings{
		Backup:           &phiguardv1alpha1.BackupSpec{Mode: phiguardv1alpha1.ModeAudit, Schedule: "0 1 * * *", RPO: &metav1.Duration{Duration: 12 * time.Hour}},
		NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{AllowDNS: ptr.To(true), AllowSameWorkload: ptr.To(false)},
	}}}

	got, sources, err := New(Options{}).Effective(&workload, policy)
	g.Expect(err).NotTo(HaveOccurred())

	// The workload's own field wins over the policy's, which wins over the default.
	g.Expect(got.Backup.Schedule).To(Equal("0 4 * * *"))
	g.Expect(got.Backup.Mode).To(Equal(phiguardv1alpha1.ModeAudit))
	g.Expect(got.Backup.RPO.Duration).To(Equal(12 * time.Hour))
	g.Expect(got.Backup.TTL.Duration).To(Equal(52560 * time.Hour))
	g.Expect(got.Backup.VeleroNamespace).To(Equal("velero"))
	// A false set on the workload is a value, not an absence.
	g.Expect(*got.NetworkIsolation.AllowDNS).To(BeFalse())
	g.Expect(*got.NetworkIsolation.AllowSameWorkload).To(BeFalse())
	g.Expect(got.NetworkIsolation.Mode).To(Equal(phiguardv1alpha1.ModeEnforce))

	g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.BackupScheduled, phiguardv1alpha1.SourcePolicy))
	g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.NetworkIsolated, phiguardv1alpha1.SourceDefault))
	for _, name := range New(Options{}).Names() {
		g.Expect(got.Mode(name)).NotTo(BeEmpty(), "every effective mode is set: %s", name)
	}

	// The inputs are not modified.
	g.Expect(workload.Backup.Mode).To(BeEmpty())
	g.Expect(policy.Spec.Defaults.Backup.Schedule).To(Equal("0 1 * * *"))
}

func TestEffectiveWithoutPolicy(t *testing.T) {
	g := NewWithT(t)
	workload := phiguardv1alpha1.SafeguardSettings{
		EncryptionAtRest: &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff},
	}
	got, sources, err := New(Options{}).Effective(&workload, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.EncryptionAtRest.Mode).To(Equal(phiguardv1alpha1.ModeOff))
	g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.SourceWorkload))
	g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.Available, phiguardv1alpha1.SourceDefault))
	g.Expect(got).To(HaveField("Availability.MinReplicas", HaveValue(BeEquivalentTo(2))))
}

// A schedule the API's pattern lets through but cron refuses stalls the
// backup safeguard; a valid one goes on to look for Velero.
func TestBackupStallsOnAnInvalidSchedule(t *testing.T) {
	for schedule, ok := range map[string]bool{
		"0 2 * * *":      true,
		"@daily":         true,
		"@every 6h":      true,
		"*/15 * * * 1-5": true,
		"61 * * * *":     false,
		"0 25 * * *":     false,
		"0 2 * * 8":      false,
	} {
		t.Run(schedule, func(t *testing.T) {
			g := NewWithT(t)
			settings := New(Options{}).Defaults()
			settings.Backup.Schedule = schedule
			r := BackupScheduling{}.Reconcile(t.Context(), &Scope{Workload: &phiguardv1alpha1.PHIWorkload{}, Settings: settings})
			err := r.Err
			if ok {
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonVeleroNotInstalled))
				return
			}
			g.Expect(AsStalled(err)).To(HaveField("Reason", phiguardv1alpha1.ReasonInvalidSchedule))
			g.Expect(err.Error()).To(ContainSubstring("backup.schedule %q is not a valid cron schedule", schedule))
		})
	}
}

func TestEffectiveRaisesModesToThePolicysMinimum(t *testing.T) {
	g := NewWithT(t)
	workload := phiguardv1alpha1.SafeguardSettings{
		NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{Mode: phiguardv1alpha1.ModeAudit},
		AuditLogging:     &phiguardv1alpha1.AuditLoggingSpec{Mode: phiguardv1alpha1.ModeEnforce},
	}
	policy := &phiguardv1alpha1.PHIPolicy{Spec: phiguardv1alpha1.PHIPolicySpec{MinimumModes: []phiguardv1alpha1.MinimumMode{
		{Safeguard: phiguardv1alpha1.NetworkIsolated, Mode: phiguardv1alpha1.ModeEnforce},
		{Safeguard: phiguardv1alpha1.AuditLogging, Mode: phiguardv1alpha1.ModeAudit},
		{Safeguard: phiguardv1alpha1.Available, Mode: phiguardv1alpha1.ModeEnforce},
	}}}
	got, sources, err := New(Options{}).Effective(&workload, policy)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got.NetworkIsolation.Mode).To(Equal(phiguardv1alpha1.ModeEnforce), "raised from Audit")
	g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.NetworkIsolated, phiguardv1alpha1.SourcePolicy))
	g.Expect(got.AuditLogging.Mode).To(Equal(phiguardv1alpha1.ModeEnforce), "already above the minimum")
	g.Expect(sources).To(HaveKeyWithValue(phiguardv1alpha1.AuditLogging, phiguardv1alpha1.SourceWorkload))
	g.Expect(got.Availability.Mode).To(Equal(phiguardv1alpha1.ModeEnforce), "raised from the built-in Audit")
	g.Expect(got.Availability.MinReplicas).To(HaveValue(BeEquivalentTo(2)), "the rest of the block is kept")
}

func TestBackupValidateSpecRefusesZeroDurations(t *testing.T) {
	g := NewWithT(t)
	for _, spec := range []*phiguardv1alpha1.BackupSpec{{TTL: &metav1.Duration{}}, {RPO: &metav1.Duration{Duration: -time.Hour}}} {
		_, err := BackupScheduling{}.ValidateSpec(&phiguardv1alpha1.SafeguardSettings{Backup: spec})
		g.Expect(AsStalled(err)).To(HaveField("Reason", phiguardv1alpha1.ReasonInvalidDuration))
	}
	warnings, err := BackupScheduling{}.ValidateSpec(&phiguardv1alpha1.SafeguardSettings{})
	g.Expect(err).NotTo(HaveOccurred(), "a workload without a backup block sets nothing to judge")
	g.Expect(warnings).To(BeEmpty())
}
