package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/phiguard/phiguard/internal/cli"
	"github.com/phiguard/phiguard/internal/evidence"
)

// The demo's evidence trail: segments every two seconds (production: every
// minute), and the attestation of every workload every ten seconds
// (production: daily), so that both show within the demo.
var evidenceArgs = []string{"--evidence-segment-interval=2s", "--evidence-attest-delay=5s", "--evidence-attest-interval=10s"}

// runCLI runs kubectl phiguard with args through the cluster's kubeconfig,
// as a user would, and returns its output.
func runCLI(ctx context.Context, kubeconfig string, args ...string) ([]byte, error) {
	var out, errOut bytes.Buffer
	cmd := cli.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	if err := cmd.ExecuteContext(ctx); err != nil {
		return out.Bytes(), fmt.Errorf("kubectl phiguard %s: %w (%s)", strings.Join(args, " "), err, strings.TrimSpace(errOut.String()))
	}
	return out.Bytes(), nil
}

// exported is the part of `evidence export --format json` the demo reads.
type exported struct {
	Records []evidence.Record `json:"records"`
}

// waitAttested waits until the evidence stored holds an attestation of
// every sample workload, made once all of them had a status.
func waitAttested(ctx context.Context, kubeconfig string, workloads []types.NamespacedName, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		raw, err := runCLI(ctx, kubeconfig, "evidence", "export", "-A", "--format", "json")
		if err == nil {
			var e exported
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("reading the exported evidence: %w", err)
			}
			attested := map[types.NamespacedName]bool{}
			for _, r := range e.Records {
				if r.Kind == evidence.KindAttestation && r.Workload != nil && len(r.Safeguards) > 0 {
					attested[types.NamespacedName{Namespace: r.Workload.Namespace, Name: r.Workload.Name}] = true
				}
			}
			all := true
			for _, w := range workloads {
				all = all && attested[w]
			}
			if all {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no attestation of every sample stored within %s (last: %w)", timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the attestations: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
}

// showEvidence verifies the evidence trail the manager wrote, prints what
// it holds by kind, and exports the samples' evidence as OSCAL assessment
// results into bin/demo, printing its first observation and finding.
func showEvidence(ctx context.Context, w io.Writer, kubeconfig string, workloads []types.NamespacedName, oscalPath string, timeout time.Duration) error {
	if err := waitAttested(ctx, kubeconfig, workloads, timeout); err != nil {
		return err
	}
	verify, err := runCLI(ctx, kubeconfig, "evidence", "verify")
	if err != nil {
		return err
	}
	_, _ = fmt.Fprintf(w, "The evidence trail (kubectl phiguard evidence verify):\n\n%s\n", verify)
	raw, err := runCLI(ctx, kubeconfig, "evidence", "export", "-A", "--format", "json")
	if err != nil {
		return err
	}
	var e exported
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("reading the exported evidence: %w", err)
	}
	counts := map[evidence.Kind]int{}
	for _, r := range e.Records {
		counts[r.Kind]++
	}
	var parts []string
	for _, k := range evidence.Kinds {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
		}
	}
	_, _ = fmt.Fprintf(w, "It holds %d records: %s.\n", len(e.Records), strings.Join(parts, ", "))
	if _, err := runCLI(ctx, kubeconfig, "evidence", "export", "-n", sampleNamespace, "--format", "oscal", "--output-file", oscalPath); err != nil {
		return err
	}
	return summariseOSCAL(w, oscalPath)
}

// summariseOSCAL prints how many observations and findings an OSCAL export
// holds, and its first not-satisfied finding.
func summariseOSCAL(w io.Writer, path string) error {
	raw, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return fmt.Errorf("reading the OSCAL export: %w", err)
	}
	var doc struct {
		AR struct {
			Results []struct {
				Observations []json.RawMessage `json:"observations"`
				Findings     []struct {
					Title  string `json:"title"`
					Target struct {
						TargetID string `json:"target-id"`
						Status   struct {
							State string `json:"state"`
						} `json:"status"`
					} `json:"target"`
				} `json:"findings"`
			} `json:"results"`
		} `json:"assessment-results"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("reading the OSCAL export: %w", err)
	}
	var observations, findings, failing int
	example := ""
	for _, r := range doc.AR.Results {
		observations += len(r.Observations)
		for _, f := range r.Findings {
			findings++
			if f.Target.Status.State != "satisfied" {
				failing++
				if example == "" {
					example = fmt.Sprintf("%s (%s: %s)", f.Title, f.Target.TargetID, f.Target.Status.State)
				}
			}
		}
	}
	_, _ = fmt.Fprintf(w, "OSCAL assessment results of namespace %s (kubectl phiguard evidence export -n %s --format oscal): %s\n",
		sampleNamespace, sampleNamespace, path)
	_, _ = fmt.Fprintf(w, "  %d observations, %d findings, %d not satisfied", observations, findings, failing)
	if example != "" {
		_, _ = fmt.Fprintf(w, ", such as %s", example)
	}
	_, err = fmt.Fprintln(w)
	return err //nolint:wrapcheck // a write to the demo's terminal
}
