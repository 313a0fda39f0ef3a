// Command scaletable prints the goals table of `make scale`: each figure the
// scale harness measured (test/scale writes them as JSON lines) and the
// admission handler benchmarks (`go test -bench` output), next to its goal.
//
//	go run ./hack/scaletable -figures bin/scale/figures.jsonl -bench bin/scale/bench.txt
//
// It exits 0 whatever the figures are (the table says which goal is missed),
// and 1 when a file cannot be read.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// figure is one measurement, as test/scale records it.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
	Scale string  `json:"scale"`
	// Unjudged says why the figure cannot be held against its goal here.
	Unjudged string `json:"unjudged,omitempty"`
}

// goal is a figure's target: at most Max (in the figure's unit).
type goal struct {
	// Row is what the table calls the figure.
	Row string
	// Name is the figure's name; MinWorkloads/MaxWorkloads select by the
	// PHIWorkloads it was measured at (the number the figure's scale starts
	// with), 0 for any.
	Name                       string
	MinWorkloads, MaxWorkloads int
	// Max is the goal; Text says it in words.
	Max  float64
	Text string
}

// The handlers' goals, the same for each.
const (
	handlerP99   = "≤ 1 ms"
	handlerAlloc = "≤ 100 KB"
)

// goals are the scale goals, in the order of the table.
var goals = []goal{
	{Row: "writes per workload to settle (creation), Events apart", Name: "writes_per_workload", Max: 4, Text: "≤ 4"},
	{Row: "Events per workload to settle (creation)", Name: "events_per_workload", Max: 1, Text: "≤ 1"},
	{Row: "500 labelled Namespaces: all NetworkPolicies after the last Namespace", Name: "labelled_namespaces_policies_s", Max: 0.5, Text: "≤ 0.5 s"},
	{Row: "settled after the last create", Name: "settle_after_last_create_s", MinWorkloads: 10000, Max: 10, Text: "≤ 10 s at 10,000"},
	{Row: "settled after the last create (below 10,000)", Name: "settle_after_last_create_s", MaxWorkloads: 9999, Max: 10, Text: "(≤ 10 s at 10,000)"},
	{Row: "writes in a quiet window after a full re-verification", Name: "quiet_writes", Max: 0, Text: "0"},
	{Row: "manager RSS (bin/manager, VmRSS)", Name: "manager_rss_mib", MaxWorkloads: 1000, Max: 64, Text: "≤ 64 MiB at 1,000"},
	{Row: "manager RSS (bin/manager, VmRSS)", Name: "manager_rss_mib", MinWorkloads: 1001, Max: 150, Text: "≤ 150 MiB at 10,000"},
	{Row: "drift heal p50, loaded", Name: "drift_heal_p50_ms", Max: 200, Text: "≤ 200 ms"},
	{Row: "drift heal p99, loaded", Name: "drift_heal_p99_ms", Max: 1000, Text: "≤ 1 s"},
	{Row: "pod creates at 200/s with injection: added p99", Name: "pod_create_added_p99_ms", Max: 15, Text: "≤ 15 ms"},
	{Row: "pod creates at 200/s with injection: errors", Name: "pod_create_errors", Max: 0, Text: "0"},
	{Row: "claim handler p99 (denied)", Name: "BenchmarkClaimDenied p99", Max: 1, Text: handlerP99},
	{Row: "claim handler allocated per request (denied)", Name: "BenchmarkClaimDenied alloc", Max: 100, Text: handlerAlloc},
	{Row: "claim handler p99 (uncovered: costliest allow)", Name: "BenchmarkClaimUncovered p99", Max: 1, Text: handlerP99},
	{Row: "claim handler allocated per request (uncovered)", Name: "BenchmarkClaimUncovered alloc", Max: 100, Text: handlerAlloc},
	{Row: "pod handler p99 (injection)", Name: "BenchmarkPodInjection p99", Max: 1, Text: handlerP99},
	{Row: "pod handler allocated per request (injection)", Name: "BenchmarkPodInjection alloc", Max: 100, Text: handlerAlloc},
	{Row: "leader SIGKILLed: the new leader's first reconcile", Name: "failover_first_reconcile_s", Max: 20, Text: "≤ 20 s"},
	{Row: "leader SIGKILLed: writes re-verifying a settled cluster", Name: "failover_writes", Max: 0, Text: "0"},
}

func main() {
	figures := flag.String("figures", "", "the JSON lines test/scale wrote (PHIGUARD_SCALE_FIGURES)")
	bench := flag.String("bench", "", "`go test -bench -benchmem` output of the admission handler benchmarks")
	flag.Parse()
	all, err := read(*figures, *bench)
	if err != nil {
		fmt.Fprintln(os.Stderr, "scaletable:", err)
		os.Exit(1)
	}
	write(os.Stdout, all)
}

// read loads the figures file and the benchmark output; either may be "".
func read(figuresPath, benchPath string) ([]figure, error) {
	var all []figure
	if figuresPath != "" {
		f, err := readFigures(figuresPath)
		if err != nil {
			return nil, err
		}
		all = append(all, f...)
	}
	if benchPath != "" {
		f, err := readBench(benchPath)
		if err != nil {
			return nil, err
		}
		all = append(all, f...)
	}
	return all, nil
}

func readFigures(path string) ([]figure, error) {
	in, err := os.Open(path) //nolint:gosec // G304: the file named on the command line
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // nothing measured: every row says so
	}
	if err != nil {
		return nil, fmt.Errorf("opening figures: %w", err)
	}
	defer func() { _ = in.Close() }()
	var out []figure
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		var f figure
		if err := json.Unmarshal(lines.Bytes(), &f); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, lines.Text(), err)
		}
		out = append(out, f)
	}
	if err := lines.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return out, nil
}

// benchLine matches a benchmark result with -benchmem and the p99-ns metric
// the admission benchmarks report.
var benchLine = regexp.MustCompile(`^(Benchmark\w+)(?:-\d+)?\s+\d+\s+.*?([\d.]+) p99-ns\s+([\d.]+) B/op`)

// readBench turns each benchmark's p99 (ms) and bytes per op (KB) into figures.
func readBench(path string) ([]figure, error) {
	raw, err := os.ReadFile(path) //nolint:gosec // G304: the file named on the command line
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading benchmarks: %w", err)
	}
	var out []figure
	for _, line := range strings.Split(string(raw), "\n") {
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		p99, err1 := strconv.ParseFloat(m[2], 64)
		bytes, err2 := strconv.ParseFloat(m[3], 64)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, line, err)
		}
		const in = "in process, go test -bench"
		out = append(out,
			figure{Name: m[1] + " p99", Value: p99 / 1e6, Unit: "ms", Scale: in},
			figure{Name: m[1] + " alloc", Value: bytes / 1000, Unit: "KB", Scale: in})
	}
	return out, nil
}

// workloads is the number a figure's scale starts with ("10000 PHIWorkloads, …"), or 0.
func workloads(scale string) int {
	n, _ := strconv.Atoi(strings.SplitN(scale, " ", 2)[0])
	return n
}

// latest is the last figure the goal selects.
func (g goal) latest(all []figure) (figure, bool) {
	for i := len(all) - 1; i >= 0; i-- {
		f := all[i]
		n := workloads(f.Scale)
		if f.Name == g.Name && (g.MinWorkloads == 0 || n >= g.MinWorkloads) && (g.MaxWorkloads == 0 || n <= g.MaxWorkloads) {
			return f, true
		}
	}
	return figure{}, false
}

// write prints the table in Markdown.
func write(w io.Writer, all []figure) {
	_, _ = fmt.Fprintln(w, "| figure | goal | measured | at | met |")
	_, _ = fmt.Fprintln(w, "|---|---|---|---|---|")
	met, missed, unmeasured := 0, 0, 0
	for _, g := range goals {
		f, ok := g.latest(all)
		if !ok {
			unmeasured++
			_, _ = fmt.Fprintf(w, "| %s | %s | not measured | | — |\n", g.Row, g.Text)
			continue
		}
		mark := "yes"
		switch {
		case f.Unjudged != "":
			mark = "— (not judged: " + f.Unjudged + ")"
			unmeasured++
		case f.Value > g.Max:
			mark = "**no**"
			missed++
		default:
			met++
		}
		_, _ = fmt.Fprintf(w, "| %s | %s | %s %s | %s | %s |\n", g.Row, g.Text, strconv.FormatFloat(f.Value, 'g', 4, 64), f.Unit, f.Scale, mark)
	}
	_, _ = fmt.Fprintf(w, "\n%d goals met, %d missed, %d not measured or not judged.\n", met, missed, unmeasured)
}
