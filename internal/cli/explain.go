package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/report"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// ConditionExplanation is one condition of a PHIWorkload's status and what
// to do about it.
type ConditionExplanation struct {
	// Status is True, False or Unknown; empty when the status does not have
	// the condition (phiguard has not evaluated it yet).
	Status metav1.ConditionStatus `json:"status,omitempty"`
	// Reason and Message are the condition's.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Fix is the change that would make the condition hold, with the
	// workload's own names; empty when it holds or needs no change.
	Fix string `json:"fix,omitempty"`
}

// SafeguardExplanation is one safeguard in `explain -o json|yaml`.
type SafeguardExplanation struct {
	// Name is the safeguard, also its condition type.
	Name phiguardv1alpha1.SafeguardName `json:"name"`
	// Section and Specification are the HIPAA Security Rule section and
	// Required or Addressable, under the PHIPolicy's ruleset.
	Section       string                         `json:"section"`
	Specification phiguardv1alpha1.Specification `json:"specification"`
	// Mode is the effective mode and ModeSource where it came from (the
	// workload, the policy or the built-in default); empty until evaluated.
	Mode       phiguardv1alpha1.Mode          `json:"mode,omitempty"`
	ModeSource phiguardv1alpha1.SettingSource `json:"modeSource,omitempty"`
	// ConditionExplanation is the safeguard's condition and its fix.
	ConditionExplanation `json:",inline"`
}

// ExplainResult is the result of `explain`.
type ExplainResult struct {
	Namespace          string `json:"namespace"`
	Name               string `json:"name"`
	Generation         int64  `json:"generation"`
	ObservedGeneration int64  `json:"observedGeneration"`
	// Ready, Stalled and Reconciling are the summary conditions; Stalled and
	// Reconciling only when present.
	Ready       ConditionExplanation  `json:"ready"`
	Stalled     *ConditionExplanation `json:"stalled,omitempty"`
	Reconciling *ConditionExplanation `json:"reconciling,omitempty"`
	// Compliance, Score, Pods and Policy are the status's.
	Compliance phiguardv1alpha1.Compliance `json:"compliance,omitempty"`
	Score      string                      `json:"score,omitempty"`
	Pods       int32                       `json:"pods"`
	Policy     string                      `json:"policy,omitempty"`
	// Safeguards are in the order phiguard evaluates them.
	Safeguards []SafeguardExplanation `json:"safeguards"`
	// Decisions are the workload's documented decisions, soonest expiry first.
	Decisions []DecisionRow `json:"decisions"`
}

func newExplainCommand(o *Options) *cobra.Command {
	return &cobra.Command{
		Use:   "explain WORKLOAD",
		Short: "Why each safeguard of a PHIWorkload holds or not, and the change that would fix it",
		Long: "explain prints, for each safeguard of one PHIWorkload in the order phiguard evaluates them:\n" +
			"its HIPAA section and specification, its effective mode and where that came from, the\n" +
			"status, reason and message of its condition and, when it does not hold, the change that\n" +
			"would fix it. Then the workload's documented decisions and when they expire. -o wide adds\n" +
			"each decision's justification; -o json and -o yaml give the same as data.",
		Example: "  kubectl phiguard explain patient-records -n clinic\n  kubectl phiguard explain patient-records -n clinic -o yaml",
		Args:    cobra.ExactArgs(1),
		ValidArgsFunction: func(cmd *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			names, err := workloadNames(cmd.Context(), o)
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.CheckOutput(OutputTable, OutputWide, OutputJSON, OutputYAML); err != nil {
				return err
			}
			if o.AllNamespaces {
				return fmt.Errorf("explain reads one PHIWorkload: name its namespace with -n, not -A")
			}
			c, err := o.Client()
			if err != nil {
				return err
			}
			ns, err := o.Namespace()
			if err != nil {
				return err
			}
			var w phiguardv1alpha1.PHIWorkload
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: args[0]}, &w); apierrors.IsNotFound(err) {
				return fmt.Errorf("PHIWorkload %s/%s not found; kubectl phiguard status -n %s lists them", ns, args[0], ns)
			} else if err != nil {
				return fmt.Errorf("reading PHIWorkload %s/%s: %w", ns, args[0], err)
			}
			now := time.Now()
			res := explain(&w, now)
			return o.Print(res, func(out io.Writer, wide bool) error {
				return renderExplain(out, &res, now, wide)
			})
		},
	}
}

// workloadNames lists the names of the PHIWorkloads in the namespace the
// flags name, for shell completion.
func workloadNames(ctx context.Context, o *Options) ([]string, error) {
	c, err := o.Client()
	if err != nil {
		return nil, err
	}
	ns, err := o.Namespace()
	if err != nil {
		return nil, err
	}
	var list phiguardv1alpha1.PHIWorkloadList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, fmt.Errorf("listing PHIWorkloads: %w", err)
	}
	names := make([]string, 0, len(list.Items))
	for _, w := range list.Items {
		names = append(names, w.Name)
	}
	slices.Sort(names)
	return names, nil
}

// explain builds the explanation of w; decisions are judged at now.
func explain(w *phiguardv1alpha1.PHIWorkload, now time.Time) ExplainResult {
	st := &w.Status
	res := ExplainResult{
		Namespace: w.Namespace, Name: w.Name, Generation: w.Generation, ObservedGeneration: st.ObservedGeneration,
		Compliance: st.Compliance, Score: st.Score, Pods: st.MatchedPods, Policy: st.Policy,
		Safeguards: []SafeguardExplanation{},
	}
	summary := fixInput{workload: w}
	res.Stalled = presentCondition(st, phiguardv1alpha1.StalledCondition, summary)
	res.Reconciling = presentCondition(st, phiguardv1alpha1.ReconcilingCondition, summary)
	if ready := presentCondition(st, phiguardv1alpha1.ReadyCondition, summary); ready != nil {
		res.Ready = *ready
		if res.Stalled != nil {
			// Ready then carries Stalled's reason: its fix is Stalled's.
			res.Ready.Fix = ""
		}
	}
	registry := safeguard.New(safeguard.Options{})
	for _, name := range safeguardOrder(st, registry.Names()) {
		rule := registry.Rule(name)
		e := SafeguardExplanation{Name: name, Section: rule.Section, Specification: rule.Specification}
		if i := slices.IndexFunc(st.Safeguards, func(s phiguardv1alpha1.SafeguardStatus) bool { return s.Name == name }); i >= 0 {
			s := st.Safeguards[i]
			e.Section, e.Specification, e.Mode, e.ModeSource = s.Section, s.Specification, s.Mode, s.ModeSource
		}
		if c := meta.FindStatusCondition(st.Conditions, string(name)); c != nil {
			e.ConditionExplanation = ConditionExplanation{Status: c.Status, Reason: c.Reason, Message: c.Message,
				Fix: fixFor(c.Status == metav1.ConditionTrue, c.Reason, fixInput{
					workload: w, safeguard: name, specification: e.Specification, mode: e.Mode, message: c.Message,
				})}
		}
		res.Safeguards = append(res.Safeguards, e)
	}
	res.Decisions = decisionRows(w, now)
	sortDecisions(res.Decisions)
	return res
}

// safeguardOrder is the order of status.safeguards (the order phiguard
// evaluates them in), then any of known the status does not list yet.
func safeguardOrder(st *phiguardv1alpha1.PHIWorkloadStatus, known []phiguardv1alpha1.SafeguardName) []phiguardv1alpha1.SafeguardName {
	var names []phiguardv1alpha1.SafeguardName
	for _, s := range st.Safeguards {
		names = append(names, s.Name)
	}
	for _, name := range known {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}

// presentCondition explains the summary condition typ, or returns nil when
// the status does not have it. Ready holds when True; Stalled and
// Reconciling, abnormal-true conditions, when they are not.
func presentCondition(st *phiguardv1alpha1.PHIWorkloadStatus, typ string, in fixInput) *ConditionExplanation {
	c := meta.FindStatusCondition(st.Conditions, typ)
	if c == nil {
		return nil
	}
	in.message = c.Message
	holds := (c.Status == metav1.ConditionTrue) == (typ == phiguardv1alpha1.ReadyCondition)
	return &ConditionExplanation{Status: c.Status, Reason: c.Reason, Message: c.Message, Fix: fixFor(holds, c.Reason, in)}
}

// The labels of explain's text output, padded so that values align.
const (
	summaryLabel   = "%-13s%s\n"
	safeguardLabel = "  %-9s%s\n"
)

// renderExplain writes res as text: a summary, a block per safeguard, and
// the decisions (with their justification when wide).
func renderExplain(out io.Writer, res *ExplainResult, now time.Time, wide bool) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "PHIWorkload %s/%s (generation %d, observed %d)\n", res.Namespace, res.Name, res.Generation, res.ObservedGeneration)
	if res.Ready.Status == "" {
		fmt.Fprintf(&b, summaryLabel, "Ready:", report.None+" (phiguard has not evaluated the workload yet: is its manager running?)")
	} else {
		writeCondition(&b, summaryLabel, "Ready:", &res.Ready)
	}
	if res.Stalled != nil {
		writeCondition(&b, summaryLabel, "Stalled:", res.Stalled)
	}
	if res.Reconciling != nil {
		writeCondition(&b, summaryLabel, "Reconciling:", res.Reconciling)
	}
	pods := report.None // not counted yet, rather than none
	if res.Ready.Status != "" {
		pods = fmt.Sprint(res.Pods)
	}
	fmt.Fprintf(&b, summaryLabel, "Compliance:", fmt.Sprintf("%s, score %s, pods %s, policy %s",
		report.OrNone(string(res.Compliance)), report.OrNone(res.Score), pods, report.OrNone(res.Policy)))

	for i := range res.Safeguards {
		s := &res.Safeguards[i]
		fmt.Fprintf(&b, "\n%s (%s, %s)\n", s.Name, report.OrNone(s.Section), report.OrNone(string(s.Specification)))
		mode := report.None
		if s.Mode != "" {
			mode = fmt.Sprintf("%s (from %s)", s.Mode, report.OrNone(string(s.ModeSource)))
		}
		fmt.Fprintf(&b, safeguardLabel, "Mode:", mode)
		if s.Status == "" {
			fmt.Fprintf(&b, safeguardLabel, "Status:", report.None+" (not evaluated yet)")
			continue
		}
		stalledFix := ""
		if res.Stalled != nil && s.Reason == res.Stalled.Reason {
			stalledFix = "as for Stalled, above"
		}
		fmt.Fprintf(&b, safeguardLabel, "Status:", fmt.Sprintf("%s (%s)", s.Status, s.Reason))
		fmt.Fprintf(&b, safeguardLabel, "Message:", report.OneLine(report.OrNone(s.Message)))
		writeFix(&b, safeguardLabel, &s.ConditionExplanation, stalledFix)
	}

	b.WriteString("\n")
	if len(res.Decisions) == 0 {
		b.WriteString("Decisions:   none\n")
	} else {
		b.WriteString("Decisions:\n")
		if err := renderDecisionTable(&b, res.Decisions, now, decisionColumns{indent: "  ", wide: wide}); err != nil {
			return err
		}
	}
	if _, err := out.Write(b.Bytes()); err != nil {
		return fmt.Errorf("writing the explanation: %w", err)
	}
	return nil
}

// writeCondition writes "Label Status (Reason) message" and its fix.
func writeCondition(b *bytes.Buffer, format, label string, c *ConditionExplanation) {
	fmt.Fprintf(b, format, label, report.OneLine(fmt.Sprintf("%s (%s) %s", c.Status, c.Reason, c.Message)))
	writeFix(b, format, c, "")
}

// writeFix writes the condition's fix, or instead when set and the
// condition has a fix.
func writeFix(b *bytes.Buffer, format string, c *ConditionExplanation, instead string) {
	switch {
	case c.Fix == "":
	case instead != "":
		fmt.Fprintf(b, format, "Fix:", instead)
	default:
		fmt.Fprintf(b, format, "Fix:", report.OneLine(c.Fix))
	}
}
