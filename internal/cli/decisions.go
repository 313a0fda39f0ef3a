package cli

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/report"
)

// expiredCell is what the IN column of a decision past its expiry says.
const expiredCell = "EXPIRED"

// DecisionRow is one documented decision (an entry of a PHIWorkload's
// spec.decisions) in `decisions -o json|yaml`, and in explain's result.
type DecisionRow struct {
	// Namespace and Workload name the PHIWorkload that holds the decision.
	Namespace string `json:"namespace"`
	Workload  string `json:"workload"`
	// Safeguard is the safeguard the decision turns off (a decision only
	// ever allows mode Off).
	Safeguard phiguardv1alpha1.SafeguardName `json:"safeguard"`
	// Kind is Alternative or NotReasonable.
	Kind phiguardv1alpha1.DecisionKind `json:"kind"`
	// Mode is the safeguard's effective mode as status.safeguards reports it:
	// Off when the decision is in use; empty until phiguard has evaluated
	// the workload.
	Mode phiguardv1alpha1.Mode `json:"mode,omitempty"`
	// ApprovedBy is the decision's approvedBy, as written.
	ApprovedBy string `json:"approvedBy"`
	// RecordedBy is the user whose request added or last changed the
	// decision, from status.decisions; empty when the status does not say.
	RecordedBy string `json:"recordedBy,omitempty"`
	// Expires is when the decision must be reviewed.
	Expires metav1.Time `json:"expires"`
	// Expired says whether Expires had passed when the command ran.
	Expired bool `json:"expired"`
	// Judged is the reason of the safeguard's condition, how phiguard judged
	// the safeguard (DocumentedDecision, DecisionExpired,
	// DecisionNotRecognised, or the reason of a safeguard whose mode is not
	// Off and that the decision therefore does not affect); empty until
	// phiguard has evaluated it.
	Judged string `json:"judged,omitempty"`
	// Justification says why the safeguard is not implemented as specified.
	Justification string `json:"justification"`
	// AlternativeMeasure is what is done instead (kind Alternative).
	AlternativeMeasure string `json:"alternativeMeasure,omitempty"`
}

// DecisionsResult is the result of `decisions`.
type DecisionsResult struct {
	Decisions []DecisionRow `json:"decisions"`
}

func newDecisionsCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "decisions",
		Short: "Every documented decision of the PHIWorkloads in a namespace (-A: all), soonest expiry first",
		Long: "decisions lists each entry of spec.decisions: the safeguard it turns off, its kind, the\n" +
			"safeguard's mode now, who approved it (approvedBy, as written) and who recorded it (the\n" +
			"user phiguard authenticated for the request that added or last changed it), when it\n" +
			"expires and how long until (EXPIRED once past), and how phiguard judged the safeguard\n" +
			"(DocumentedDecision while valid, DecisionExpired after). Sorted by expiry, soonest first.\n" +
			"-o wide adds the justification and the alternative measure.",
		Example: "  kubectl phiguard decisions -n clinic\n  kubectl phiguard decisions -A -o wide",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.CheckOutput(OutputTable, OutputWide, OutputJSON, OutputYAML); err != nil {
				return err
			}
			items, ns, err := o.ListWorkloads(cmd.Context())
			if err != nil {
				return err
			}
			now := time.Now()
			var rows []DecisionRow
			for i := range items {
				rows = append(rows, decisionRows(&items[i], now)...)
			}
			sortDecisions(rows)
			return o.Print(DecisionsResult{Decisions: nonNil(rows)}, func(w io.Writer, wide bool) error {
				if len(rows) == 0 {
					if _, err := fmt.Fprintln(w, noDecisions(ns)); err != nil {
						return fmt.Errorf("writing the result: %w", err)
					}
					return nil
				}
				return renderDecisionTable(w, rows, now, decisionColumns{workload: true, wide: wide})
			})
		},
	}
}

// decisionRows returns one row per decision of w, judged at now, in the
// order of spec.decisions.
func decisionRows(w *phiguardv1alpha1.PHIWorkload, now time.Time) []DecisionRow {
	rows := make([]DecisionRow, 0, len(w.Spec.Decisions))
	for _, d := range w.Spec.Decisions {
		row := DecisionRow{
			Namespace: w.Namespace, Workload: w.Name, Safeguard: d.Safeguard, Kind: d.Kind,
			ApprovedBy: d.ApprovedBy, Expires: d.Expires, Expired: !now.Before(d.Expires.Time),
			Justification: d.Justification, AlternativeMeasure: d.AlternativeMeasure,
		}
		if i := slices.IndexFunc(w.Status.Decisions, func(s phiguardv1alpha1.DecisionStatus) bool {
			return s.Safeguard == d.Safeguard
		}); i >= 0 {
			row.RecordedBy = w.Status.Decisions[i].RecordedBy
		}
		if i := slices.IndexFunc(w.Status.Safeguards, func(s phiguardv1alpha1.SafeguardStatus) bool {
			return s.Name == d.Safeguard
		}); i >= 0 {
			row.Mode = w.Status.Safeguards[i].Mode
		}
		if c := meta.FindStatusCondition(w.Status.Conditions, string(d.Safeguard)); c != nil {
			row.Judged = c.Reason
		}
		rows = append(rows, row)
	}
	return rows
}

// sortDecisions sorts by expiry, soonest first, then by namespace, workload
// and safeguard.
func sortDecisions(rows []DecisionRow) {
	slices.SortStableFunc(rows, func(a, b DecisionRow) int {
		return cmp.Or(a.Expires.Compare(b.Expires.Time), cmp.Compare(a.Namespace, b.Namespace),
			cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.Safeguard, b.Safeguard))
	})
}

// decisionColumns says how renderDecisionTable lays out its table.
type decisionColumns struct {
	// indent starts each line.
	indent string
	// workload adds the NAMESPACE and WORKLOAD columns first.
	workload bool
	// wide adds JUSTIFICATION and ALTERNATIVE MEASURE.
	wide bool
}

// renderDecisionTable writes the decisions table: SAFEGUARD, KIND, MODE,
// APPROVED BY, RECORDED BY, EXPIRES (RFC 3339, UTC), IN (how long until, as
// kubectl writes ages, or EXPIRED) and JUDGED, with the columns cols adds.
func renderDecisionTable(w io.Writer, rows []DecisionRow, now time.Time, cols decisionColumns) error {
	line := func(workload []string, cells ...string) []string {
		var out []string
		if cols.workload {
			out = append(out, workload...)
		}
		out = append(out, cells...)
		out[0] = cols.indent + out[0]
		return out
	}
	head := line([]string{"NAMESPACE", columnWorkload}, "SAFEGUARD", "KIND", "MODE", "APPROVED BY", "RECORDED BY", "EXPIRES", "IN", "JUDGED")
	if cols.wide {
		head = append(head, "JUSTIFICATION", "ALTERNATIVE MEASURE")
	}
	table := make([][]string, 0, 1+len(rows))
	table = append(table, head)
	for _, r := range rows {
		row := line([]string{r.Namespace, r.Workload}, string(r.Safeguard), string(r.Kind), report.OrNone(string(r.Mode)),
			report.OrNone(r.ApprovedBy), report.OrNone(r.RecordedBy), formatTime(r.Expires), expiresIn(r.Expires.Time, now),
			report.OrNone(r.Judged))
		if cols.wide {
			row = append(row, report.OrNone(r.Justification), report.OrNone(r.AlternativeMeasure))
		}
		table = append(table, row)
	}
	return report.Columns(w, table...)
}

// expiresIn is how long until t, as kubectl writes ages ("29d", "5h"), or
// expiredCell once t has passed.
func expiresIn(t, now time.Time) string {
	if !now.Before(t) {
		return expiredCell
	}
	return duration.HumanDuration(t.Sub(now))
}

// formatTime writes t as the status messages do: RFC 3339, in UTC.
func formatTime(t metav1.Time) string {
	if t.IsZero() {
		return report.None
	}
	return t.UTC().Format(time.RFC3339)
}

// noDecisions is what the text output says when there is nothing to show.
func noDecisions(ns string) string {
	if ns == "" {
		return "No decisions found."
	}
	return fmt.Sprintf("No decisions found in %s namespace.", ns)
}

// nonNil returns rows, or an empty slice for nil, so that JSON says [] and
// not null.
func nonNil[T any](rows []T) []T {
	if rows == nil {
		return []T{}
	}
	return rows
}
