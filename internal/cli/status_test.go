package cli_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/cli"
)

// createNamespace creates a namespace named for the test.
func createNamespace(t *testing.T, name string) string {
	t.Helper()
	if err := k8sClient.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

// createWorkload creates a PHIWorkload selecting app=name and writes the
// status a manager would have written: every safeguard True except those in
// failing, which are False with the given reason.
func createWorkload(t *testing.T, ns, name string, pods int32, failing map[phiguardv1alpha1.SafeguardName]string) {
	t.Helper()
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{
			MatchLabels: map[string]string{"app": name},
		}},
	}
	if err := k8sClient.Create(t.Context(), w); err != nil {
		t.Fatalf("creating PHIWorkload %s/%s: %v", ns, name, err)
	}
	names := []phiguardv1alpha1.SafeguardName{
		phiguardv1alpha1.NetworkIsolated, phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.BackupScheduled,
		phiguardv1alpha1.AuditLogging, phiguardv1alpha1.TransmissionSecure, phiguardv1alpha1.AccessControlled,
		phiguardv1alpha1.IntegrityProtected, phiguardv1alpha1.Available,
	}
	st := &w.Status
	st.ObservedGeneration, st.MatchedPods, st.Policy = w.Generation, pods, phiguardv1alpha1.DefaultPolicyName
	var notHolding []string
	for _, n := range names {
		c := metav1.Condition{Type: string(n), Status: metav1.ConditionTrue, Reason: "Holds", Message: string(n) + " holds"}
		if reason, ok := failing[n]; ok {
			c.Status, c.Reason, c.Message = metav1.ConditionFalse, reason, string(n)+" does not hold: "+reason
			notHolding = append(notHolding, string(n))
		}
		meta.SetStatusCondition(&st.Conditions, c)
		st.Safeguards = append(st.Safeguards, phiguardv1alpha1.SafeguardStatus{
			Name: n, Section: "§164.312", Specification: phiguardv1alpha1.Required,
			Mode: phiguardv1alpha1.ModeAudit, ModeSource: phiguardv1alpha1.SourceDefault, Status: c.Status, Reason: c.Reason,
		})
	}
	ready := metav1.Condition{Type: phiguardv1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Compliant", Message: "every safeguard holds"}
	st.Compliance = phiguardv1alpha1.Compliant
	if len(notHolding) > 0 {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "NonCompliant", "failing: "+strings.Join(notHolding, ", ")
		st.Compliance = phiguardv1alpha1.NonCompliant
	}
	meta.SetStatusCondition(&st.Conditions, ready)
	st.Score = fmt.Sprintf("%d/%d", len(names)-len(notHolding), len(names))
	if err := k8sClient.Status().Update(t.Context(), w); err != nil {
		t.Fatalf("writing the status of %s/%s: %v", ns, name, err)
	}
}

func TestStatus(t *testing.T) {
	ns := createNamespace(t, "cli-status")
	createWorkload(t, ns, "records", 2, nil)
	createWorkload(t, ns, "intake", 1, map[phiguardv1alpha1.SafeguardName]string{
		phiguardv1alpha1.BackupScheduled: phiguardv1alpha1.ReasonBackupStale,
		phiguardv1alpha1.Available:       phiguardv1alpha1.ReasonNoDisruptionBudget,
	})

	for _, tc := range []struct{ name, output string }{
		{"status-table", "table"}, {"status-wide", "wide"}, {"status-json", "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, "status", "-n", ns, "-o", tc.output)
			if err != nil {
				t.Fatalf("status -o %s: %v", tc.output, err)
			}
			golden(t, tc.name, out)
		})
	}

	t.Run("json is the result", func(t *testing.T) {
		out, err := run(t, "status", "-n", ns, "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var res cli.StatusResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("decoding %s: %v", out, err)
		}
		if len(res.Workloads) != 2 || res.Workloads[0].Name != "intake" || res.Workloads[0].Ready != metav1.ConditionFalse ||
			res.Workloads[1].Name != "records" || res.Workloads[1].Score != "8/8" {
			t.Errorf("unexpected result: %+v", res)
		}
	})

	t.Run("an empty namespace says so", func(t *testing.T) {
		empty := createNamespace(t, "cli-status-empty")
		out, err := run(t, "status", "-n", empty)
		if err != nil {
			t.Fatal(err)
		}
		if want := "No PHIWorkloads found in cli-status-empty namespace.\n"; out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})

	t.Run("an unknown output format is refused", func(t *testing.T) {
		_, err := run(t, "status", "-n", ns, "-o", "xml")
		if err == nil || err.Error() != `unknown output format "xml": use one of table, wide, json, yaml` {
			t.Errorf("got error %v", err)
		}
	})
}
