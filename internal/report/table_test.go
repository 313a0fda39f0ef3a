package report

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

const wantHeader = "NAMESPACE NAME READY COMPLIANCE SCORE PODS NETWORK ENCRYPTION BACKUP AUDIT TRANSMISSION ACCESS INTEGRITY AVAILABILITY"

func TestTable(t *testing.T) {
	tests := []struct {
		name      string
		workloads []phiguardv1alpha1.PHIWorkload
		want      []string // rows after the header, with runs of spaces collapsed
	}{
		{
			name: "no workloads: header only",
		},
		{
			name:      "status not written yet: every cell -",
			workloads: []phiguardv1alpha1.PHIWorkload{workload("clinic", "records", 1)},
			want:      []string{"clinic records - - - - - - - - - - - -"},
		},
		{
			name: "evaluated: one cell per safeguard condition in order",
			workloads: []phiguardv1alpha1.PHIWorkload{evaluated(workload("clinic", "records", 1), 2,
				metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown, metav1.ConditionTrue,
				metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionTrue)},
			want: []string{"clinic records False NonCompliant 6/8 2 True False Unknown True True True True True"},
		},
		{
			name: "a missing safeguard condition is -; zero pods once reported is 0",
			workloads: []phiguardv1alpha1.PHIWorkload{evaluated(workload("clinic", "records", 1), 0,
				metav1.ConditionTrue, metav1.ConditionTrue, "", metav1.ConditionTrue,
				metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionTrue)},
			want: []string{"clinic records False Pending 7/8 0 True True - True True True True True"},
		},
		{
			name: "rows are sorted by namespace, then name",
			workloads: []phiguardv1alpha1.PHIWorkload{
				workload("zoo", "a", 1), workload("clinic", "records", 1), workload("clinic", "billing", 1),
			},
			want: []string{
				"clinic billing - - - - - - - - - - - -",
				"clinic records - - - - - - - - - - - -",
				"zoo a - - - - - - - - - - - -",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Table(&out, tt.workloads); err != nil {
				t.Fatalf("Table: %v", err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if got := collapse(lines[0]); got != wantHeader {
				t.Errorf("header:\n got %q\nwant %q", got, wantHeader)
			}
			rows := lines[1:]
			if len(rows) != len(tt.want) {
				t.Fatalf("got %d rows, want %d:\n%s", len(rows), len(tt.want), out.String())
			}
			for i := range rows {
				if got := collapse(rows[i]); got != tt.want[i] {
					t.Errorf("row %d:\n got %q\nwant %q", i, got, tt.want[i])
				}
			}
		})
	}
}

func TestTableAlignsColumns(t *testing.T) {
	var out bytes.Buffer
	w := evaluated(workload("clinic", "patient-records", 1), 2, allUnknown()...)
	if err := Table(&out, []phiguardv1alpha1.PHIWorkload{w}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out.String(), "\n")
	// Each column starts at the same offset in the header and in the row.
	if got, want := strings.Index(lines[1], "Unknown"), strings.Index(lines[0], "NETWORK"); got != want {
		t.Errorf("NETWORK column at %d in the row, %d in the header:\n%s", got, want, out.String())
	}
}

func TestHeaderCoversEverySafeguard(t *testing.T) {
	seen := map[string]bool{}
	for _, name := range safeguard.New(safeguard.Options{}).Names() {
		h := Header(name)
		if h == strings.ToUpper(string(name)) {
			t.Errorf("%s has no short header", name)
		}
		if seen[h] {
			t.Errorf("header %s is used twice", h)
		}
		seen[h] = true
	}
	if got := Header("Telepathy"); got != "TELEPATHY" {
		t.Errorf("unknown safeguard header = %q, want TELEPATHY", got)
	}
}

func TestDetail(t *testing.T) {
	tests := []struct {
		name     string
		workload phiguardv1alpha1.PHIWorkload
		want     []string // lines that must appear, with runs of spaces collapsed
		wantNot  []string
	}{
		{
			name:     "status not written yet",
			workload: workload("clinic", "records", 1),
			want: []string{
				"PHIWorkload clinic/records (generation 1, observed 0)",
				"Ready: -",
				"Compliance: -, score -, pods -, policy -",
				"SAFEGUARD SECTION SPECIFICATION MODE STATUS REASON MESSAGE",
				"NetworkIsolated §164.312(e)(1) Required - - - -",
				"Available §164.308(a)(7)(ii)(C) Required - - - -",
			},
			wantNot: []string{"Stalled"},
		},
		{
			name: "evaluated: section, specification, mode and source, condition",
			workload: evaluated(workload("clinic", "records", 3), 2,
				metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown, metav1.ConditionTrue,
				metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionTrue, metav1.ConditionTrue),
			want: []string{
				"PHIWorkload clinic/records (generation 3, observed 3)",
				"Ready: False (SafeguardsFailing) failing: EncryptedAtRest",
				"Compliance: NonCompliant, score 6/8, pods 2, policy default",
				"NetworkIsolated §164.312(e)(1) Required Enforce (Workload) True ReasonNetworkIsolated NetworkIsolated message line two",
				"EncryptedAtRest §164.312(a)(2)(iv) Addressable Enforce (Workload) False ReasonEncryptedAtRest EncryptedAtRest message line two",
				"BackupScheduled §164.308(a)(7)(ii)(A) Required Enforce (Workload) Unknown ReasonBackupScheduled BackupScheduled message line two",
			},
			wantNot: []string{"Stalled"},
		},
		{
			name: "stalled: the Stalled condition is shown",
			workload: func() phiguardv1alpha1.PHIWorkload {
				w := workload("legacy-lab", "records", 1)
				w.Status = phiguardv1alpha1.PHIWorkloadStatus{
					ObservedGeneration: 1,
					Compliance:         phiguardv1alpha1.NonCompliant,
					Conditions: []metav1.Condition{
						{Type: "Stalled", Status: metav1.ConditionTrue, Reason: "NamespaceExempt", Message: "namespace legacy-lab is exempt"},
						{Type: "Ready", Status: metav1.ConditionFalse, Reason: "NamespaceExempt", Message: "namespace legacy-lab is exempt"},
					},
				}
				return w
			}(),
			want: []string{
				"Ready: False (NamespaceExempt) namespace legacy-lab is exempt",
				"Stalled: True (NamespaceExempt) namespace legacy-lab is exempt",
				"Compliance: NonCompliant, score -, pods 0, policy -",
				"IntegrityProtected §164.312(c)(1) Required - - - -",
			},
		},
		{
			name: "a safeguard unknown to this build is listed last",
			workload: func() phiguardv1alpha1.PHIWorkload {
				w := evaluated(workload("clinic", "records", 1), 1, allUnknown()...)
				w.Status.Safeguards = append(w.Status.Safeguards, phiguardv1alpha1.SafeguardStatus{
					Name: "Telepathy", Section: "§0", Specification: phiguardv1alpha1.Required,
					Mode: phiguardv1alpha1.ModeAudit, ModeSource: phiguardv1alpha1.SourceDefault,
					Status: metav1.ConditionTrue, Reason: "Psychic",
				})
				return w
			}(),
			want: []string{"Telepathy §0 Required Audit (Default) - - -"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Detail(&out, &tt.workload); err != nil {
				t.Fatalf("Detail: %v", err)
			}
			lines := strings.Split(out.String(), "\n")
			for i := range lines {
				lines[i] = collapse(lines[i])
			}
			for _, want := range tt.want {
				if !containsLine(lines, want) {
					t.Errorf("missing line %q in:\n%s", want, out.String())
				}
			}
			for _, not := range tt.wantNot {
				if strings.Contains(out.String(), not) {
					t.Errorf("unexpected %q in:\n%s", not, out.String())
				}
			}
		})
	}
	t.Run("safeguards follow safeguard.New(safeguard.Options{}).Names()", func(t *testing.T) {
		var out bytes.Buffer
		w := evaluated(workload("clinic", "records", 1), 1, allUnknown()...)
		if err := Detail(&out, &w); err != nil {
			t.Fatal(err)
		}
		last := -1
		for _, name := range safeguard.New(safeguard.Options{}).Names() {
			i := strings.Index(out.String(), "  "+string(name)+" ")
			if i <= last {
				t.Fatalf("%s out of order in:\n%s", name, out.String())
			}
			last = i
		}
	})
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrorsAreReturned(t *testing.T) {
	w := workload("clinic", "records", 1)
	if err := Table(failingWriter{}, []phiguardv1alpha1.PHIWorkload{w}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Table error = %v, want one wrapping disk full", err)
	}
	if err := Detail(failingWriter{}, &w); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Detail error = %v, want one wrapping disk full", err)
	}
}

func workload(namespace, name string, generation int64) phiguardv1alpha1.PHIWorkload {
	return phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Generation: generation}}
}

// evaluated fills the status as the controller would, with one status per
// safeguard in safeguard.New(safeguard.Options{}).Names(); an empty status leaves that condition out.
func evaluated(w phiguardv1alpha1.PHIWorkload, pods int32, statuses ...metav1.ConditionStatus) phiguardv1alpha1.PHIWorkload {
	st := phiguardv1alpha1.PHIWorkloadStatus{ObservedGeneration: w.Generation, MatchedPods: pods, Policy: "default"}
	var failing []string
	holding := 0
	for i, name := range safeguard.New(safeguard.Options{}).Names() {
		s := statuses[i]
		if s == "" {
			continue
		}
		rule := safeguard.New(safeguard.Options{}).Rule(name)
		st.Conditions = append(st.Conditions, metav1.Condition{
			Type: string(name), Status: s, Reason: "Reason" + string(name),
			Message: string(name) + " message\nline two",
		})
		st.Safeguards = append(st.Safeguards, phiguardv1alpha1.SafeguardStatus{
			Name: name, Section: rule.Section, Specification: rule.Specification,
			Mode: phiguardv1alpha1.ModeEnforce, ModeSource: phiguardv1alpha1.SourceWorkload,
			Status: s, Reason: "Reason" + string(name),
		})
		switch s {
		case metav1.ConditionTrue:
			holding++
		case metav1.ConditionFalse:
			failing = append(failing, string(name))
		}
	}
	ready := metav1.Condition{Type: "Ready", Status: metav1.ConditionFalse, Reason: "SafeguardsNotEvaluated", Message: "not evaluated"}
	st.Compliance = phiguardv1alpha1.Pending
	if len(failing) > 0 {
		ready.Reason, ready.Message = "SafeguardsFailing", "failing: "+strings.Join(failing, ", ")
		st.Compliance = phiguardv1alpha1.NonCompliant
	}
	st.Conditions = append(st.Conditions, ready)
	st.Score = fmt.Sprintf("%d/%d", holding, len(safeguard.New(safeguard.Options{}).Names()))
	w.Status = st
	return w
}

func allUnknown() []metav1.ConditionStatus {
	out := make([]metav1.ConditionStatus, len(safeguard.New(safeguard.Options{}).Names()))
	for i := range out {
		out[i] = metav1.ConditionUnknown
	}
	return out
}

// collapse replaces each run of spaces with one, so that expectations do not
// depend on column widths.
func collapse(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func containsLine(lines []string, want string) bool {
	want = collapse(want)
	for _, l := range lines {
		if l == want {
			return true
		}
	}
	return false
}
