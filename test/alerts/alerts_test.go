// Package alerts unit-tests phiguard's alert rules
// (charts/phiguard/files/alerts.yaml, the file the chart's PrometheusRule
// ships) with Prometheus' own rule test engine: promtool, built from the
// Prometheus module into bin/ by `make promtool` (which `make test` runs).
package alerts

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func TestAlertRules(t *testing.T) {
	promtool := os.Getenv("PROMTOOL")
	if promtool == "" {
		promtool = filepath.Join("..", "..", "bin", "promtool")
	}
	if _, err := os.Stat(promtool); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("%s is missing: run `make promtool` to build it from the Prometheus module", promtool)
	}
	for _, args := range [][]string{
		{"check", "rules", filepath.Join("..", "..", "charts", "phiguard", "files", "alerts.yaml")},
		{"test", "rules", "alerts_test.yaml"},
	} {
		out, err := exec.CommandContext(t.Context(), promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}
