package cli_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/cli"
)

// testClock hands out times relative to the real clock, and puts fixed ones
// of the same width in their place in a command's output, so that golden
// files do not change with the clock while the columns stay aligned. The
// fixed times are those of a clock that read 2030-01-01T00:00:00Z.
type testClock struct {
	now      time.Time
	replaced map[string]string
}

// fixedNow is what the golden files take now to be.
var fixedNow = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestClock() *testClock {
	return &testClock{now: time.Now().UTC().Truncate(time.Second), replaced: map[string]string{}}
}

// at returns now+d, and remembers to show it as fixedNow+d.
func (tl *testClock) at(d time.Duration) metav1.Time {
	real := tl.now.Add(d)
	tl.replaced[real.Format(time.RFC3339)] = fixedNow.Add(d).Format(time.RFC3339)
	return metav1.NewTime(real)
}

// fixed replaces each time handed out in out by its fixed counterpart.
func (tl *testClock) fixed(out string) string {
	for real, fixed := range tl.replaced {
		out = strings.ReplaceAll(out, real, fixed)
	}
	return out
}

// putWorkload creates the workload (in a namespace that exists) and, when
// st is not nil, writes the status a manager would have written.
func putWorkload(t *testing.T, w *phiguardv1alpha1.PHIWorkload, st *phiguardv1alpha1.PHIWorkloadStatus) {
	t.Helper()
	if err := k8sClient.Create(t.Context(), w); err != nil {
		t.Fatalf("creating PHIWorkload %s/%s: %v", w.Namespace, w.Name, err)
	}
	if st == nil {
		return
	}
	st.ObservedGeneration = w.Generation
	w.Status = *st
	if err := k8sClient.Status().Update(t.Context(), w); err != nil {
		t.Fatalf("writing the status of PHIWorkload %s/%s: %v", w.Namespace, w.Name, err)
	}
}

// statusCondition is a condition as the manager writes it.
func statusCondition(typ string, status metav1.ConditionStatus, reason, message string) metav1.Condition {
	return metav1.Condition{Type: typ, Status: status, Reason: reason, Message: message,
		LastTransitionTime: metav1.NewTime(fixedNow), ObservedGeneration: 1}
}

// documentedDecision is a decision with a justification of its kind.
func documentedDecision(sg phiguardv1alpha1.SafeguardName, kind phiguardv1alpha1.DecisionKind, approvedBy string, expires metav1.Time) phiguardv1alpha1.Decision {
	d := phiguardv1alpha1.Decision{Safeguard: sg, Kind: kind, ApprovedBy: approvedBy, Expires: expires,
		Justification: "the volumes hold public reference data only, never ePHI"}
	if sg == phiguardv1alpha1.TransmissionSecure {
		d.Justification = "the pods' traffic never leaves nodes whose links WireGuard encrypts"
	}
	if kind == phiguardv1alpha1.DecisionAlternative {
		d.AlternativeMeasure = "WireGuard between every node (Cilium transparent encryption)"
	}
	return d
}

// TestDecisions covers the decisions of two namespaces: in one namespace
// (table, wide, JSON), in every namespace (JSON, as other tests' workloads
// show there too), and none.
func TestDecisions(t *testing.T) {
	tl := newTestClock()
	createNamespace(t, "decisions-a")
	createNamespace(t, "decisions-b")
	records := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: "decisions-a", Name: "records"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
				EncryptionAtRest:     &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff},
				TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff},
			},
			Decisions: []phiguardv1alpha1.Decision{
				documentedDecision(phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.DecisionNotReasonable, "security-officer@clinic.example", tl.at(30*24*time.Hour+12*time.Hour)),
				documentedDecision(phiguardv1alpha1.TransmissionSecure, phiguardv1alpha1.DecisionAlternative, "ciso@clinic.example", tl.at(-49*time.Hour)),
			},
		},
	}
	putWorkload(t, records, &phiguardv1alpha1.PHIWorkloadStatus{
		Conditions: []metav1.Condition{
			statusCondition(string(phiguardv1alpha1.EncryptedAtRest), metav1.ConditionTrue, phiguardv1alpha1.ReasonDocumentedDecision, "off under a documented decision"),
			statusCondition(string(phiguardv1alpha1.TransmissionSecure), metav1.ConditionFalse, phiguardv1alpha1.ReasonDecisionExpired, "the decision expired"),
		},
		Safeguards: []phiguardv1alpha1.SafeguardStatus{
			{Name: phiguardv1alpha1.EncryptedAtRest, Section: "§164.312(a)(2)(iv)", Specification: phiguardv1alpha1.Addressable,
				Mode: phiguardv1alpha1.ModeOff, ModeSource: phiguardv1alpha1.SourceWorkload, Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonDocumentedDecision},
			{Name: phiguardv1alpha1.TransmissionSecure, Section: "§164.312(e)(2)(ii)", Specification: phiguardv1alpha1.Addressable,
				Mode: phiguardv1alpha1.ModeOff, ModeSource: phiguardv1alpha1.SourceWorkload, Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonDecisionExpired},
		},
		Decisions: []phiguardv1alpha1.DecisionStatus{
			{Safeguard: phiguardv1alpha1.EncryptedAtRest, ApprovedBy: "security-officer@clinic.example", RecordedBy: "alice@clinic.example"},
			{Safeguard: phiguardv1alpha1.TransmissionSecure, ApprovedBy: "ciso@clinic.example"},
		},
	})
	// Not evaluated yet: no mode, no judgment, no recorder.
	putWorkload(t, &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: "decisions-a", Name: "intake"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector:          metav1.LabelSelector{MatchLabels: map[string]string{"app": "intake"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}},
			Decisions: []phiguardv1alpha1.Decision{
				documentedDecision(phiguardv1alpha1.TransmissionSecure, phiguardv1alpha1.DecisionNotReasonable, "ciso@clinic.example", tl.at(3*24*time.Hour+12*time.Hour+30*time.Minute)),
			},
		},
	}, nil)
	// A decision the workload no longer uses: its safeguard is Enforce.
	putWorkload(t, &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: "decisions-b", Name: "lab"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "lab"}},
			Decisions: []phiguardv1alpha1.Decision{
				documentedDecision(phiguardv1alpha1.EncryptedAtRest, phiguardv1alpha1.DecisionNotReasonable, "security-officer@clinic.example", tl.at(30*24*time.Hour+12*time.Hour)),
			},
		},
	}, &phiguardv1alpha1.PHIWorkloadStatus{
		Conditions: []metav1.Condition{
			statusCondition(string(phiguardv1alpha1.EncryptedAtRest), metav1.ConditionTrue, phiguardv1alpha1.ReasonAllVolumesEncrypted, "all 1 persistent volume claims are encrypted"),
		},
		Safeguards: []phiguardv1alpha1.SafeguardStatus{
			{Name: phiguardv1alpha1.EncryptedAtRest, Section: "§164.312(a)(2)(iv)", Specification: phiguardv1alpha1.Addressable,
				Mode: phiguardv1alpha1.ModeEnforce, ModeSource: phiguardv1alpha1.SourceDefault, Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonAllVolumesEncrypted},
		},
		Decisions: []phiguardv1alpha1.DecisionStatus{
			{Safeguard: phiguardv1alpha1.EncryptedAtRest, ApprovedBy: "security-officer@clinic.example", RecordedBy: "bob@clinic.example"},
		},
	})

	for _, tt := range []struct{ golden, output string }{
		{"decisions", "table"}, {"decisions-wide", "wide"}, {"decisions-json", "json"},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			out, err := run(t, "decisions", "-n", "decisions-a", "-o", tt.output)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.golden, tl.fixed(out))
		})
	}

	t.Run("every namespace, soonest expiry first", func(t *testing.T) {
		out, err := run(t, "decisions", "-A", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		var res cli.DecisionsResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("decoding %s: %v", out, err)
		}
		var got []string
		for _, d := range res.Decisions {
			if strings.HasPrefix(d.Namespace, "decisions-") {
				got = append(got, strings.Join([]string{d.Namespace, d.Workload, string(d.Safeguard), string(d.Mode), d.Judged, d.RecordedBy}, " "))
			}
		}
		want := []string{
			"decisions-a records TransmissionSecure Off DecisionExpired ",
			"decisions-a intake TransmissionSecure   ",
			"decisions-a records EncryptedAtRest Off DocumentedDecision alice@clinic.example",
			"decisions-b lab EncryptedAtRest Enforce AllVolumesEncrypted bob@clinic.example",
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("decisions -A:\n got %q\nwant %q", got, want)
		}
	})

	t.Run("none", func(t *testing.T) {
		out, err := run(t, "decisions", "-n", "decisions-none")
		if err != nil {
			t.Fatal(err)
		}
		if want := "No decisions found in decisions-none namespace.\n"; out != want {
			t.Errorf("got %q, want %q", out, want)
		}
		out, err = run(t, "decisions", "-n", "decisions-none", "-o", "json")
		if err != nil {
			t.Fatal(err)
		}
		if want := "{\n  \"decisions\": []\n}\n"; out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})

	t.Run("bad output format", func(t *testing.T) {
		_, err := run(t, "decisions", "-n", "decisions-a", "-o", "name")
		if want := `unknown output format "name": use one of table, wide, json, yaml`; err == nil || err.Error() != want {
			t.Errorf("got error %v, want %q", err, want)
		}
	})
}
