package cli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/cli"
)

// explainedSafeguard is one safeguard's row of status and condition, as
// the manager writes them.
type explainedSafeguard struct {
	name          phiguardv1alpha1.SafeguardName
	section       string
	specification phiguardv1alpha1.Specification
	mode          phiguardv1alpha1.Mode
	source        phiguardv1alpha1.SettingSource
	status        metav1.ConditionStatus
	reason        string
	message       string
}

// explainStatus is the status a manager writes for the safeguards, with
// Ready False (SafeguardsFailing) unless every one holds.
func explainStatus(pods int32, safeguards []explainedSafeguard) *phiguardv1alpha1.PHIWorkloadStatus {
	st := &phiguardv1alpha1.PHIWorkloadStatus{MatchedPods: pods, Policy: phiguardv1alpha1.DefaultPolicyName}
	var failing []string
	for _, s := range safeguards {
		st.Conditions = append(st.Conditions, statusCondition(string(s.name), s.status, s.reason, s.message))
		st.Safeguards = append(st.Safeguards, phiguardv1alpha1.SafeguardStatus{Name: s.name, Section: s.section,
			Specification: s.specification, Mode: s.mode, ModeSource: s.source, Status: s.status, Reason: s.reason})
		if s.status != metav1.ConditionTrue {
			failing = append(failing, string(s.name))
		}
	}
	st.Score = fmt.Sprintf("%d/%d", len(safeguards)-len(failing), len(safeguards))
	ready := statusCondition(phiguardv1alpha1.ReadyCondition, metav1.ConditionTrue, phiguardv1alpha1.CompliantReason, "all 8 safeguards hold")
	st.Compliance = phiguardv1alpha1.Compliant
	if len(failing) > 0 {
		ready = statusCondition(phiguardv1alpha1.ReadyCondition, metav1.ConditionFalse, phiguardv1alpha1.SafeguardsFailingReason,
			"failing: "+strings.Join(failing, ", "))
		st.Compliance = phiguardv1alpha1.NonCompliant
	}
	st.Conditions = append(st.Conditions, ready)
	return st
}

// TestExplain explains a workload that fails most safeguards in its own
// way, each with the fix its reason calls for, and has two decisions.
func TestExplain(t *testing.T) {
	tl := newTestClock()
	ns := createNamespace(t, "explain-clinic")
	expired, valid := tl.at(-49*time.Hour), tl.at(30*24*time.Hour+12*time.Hour)
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
				EncryptionAtRest:     &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff},
				TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff},
				Availability:         &phiguardv1alpha1.AvailabilitySpec{Mode: phiguardv1alpha1.ModeAudit},
			},
			Decisions: []phiguardv1alpha1.Decision{
				documentedDecision(phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.DecisionNotReasonable, "security-officer@clinic.example", expired),
				documentedDecision(phiguardv1alpha1.TransmissionSecure, phiguardv1alpha1.DecisionAlternative, "ciso@clinic.example", valid),
			},
		},
	}
	rfc := func(t metav1.Time) string { return t.UTC().Format(time.RFC3339) }
	st := explainStatus(2, []explainedSafeguard{
		{phiguardv1alpha1.NetworkIsolated, "§164.312(e)(1)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeEnforce, phiguardv1alpha1.SourceDefault,
			metav1.ConditionFalse, phiguardv1alpha1.ReasonIsolationBypassed,
			"NetworkPolicy phiguard-records is applied, but NetworkPolicy explain-clinic/allow-monitoring opens ingress from any source " +
				"on port 9090/TCP for 2 of 2 selected pods (records-0, records-1), wider than networkIsolation declares; NetworkPolicies " +
				"add up, so narrow or remove it, or declare what it opens in networkIsolation"},
		{phiguardv1alpha1.EncryptedAtRest, "§164.312(a)(2)(iv)", phiguardv1alpha1.Addressable, phiguardv1alpha1.ModeOff, phiguardv1alpha1.SourceWorkload,
			metav1.ConditionFalse, phiguardv1alpha1.ReasonDecisionExpired,
			"the decision (kind NotReasonable) approved by security-officer@clinic.example expired at " + rfc(expired) +
				"; review and renew it, or turn EncryptedAtRest on"},
		{phiguardv1alpha1.BackupScheduled, "§164.308(a)(7)(ii)(A)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeEnforce, phiguardv1alpha1.SourceDefault,
			metav1.ConditionFalse, phiguardv1alpha1.ReasonBackupFailed,
			"the latest backup phiguard-explain-clinic-records-20291231020000 of Schedule phiguard-explain-clinic-records ended Failed; " +
				"see `velero backup describe phiguard-explain-clinic-records-20291231020000`; storage: BackupStorageLocation default " +
				"encrypts with KMS key alias/velero"},
		{phiguardv1alpha1.AuditLogging, "§164.312(b)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit, phiguardv1alpha1.SourcePolicy,
			metav1.ConditionFalse, phiguardv1alpha1.ReasonPodsWithoutSidecar,
			"1 of 2 selected pods lack the audit sidecar: records-1 (no phiguard-audit container); pods created before the " +
				"PHIWorkload, before its sidecar settings changed or while phiguard was down get it when re-created"},
		{phiguardv1alpha1.TransmissionSecure, "§164.312(e)(2)(ii)", phiguardv1alpha1.Addressable, phiguardv1alpha1.ModeOff, phiguardv1alpha1.SourceWorkload,
			metav1.ConditionTrue, phiguardv1alpha1.ReasonDocumentedDecision,
			"off under a documented decision (kind Alternative) approved by ciso@clinic.example, valid until " + rfc(valid)},
		{phiguardv1alpha1.AccessControlled, "§164.312(a)(1)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit, phiguardv1alpha1.SourceDefault,
			metav1.ConditionFalse, phiguardv1alpha1.ReasonTokenMounted,
			"ServiceAccount records's token is mounted in pods records-0 (automountServiceAccountToken), records-1 " +
				"(automountServiceAccountToken). To fix: set automountServiceAccountToken: false on the pods or their ServiceAccount. " +
				"Report: who may exec into, attach to, port-forward to or add ephemeral containers to pods in explain-clinic (RBAC): " +
				"ClusterRole cluster-admin (Group system:masters)"},
		{phiguardv1alpha1.IntegrityProtected, "§164.312(c)(1)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit, phiguardv1alpha1.SourceDefault,
			metav1.ConditionTrue, phiguardv1alpha1.ReasonContainersImmutable,
			"every container of the 2 selected pods passes the restricted Pod Security Standard with a read-only root filesystem, " +
				"and runs an image pinned by digest"},
		{phiguardv1alpha1.Available, "§164.308(a)(7)(ii)(C)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit, phiguardv1alpha1.SourceWorkload,
			metav1.ConditionFalse, phiguardv1alpha1.ReasonTooFewReplicas,
			"1 owner runs below availability.minReplicas 2: Deployment records (1 replica); raise spec.replicas (or the " +
				"HorizontalPodAutoscaler's minReplicas) to at least 2"},
	})
	st.Decisions = []phiguardv1alpha1.DecisionStatus{
		{Safeguard: phiguardv1alpha1.EncryptedAtRest, ApprovedBy: "security-officer@clinic.example", RecordedBy: "alice@clinic.example"},
		{Safeguard: phiguardv1alpha1.TransmissionSecure, ApprovedBy: "ciso@clinic.example", RecordedBy: "bob@clinic.example"},
	}
	putWorkload(t, w, st)

	for _, tt := range []struct{ golden, output string }{
		{"explain", "table"}, {"explain-wide", "wide"}, {"explain-yaml", "yaml"},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			out, err := run(t, "explain", "records", "-n", ns, "-o", tt.output)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, tl.fixed(out))
		})
	}

	t.Run("json carries each safeguard's fix", func(t *testing.T) {
		out, err := run(t, "explain", "records", "-n", ns, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var res cli.ExplainResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("decoding %s: %v", out, err)
		}
		got := make([]string, 0, len(res.Safeguards))
		for _, s := range res.Safeguards {
			got = append(got, fmt.Sprintf("%s %s %s %s fix=%t", s.Name, s.Section, s.Mode, s.Reason, s.Fix != ""))
		}
		want := []string{
			"NetworkIsolated §164.312(e)(1) Enforce IsolationBypassed fix=true",
			"EncryptedAtRest §164.312(a)(2)(iv) Off DecisionExpired fix=true",
			"BackupScheduled §164.308(a)(7)(ii)(A) Enforce BackupFailed fix=true",
			"AuditLogging §164.312(b) Audit PodsWithoutSidecar fix=true",
			"TransmissionSecure §164.312(e)(2)(ii) Off DocumentedDecision fix=false",
			"AccessControlled §164.312(a)(1) Audit TokenMounted fix=true",
			"IntegrityProtected §164.312(c)(1) Audit ContainersImmutable fix=false",
			"Available §164.308(a)(7)(ii)(C) Audit TooFewReplicas fix=true",
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("safeguards:\n got %q\nwant %q", got, want)
		}
		if len(res.Decisions) != 2 || !res.Decisions[0].Expired || res.Decisions[1].Expired {
			t.Errorf("decisions: got %+v, want the expired one first, then the valid one", res.Decisions)
		}
	})
}

// TestExplainStalled: every safeguard carries the Stalled reason, whose fix
// is said once.
func TestExplainStalled(t *testing.T) {
	ns := createNamespace(t, "explain-stalled")
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "intake"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector:          metav1.LabelSelector{MatchLabels: map[string]string{"app": "intake"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{Backup: &phiguardv1alpha1.BackupSpec{Schedule: "0 25 * * *"}},
		},
	}
	msg := `backup.schedule "0 25 * * *" is not a valid cron schedule: end of range (25) above maximum (23): 25`
	defaults := []struct {
		name    phiguardv1alpha1.SafeguardName
		section string
		spec    phiguardv1alpha1.Specification
		mode    phiguardv1alpha1.Mode
	}{
		{phiguardv1alpha1.NetworkIsolated, "§164.312(e)(1)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.EncryptedAtRest, "§164.312(a)(2)(iv)", phiguardv1alpha1.Addressable, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.BackupScheduled, "§164.308(a)(7)(ii)(A)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.AuditLogging, "§164.312(b)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.TransmissionSecure, "§164.312(e)(2)(ii)", phiguardv1alpha1.Addressable, phiguardv1alpha1.ModeEnforce},
		{phiguardv1alpha1.AccessControlled, "§164.312(a)(1)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit},
		{phiguardv1alpha1.IntegrityProtected, "§164.312(c)(1)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit},
		{phiguardv1alpha1.Available, "§164.308(a)(7)(ii)(C)", phiguardv1alpha1.Required, phiguardv1alpha1.ModeAudit},
	}
	safeguards := make([]explainedSafeguard, 0, len(defaults))
	for _, s := range defaults {
		safeguards = append(safeguards, explainedSafeguard{s.name, s.section, s.spec, s.mode, phiguardv1alpha1.SourceDefault,
			metav1.ConditionUnknown, phiguardv1alpha1.ReasonInvalidSchedule, "not evaluated: " + msg})
	}
	st := explainStatus(1, safeguards)
	st.Conditions = []metav1.Condition{
		statusCondition(phiguardv1alpha1.StalledCondition, metav1.ConditionTrue, phiguardv1alpha1.ReasonInvalidSchedule, msg),
		statusCondition(phiguardv1alpha1.ReadyCondition, metav1.ConditionFalse, phiguardv1alpha1.ReasonInvalidSchedule, msg),
	}
	for _, s := range safeguards {
		st.Conditions = append(st.Conditions, statusCondition(string(s.name), s.status, s.reason, s.message))
	}
	putWorkload(t, w, st)

	out, err := run(t, "explain", "intake", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "explain-stalled", out)
}

// TestExplainNotEvaluated: a workload the manager has not written a status for.
func TestExplainNotEvaluated(t *testing.T) {
	ns := createNamespace(t, "explain-new")
	putWorkload(t, &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "fresh"},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "fresh"}}},
	}, nil)
	out, err := run(t, "explain", "fresh", "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "explain-not-evaluated", out)
}

func TestExplainErrors(t *testing.T) {
	ns := createNamespace(t, "explain-errors")
	putWorkload(t, &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "known"},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "known"}}},
	}, nil)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown workload", []string{"explain", "x", "-n", ns},
			"PHIWorkload explain-errors/x not found; kubectl phiguard status -n explain-errors lists them"},
		{"bad output format", []string{"explain", "known", "-n", ns, "-o", "name"},
			`unknown output format "name": use one of table, wide, json, yaml`},
		{"every namespace", []string{"explain", "known", "-A"},
			"explain reads one PHIWorkload: name its namespace with -n, not -A"},
		{"no workload named", []string{"explain", "-n", ns}, "accepts 1 arg(s), received 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, tt.args...)
			if err == nil || err.Error() != tt.want {
				t.Errorf("got error %v, want %q", err, tt.want)
			}
			if out != "" {
				t.Errorf("printed %q on an error", out)
			}
		})
	}

	t.Run("completes workload names", func(t *testing.T) {
		out, err := run(t, "__complete", "explain", "-n", ns, "")
		if err != nil {
			t.Fatal(err)
		}
		if want := "known\n:4\n"; out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})
}
