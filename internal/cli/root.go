// Package cli is kubectl phiguard: the compliance of PHIWorkloads read from a
// cluster at a terminal. It follows kubectl's conventions: the kubeconfig
// flags of k8s.io/cli-runtime (--kubeconfig, --context, -n and the rest), -A
// for every namespace, and -o table|wide|json|yaml. It never prints colour,
// so its output reads the same on a terminal and through a pipe.
//
// Each command is one file: it reads what it needs with a controller-runtime
// client, builds a result (a plain struct with JSON tags, printed as is by -o
// json and -o yaml) and renders that result as text for -o table and -o wide.
package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
)

// Output formats, as -o takes them.
const (
	OutputTable = "table"
	OutputWide  = "wide"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// Options are the flags every command shares, and where it writes.
type Options struct {
	// Config holds the kubeconfig flags: --kubeconfig, --context, -n, --as ...
	Config *genericclioptions.ConfigFlags
	// AllNamespaces is -A: every namespace instead of -n's (or the context's).
	AllNamespaces bool
	// Output is -o.
	Output string

	genericiooptions.IOStreams

	// NewClient builds the client commands read with; it defaults to
	// scheme.NewClient. Tests may replace it.
	NewClient func(*rest.Config) (client.Client, error)
}

// NewOptions returns the options of a command line writing to streams.
func NewOptions(streams genericiooptions.IOStreams) *Options {
	return &Options{
		Config:    genericclioptions.NewConfigFlags(true).WithWarningPrinter(streams),
		Output:    OutputTable,
		IOStreams: streams,
		NewClient: phischeme.NewClient,
	}
}

// NewCommand returns kubectl phiguard with every subcommand.
func NewCommand(streams genericiooptions.IOStreams) *cobra.Command {
	o := NewOptions(streams)
	root := &cobra.Command{
		Use:   "kubectl-phiguard",
		Short: "Read the HIPAA compliance of PHIWorkloads",
		Long: "kubectl phiguard reads what phiguard judged about the workloads that handle ePHI:\n" +
			"their compliance, why each safeguard holds or not and how to fix it, the documented\n" +
			"decisions, a risk analysis, an asset inventory and what Enforce would change.",
		SilenceUsage:  true,
		SilenceErrors: true,
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl phiguard"},
	}
	root.SetOut(streams.Out)
	root.SetErr(streams.ErrOut)
	flags := root.PersistentFlags()
	o.Config.AddFlags(flags)
	flags.BoolVarP(&o.AllNamespaces, "all-namespaces", "A", false,
		"Read every namespace instead of the current one.")
	flags.StringVarP(&o.Output, "output", "o", OutputTable, "Output format: table, wide, json or yaml.")
	root.AddCommand(
		newStatusCommand(o),
		newPreviewCommand(o),
		newExplainCommand(o),
		newDecisionsCommand(o),
		newRiskCommand(o), newInventoryCommand(o),
		newEvidenceCommand(o),
	)
	return root
}

// Client returns a client of the cluster the kubeconfig flags name.
func (o *Options) Client() (client.Client, error) {
	cfg, err := o.Config.ToRESTConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the kubeconfig: %w", err)
	}
	return o.NewClient(cfg)
}

// Namespace returns -n, or the current context's namespace, or "default".
func (o *Options) Namespace() (string, error) {
	ns, _, err := o.Config.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return "", fmt.Errorf("reading the namespace from the kubeconfig: %w", err)
	}
	return ns, nil
}

// ListNamespace returns the namespace to list in: "" (every namespace) with
// -A, otherwise Namespace.
func (o *Options) ListNamespace() (string, error) {
	if o.AllNamespaces {
		return "", nil
	}
	return o.Namespace()
}

// ListWorkloads lists the PHIWorkloads of the namespace ListNamespace gives
// (every namespace with -A) and returns that namespace ("" for all).
func (o *Options) ListWorkloads(ctx context.Context) ([]phiguardv1alpha1.PHIWorkload, string, error) {
	c, err := o.Client()
	if err != nil {
		return nil, "", err
	}
	ns, err := o.ListNamespace()
	if err != nil {
		return nil, "", err
	}
	var list phiguardv1alpha1.PHIWorkloadList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return nil, "", fmt.Errorf("listing PHIWorkloads: %w", err)
	}
	return list.Items, ns, nil
}

// CheckOutput fails unless -o is one of allowed.
func (o *Options) CheckOutput(allowed ...string) error {
	if !slices.Contains(allowed, o.Output) {
		return fmt.Errorf("unknown output format %q: use one of %s", o.Output, strings.Join(allowed, ", "))
	}
	return nil
}

// Print writes result as -o asks: JSON or YAML as it marshals, otherwise as
// text by render (whose wide argument is -o wide).
func (o *Options) Print(result any, render func(w io.Writer, wide bool) error) error {
	switch o.Output {
	case OutputJSON:
		b, err := json.MarshalIndent(result, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding the result as JSON: %w", err)
		}
		if _, err := fmt.Fprintf(o.Out, "%s\n", b); err != nil {
			return fmt.Errorf("writing the result: %w", err)
		}
		return nil
	case OutputYAML:
		b, err := yaml.Marshal(result)
		if err != nil {
			return fmt.Errorf("encoding the result as YAML: %w", err)
		}
		if _, err := o.Out.Write(b); err != nil {
			return fmt.Errorf("writing the result: %w", err)
		}
		return nil
	case OutputTable, OutputWide, "":
		return render(o.Out, o.Output == OutputWide)
	}
	return fmt.Errorf("unknown output format %q: use one of table, wide, json, yaml", o.Output)
}
