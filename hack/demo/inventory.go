package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/phiguard/phiguard/internal/cli"
)

// renderInventory runs `kubectl phiguard inventory` on the samples' namespace
// as a user would, through the cluster's kubeconfig: the asset inventory of
// its ePHI workloads, then the map of their allowed network flows as a
// Mermaid flowchart.
func renderInventory(ctx context.Context, kubeconfig, ns string) ([]byte, error) {
	var b bytes.Buffer
	for _, step := range []struct {
		title string
		args  []string
	}{
		{"Asset inventory of the ePHI workloads in " + ns, []string{"inventory", "-n", ns}},
		{"Allowed ePHI network flows in " + ns + " (Mermaid; paste into any Mermaid viewer)", []string{"inventory", "-n", ns, "--diagram", "mermaid"}},
	} {
		var out, errOut bytes.Buffer
		cmd := cli.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
		cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, step.args...))
		if err := cmd.ExecuteContext(ctx); err != nil {
			return nil, fmt.Errorf("kubectl phiguard %s: %w (%s)", strings.Join(step.args, " "), err, strings.TrimSpace(errOut.String()))
		}
		fmt.Fprintf(&b, "%s (kubectl phiguard %s):\n\n", step.title, strings.Join(step.args, " "))
		b.Write(out.Bytes())
		b.WriteString("\n")
	}
	return b.Bytes(), nil
}
