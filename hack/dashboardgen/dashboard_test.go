package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// committed is the dashboard the chart ships.
var committed = filepath.Join("..", "..", "charts", "phiguard", "files", "dashboard.json")

// TestCommittedDashboardIsGenerated fails when the chart's dashboard is not
// what this generator writes: edit dashboard.go, not the JSON.
func TestCommittedDashboardIsGenerated(t *testing.T) {
	want, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not what hack/dashboardgen generates: run make dashboard and commit it", committed)
	}
}

// TestDashboardQueries checks every query of the shipped dashboard, its
// panels' and its variables': each parses as PromQL once Grafana's variables
// are replaced, and names only metrics the manager exports (a histogram's
// _bucket, _sum and _count series count as its own). And every phiguard_
// metric the manager exports is on the dashboard.
func TestDashboardQueries(t *testing.T) {
	data, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	var d board
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", committed, err)
	}
	queries := d.queries()
	if len(queries) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	exported := exportedMetrics(t)
	values := d.variableValues()
	shown := map[string]bool{}
	for _, q := range queries {
		expr, err := interpolate(q.expr, values)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		names, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		for _, name := range names {
			family, ok := familyOf(name, exported)
			if !ok {
				t.Errorf("%s: %s is not a metric the manager exports", q.where, name)
				continue
			}
			shown[family] = true
		}
	}
	for name := range exported {
		if strings.HasPrefix(name, "phiguard_") && !shown[name] {
			t.Errorf("the manager exports %s, but no panel shows it", name)
		}
	}
}

// board is what the test reads of a dashboard's JSON.
type board struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

type variable struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	Query      any    `json:"query"`
	IncludeAll bool   `json:"includeAll"`
	AllValue   string `json:"allValue"`
	Current    struct {
		Value any `json:"value"`
	} `json:"current"`
}

// promQuery is one PromQL expression of the dashboard and where it is.
type promQuery struct {
	where, expr string
}

// labelValues is the query of a Grafana variable listing a label's values
// on the series a selector selects.
var labelValues = regexp.MustCompile(`^label_values\((.+),\s*\w+\)$`)

func (d *board) queries() []promQuery {
	var out []promQuery
	var walk func([]panel)
	walk = func(panels []panel) {
		for _, p := range panels {
			for _, target := range p.Targets {
				out = append(out, promQuery{where: fmt.Sprintf("panel %q, query %s", p.Title, target.RefID), expr: target.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// A query the pattern does not take is checked as it is, and fails.
		expr, _ := v.Query.(string)
		if m := labelValues.FindStringSubmatch(expr); m != nil {
			expr = m[1]
		}
		out = append(out, promQuery{where: "variable " + v.Name, expr: expr})
	}
	return out
}

// variableValues are the values the test gives the dashboard's variables:
// All's value when the variable has one, its current value otherwise.
func (d *board) variableValues() map[string]string {
	out := map[string]string{
		// Grafana's own interval variables.
		"__rate_interval": "5m", "__interval": "1m", "__range": "6h",
	}
	for _, v := range d.Templating.List {
		value, _ := v.Current.Value.(string)
		if v.IncludeAll && v.AllValue != "" {
			value = v.AllValue
		}
		out[v.Name] = value
	}
	return out
}

// reference is a use of a Grafana variable: $name, ${name}, ${name:format}
// or [[name]].
var reference = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// interpolate replaces each variable in expr as Grafana would, failing on
// one the dashboard does not define.
func interpolate(expr string, values map[string]string) (string, error) {
	var unknown []string
	out := reference.ReplaceAllStringFunc(expr, func(ref string) string {
		m := reference.FindStringSubmatch(ref)
		name := m[1] + m[2] + m[3]
		v, ok := values[name]
		if !ok {
			unknown = append(unknown, ref)
		}
		return v
	})
	if len(unknown) > 0 {
		return "", fmt.Errorf("%q uses variables the dashboard does not define: %v", expr, unknown)
	}
	return out, nil
}

// promQL parses as Prometheus does by default: no experimental functions.
var promQL = parser.NewParser(parser.Options{})

// metricNames parses expr and returns the metric name of each selector in it.
// A selector must name its metric exactly.
func metricNames(expr string) ([]string, error) {
	e, err := promQL.ParseExpr(expr)
	if err != nil {
		return nil, fmt.Errorf("%q is not valid PromQL: %w", expr, err)
	}
	var names []string
	var errs []error
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel {
				continue
			}
			if m.Type != labels.MatchEqual {
				errs = append(errs, fmt.Errorf("%s matches metric names by pattern: name the metric", vs))
				return nil
			}
			name = m.Value
		}
		if name == "" {
			errs = append(errs, fmt.Errorf("%s names no metric", vs))
			return nil
		}
		names = append(names, name)
		return nil
	})
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%q: %w", expr, err)
	}
	return names, nil
}

// familyOf is the exported family a series name belongs to: its own, or the
// histogram or summary whose _bucket, _sum or _count series it is.
func familyOf(name string, exported map[string]dto.MetricType) (string, bool) {
	if _, ok := exported[name]; ok {
		return name, true
	}
	histogram := []dto.MetricType{dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM}
	for suffix, kinds := range map[string][]dto.MetricType{
		"_bucket": histogram,
		"_sum":    append(slices.Clone(histogram), dto.MetricType_SUMMARY),
		"_count":  append(slices.Clone(histogram), dto.MetricType_SUMMARY),
	} {
		family, found := strings.CutSuffix(name, suffix)
		if kind, ok := exported[family]; found && ok && slices.Contains(kinds, kind) {
			return family, true
		}
	}
	return "", false
}
