package metrics_test

import (
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/metrics"
)

func TestComplianceSeries(t *testing.T) {
	g := NewWithT(t)
	reg := prometheus.NewRegistry()
	c, err := metrics.NewCompliance(reg)
	g.Expect(err).NotTo(HaveOccurred())

	expires := metav1.NewTime(time.Unix(1900000000, 0))
	w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "records"}}
	w.Spec.Decisions = []phiguardv1alpha1.Decision{{Safeguard: "TransmissionSecure", Expires: expires}}
	c.Record(w, &phiguardv1alpha1.PHIWorkloadStatus{
		Compliance: phiguardv1alpha1.NonCompliant,
		Safeguards: []phiguardv1alpha1.SafeguardStatus{
			{Name: "AuditLogging", Status: metav1.ConditionTrue},
			{Name: "TransmissionSecure", Status: metav1.ConditionFalse},
			{Name: "BackupScheduled", Status: metav1.ConditionUnknown},
			{Name: "EncryptedAtRest", Status: metav1.ConditionTrue},
		},
		Decisions: []phiguardv1alpha1.DecisionStatus{{Safeguard: "TransmissionSecure"}},
	})
	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP phiguard_decision_expiry_timestamp_seconds Expiry of a PHIWorkload's documented decision turning a safeguard off, in Unix seconds.
# TYPE phiguard_decision_expiry_timestamp_seconds gauge
phiguard_decision_expiry_timestamp_seconds{namespace="ns",safeguard="TransmissionSecure",workload="records"} 1.9e+09
# HELP phiguard_safeguard_status Status of a PHIWorkload's safeguard condition: 1 for the current status (True, False or Unknown), 0 for the others.
# TYPE phiguard_safeguard_status gauge
phiguard_safeguard_status{namespace="ns",safeguard="AuditLogging",status="False",workload="records"} 0
phiguard_safeguard_status{namespace="ns",safeguard="AuditLogging",status="True",workload="records"} 1
phiguard_safeguard_status{namespace="ns",safeguard="AuditLogging",status="Unknown",workload="records"} 0
phiguard_safeguard_status{namespace="ns",safeguard="BackupScheduled",status="False",workload="records"} 0
phiguard_safeguard_status{namespace="ns",safeguard="BackupScheduled",status="True",workload="records"} 0
phiguard_safeguard_status{namespace="ns",safeguard="BackupScheduled",status="Unknown",workload="records"} 1
phiguard_safeguard_status{namespace="ns",safeguard="EncryptedAtRest",status="False",workload="records"} 0
phiguard_safeguard_status{namespace="ns",safeguard="EncryptedAtRest",status="True",workload="records"} 1
phiguard_safeguard_status{namespace="ns",safeguard="EncryptedAtRest",status="Unknown",workload="records"} 0
phiguard_safeguard_status{namespace="ns",safeguard="TransmissionSecure",status="False",workload="records"} 1
phiguard_safeguard_status{namespace="ns",safeguard="TransmissionSecure",status="True",workload="records"} 0
phiguard_safeguard_status{namespace="ns",safeguard="TransmissionSecure",status="Unknown",workload="records"} 0
# HELP phiguard_workload_compliant 1 when a PHIWorkload's compliance is Compliant, 0 when NonCompliant or Pending.
# TYPE phiguard_workload_compliant gauge
phiguard_workload_compliant{namespace="ns",workload="records"} 0
# HELP phiguard_workload_score_ratio Share of a PHIWorkload's safeguards that hold (status.score as a ratio, 0 to 1).
# TYPE phiguard_workload_score_ratio gauge
phiguard_workload_score_ratio{namespace="ns",workload="records"} 0.5
`))).To(Succeed())

	// A decision withdrawn and the safeguards all holding: the expiry series goes.
	w.Spec.Decisions = nil
	c.Record(w, &phiguardv1alpha1.PHIWorkloadStatus{
		Compliance: phiguardv1alpha1.Compliant,
		Safeguards: []phiguardv1alpha1.SafeguardStatus{{Name: "AuditLogging", Status: metav1.ConditionTrue}},
	})
	g.Expect(testutil.CollectAndCount(c, "phiguard_decision_expiry_timestamp_seconds")).To(Equal(0))
	g.Expect(testutil.CollectAndCount(c, "phiguard_safeguard_status")).To(Equal(3))
	g.Expect(testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP phiguard_workload_compliant 1 when a PHIWorkload's compliance is Compliant, 0 when NonCompliant or Pending.
# TYPE phiguard_workload_compliant gauge
phiguard_workload_compliant{namespace="ns",workload="records"} 1
`), "phiguard_workload_compliant")).To(Succeed())

	// Under a ruleset that recognises no decision, the decision's expiry is
	// not a series: nothing depends on it.
	w.Spec.Decisions = []phiguardv1alpha1.Decision{{Safeguard: "TransmissionSecure", Expires: expires}}
	c.Record(w, &phiguardv1alpha1.PHIWorkloadStatus{
		Compliance: phiguardv1alpha1.NonCompliant,
		Safeguards: []phiguardv1alpha1.SafeguardStatus{{Name: "TransmissionSecure", Status: metav1.ConditionFalse,
			Reason: phiguardv1alpha1.ReasonDecisionNotRecognised}},
		Decisions: []phiguardv1alpha1.DecisionStatus{{Safeguard: "TransmissionSecure"}},
	})
	g.Expect(testutil.CollectAndCount(c, "phiguard_decision_expiry_timestamp_seconds")).To(Equal(0))

	c.Forget(types.NamespacedName{Namespace: "ns", Name: "records"})
	g.Expect(testutil.CollectAndCount(c)).To(Equal(0))
}

func TestNilComplianceRecordsNothing(t *testing.T) {
	var c *metrics.Compliance
	c.Record(&phiguardv1alpha1.PHIWorkload{}, &phiguardv1alpha1.PHIWorkloadStatus{})
	c.Forget(types.NamespacedName{})
}
