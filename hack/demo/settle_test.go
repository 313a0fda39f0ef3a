package main

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

func TestUnsettled(t *testing.T) {
	key := types.NamespacedName{Namespace: "clinic", Name: "records"}
	tests := []struct {
		name     string
		list     []phiguardv1alpha1.PHIWorkload
		expected []types.NamespacedName
		want     []string // substrings, one per pending entry
	}{
		{name: "nothing expected, nothing listed"},
		{name: "expected but not listed", expected: []types.NamespacedName{key}, want: []string{"clinic/records: not found"}},
		{
			name:     "status not written",
			list:     []phiguardv1alpha1.PHIWorkload{workload(2, 0)},
			expected: []types.NamespacedName{key},
			want:     []string{"observedGeneration is 0, metadata.generation 2; no condition NetworkIsolated, EncryptedAtRest"},
		},
		{
			name: "an older generation with every condition",
			list: []phiguardv1alpha1.PHIWorkload{workload(2, 1, allConditions()...)},
			want: []string{"clinic/records: status.observedGeneration is 1, metadata.generation 2"},
		},
		{
			name: "current generation without Ready",
			list: []phiguardv1alpha1.PHIWorkload{workload(1, 1, allConditions()[:len(safeguard.New(safeguard.Options{}).Names())]...)},
			want: []string{"clinic/records: no condition Ready"},
		},
		{
			name:     "settled",
			list:     []phiguardv1alpha1.PHIWorkload{workload(3, 3, allConditions()...)},
			expected: []types.NamespacedName{key},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := unsettled(tt.list, tt.expected)
			if len(got) != len(tt.want) {
				t.Fatalf("unsettled = %q, want %d entries like %q", got, len(tt.want), tt.want)
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("entry %d = %q, want it to contain %q", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestStalled(t *testing.T) {
	stalledCond := metav1.Condition{Type: phiguardv1alpha1.StalledCondition, Status: metav1.ConditionTrue, Reason: "NamespaceExempt",
		Message: "namespace clinic is exempt", ObservedGeneration: 2}
	if err := stalled([]phiguardv1alpha1.PHIWorkload{workload(2, 2, stalledCond)}); err == nil ||
		!strings.Contains(err.Error(), "clinic/records is Stalled (NamespaceExempt): namespace clinic is exempt") {
		t.Errorf("stalled = %v, want the workload, reason and message", err)
	}
	if err := stalled([]phiguardv1alpha1.PHIWorkload{workload(3, 2, stalledCond)}); err != nil {
		t.Errorf("stalled on an older generation = %v, want nil: the new spec may fix it", err)
	}
	if err := stalled([]phiguardv1alpha1.PHIWorkload{workload(1, 1, allConditions()...)}); err != nil {
		t.Errorf("stalled = %v, want nil", err)
	}
}

func workload(generation, observed int64, conditions ...metav1.Condition) phiguardv1alpha1.PHIWorkload {
	return phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records", Generation: generation},
		Status:     phiguardv1alpha1.PHIWorkloadStatus{ObservedGeneration: observed, Conditions: conditions},
	}
}

// allConditions is one Unknown condition per safeguard, then Ready.
func allConditions() []metav1.Condition {
	var out []metav1.Condition
	for _, name := range safeguard.New(safeguard.Options{}).Names() {
		out = append(out, metav1.Condition{Type: string(name), Status: metav1.ConditionUnknown, Reason: "NoPodsSelected"})
	}
	return append(out, metav1.Condition{Type: phiguardv1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Reason: "SafeguardsNotEvaluated"})
}

func TestNotReadyAndNotDrilled(t *testing.T) {
	key := types.NamespacedName{Namespace: "clinic", Name: "records"}
	backup := func(reason string) metav1.Condition {
		return metav1.Condition{Type: string(phiguardv1alpha1.BackupScheduled), Status: metav1.ConditionTrue, Reason: reason, Message: "fresh"}
	}
	ready := metav1.Condition{Type: phiguardv1alpha1.ReadyCondition, Status: metav1.ConditionTrue, Reason: "Compliant"}
	notYet := metav1.Condition{Type: phiguardv1alpha1.ReadyCondition, Status: metav1.ConditionFalse, Message: "failing: BackupScheduled"}
	for _, tt := range []struct {
		name              string
		conditions        []metav1.Condition
		notReady, drilled string
		pending           bool // the first drill has not ended
	}{
		{"nothing yet", nil, "clinic/records: meets every safeguard in the samples, but is not Ready (no Ready condition)",
			"clinic/records: no restore drill verified yet (no BackupScheduled condition)", true},
		{"fresh, not drilled, not Ready", []metav1.Condition{backup(phiguardv1alpha1.ReasonBackupFresh), notYet},
			"clinic/records: meets every safeguard in the samples, but is not Ready (failing: BackupScheduled)",
			"clinic/records: no restore drill verified yet (BackupFresh: fresh)", true},
		{"drilled and Ready", []metav1.Condition{backup(phiguardv1alpha1.ReasonRestoreVerified), ready}, "", "", false},
		{"the drill failed", []metav1.Condition{backup(phiguardv1alpha1.ReasonRestoreFailed), notYet},
			"clinic/records: meets every safeguard in the samples, but is not Ready (failing: BackupScheduled)",
			"clinic/records: no restore drill verified yet (RestoreFailed: fresh)", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			list := []phiguardv1alpha1.PHIWorkload{workload(1, 1, tt.conditions...)}
			for _, c := range []struct {
				got  []string
				want string
			}{{notReady(list, []types.NamespacedName{key}), tt.notReady}, {notDrilled(list, []types.NamespacedName{key}), tt.drilled}} {
				if want := []string{c.want}; c.want == "" && len(c.got) != 0 || c.want != "" && (len(c.got) != 1 || c.got[0] != want[0]) {
					t.Errorf("got %q, want %q", c.got, c.want)
				}
			}
			pending := drillPending(list, []types.NamespacedName{key})
			if tt.pending != (len(pending) == 1) || len(pending) > 1 {
				t.Errorf("drillPending = %q, want pending: %v", pending, tt.pending)
			}
			if got := notDrilled(list, []types.NamespacedName{{Namespace: "clinic", Name: "other"}}); len(got) != 0 {
				t.Errorf("a workload not listed is not judged: %q", got)
			}
		})
	}
}
