// Command dashboardgen writes phiguard's Grafana dashboard, built with the
// Grafana Foundation SDK, to the file the Helm chart ships as a ConfigMap
// (charts/phiguard/files/dashboard.json):
//
//	make dashboard
//
// Its tests check that the committed file is what it writes, that every query
// parses as PromQL, and that every metric a query names is one the manager
// exports.
package main

import (
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("out", "../../charts/phiguard/files/dashboard.json", "file to write the dashboard JSON to")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "dashboardgen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	data, err := JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, data, 0o644); err != nil { //nolint:gosec // a chart file, world-readable like the rest of the repository
		return fmt.Errorf("writing %s: %w", out, err)
	}
	return nil
}
