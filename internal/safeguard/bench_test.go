package safeguard

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// BenchmarkEffective measures the settings merge every reconcile does
// (workload over policy over built-in defaults).
func BenchmarkEffective(b *testing.B) {
	workload := phiguardv1alpha1.SafeguardSettings{
		Backup:           &phiguardv1alpha1.BackupSpec{Schedule: "0 4 * * *"},
		EncryptionAtRest: &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeAudit},
	}
	policy := &phiguardv1alpha1.PHIPolicy{Spec: phiguardv1alpha1.PHIPolicySpec{Defaults: phiguardv1alpha1.SafeguardSettings{
		Backup: &phiguardv1alpha1.BackupSpec{RPO: &metav1.Duration{Duration: 12 * time.Hour}},
	}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := New(Options{}).Effective(&workload, policy); err != nil {
			b.Fatal(err)
		}
	}
}
