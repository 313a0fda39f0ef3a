package scale

import (
	"encoding/json"
	"os"
	"testing"
)

// figure is one measured figure of the scale harness, as `make scale` prints
// it in its goals table (hack/scaletable reads them and holds the goals).
type figure struct {
	// Name identifies the figure, e.g. "settle_after_last_create_s".
	Name string `json:"name"`
	// Value is the measurement, in Unit.
	Value float64 `json:"value"`
	// Unit is what Value counts: "s", "ms", "MiB", "writes", …
	Unit string `json:"unit"`
	// Scale says what it was measured at, e.g. "10000 PHIWorkloads, 20000 pods".
	Scale string `json:"scale"`
	// Unjudged, when set, says why the figure cannot be held against its
	// goal on the machine it was measured on.
	Unjudged string `json:"unjudged,omitempty"`
}

// record logs a figure and, when PHIGUARD_SCALE_FIGURES names a file, appends
// it there as a JSON line for the goals table.
func record(t *testing.T, f figure) {
	t.Helper()
	t.Logf("figure: %s = %.4g %s (%s)", f.Name, f.Value, f.Unit, f.Scale)
	if f.Unjudged != "" {
		t.Logf("figure: %s not judged: %s", f.Name, f.Unjudged)
	}
	path := os.Getenv("PHIGUARD_SCALE_FIGURES")
	if path == "" {
		return
	}
	line, err := json.Marshal(f)
	if err != nil {
		t.Fatalf("encoding figure %s: %v", f.Name, err)
	}
	out, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	defer func() { _ = out.Close() }()
	if _, err := out.Write(append(line, '\n')); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}
