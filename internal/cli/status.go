package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/report"
)

// StatusRow is one PHIWorkload in `status -o json|yaml`.
type StatusRow struct {
	Namespace  string                             `json:"namespace"`
	Name       string                             `json:"name"`
	Ready      metav1.ConditionStatus             `json:"ready,omitempty"`
	Compliance phiguardv1alpha1.Compliance        `json:"compliance,omitempty"`
	Score      string                             `json:"score,omitempty"`
	Pods       int32                              `json:"pods"`
	Policy     string                             `json:"policy,omitempty"`
	Safeguards []phiguardv1alpha1.SafeguardStatus `json:"safeguards,omitempty"`
}

// StatusResult is the result of `status`.
type StatusResult struct {
	Workloads []StatusRow `json:"workloads"`
}

func newStatusCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "The compliance table of the PHIWorkloads in a namespace (-A: all)",
		Long: "status prints one row per PHIWorkload: Ready, compliance, score, matched pods and the\n" +
			"status of each safeguard's condition. -o wide adds the policy and the reason of every\n" +
			"safeguard that does not hold.",
		Example: "  kubectl phiguard status -n clinic\n  kubectl phiguard status -A -o wide",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.CheckOutput(OutputTable, OutputWide, OutputJSON, OutputYAML); err != nil {
				return err
			}
			items, ns, err := o.ListWorkloads(cmd.Context())
			if err != nil {
				return err
			}
			return o.Print(statusResult(items), func(w io.Writer, wide bool) error {
				if len(items) == 0 {
					if _, err := fmt.Fprintln(w, noWorkloads(ns)); err != nil {
						return fmt.Errorf("writing the table: %w", err)
					}
					return nil
				}
				if wide {
					return report.WideTable(w, items)
				}
				return report.Table(w, items)
			})
		},
	}
}

func statusResult(items []phiguardv1alpha1.PHIWorkload) StatusResult {
	res := StatusResult{Workloads: make([]StatusRow, 0, len(items))}
	for _, w := range report.Sorted(items) {
		row := StatusRow{
			Namespace: w.Namespace, Name: w.Name, Compliance: w.Status.Compliance, Score: w.Status.Score,
			Pods: w.Status.MatchedPods, Policy: w.Status.Policy, Safeguards: w.Status.Safeguards,
		}
		if c := meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition); c != nil {
			row.Ready = c.Status
		}
		res.Workloads = append(res.Workloads, row)
	}
	return res
}

// noWorkloads is what a text output says when there is nothing to show, as
// kubectl get does.
func noWorkloads(ns string) string {
	if ns == "" {
		return "No PHIWorkloads found."
	}
	return fmt.Sprintf("No PHIWorkloads found in %s namespace.", ns)
}
