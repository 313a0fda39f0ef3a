package policyreport

import (
	"fmt"

	kyvernopolicyreport "github.com/kyverno/kyverno/api/policyreport/v1alpha2"
	openreportsv1alpha1 "github.com/openreports/reports-api/apis/openreports.io/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/phiguard/phiguard/internal/optionalapi"
)

// Format is one of the report APIs phiguard can write.
type Format struct {
	// Name is the value of the manager's --report-api flag that selects it.
	Name string
	// API is the optional API that serves it.
	API *optionalapi.API
	// Namespaced and Cluster are the kinds of the namespaced and cluster reports.
	Namespaced, Cluster string
	// build returns the typed report of a kind, for conversion to unstructured.
	build func(kind string, meta metav1.ObjectMeta, summary Summary, results []Result) any
}

// The formats phiguard can write.
var (
	// WGPolicy is wgpolicyk8s.io/v1alpha2 PolicyReport and
	// ClusterPolicyReport, what Policy Reporter reads; the default.
	WGPolicy = Format{Name: "wgpolicyk8s", API: optionalapi.PolicyReports,
		Namespaced: "PolicyReport", Cluster: "ClusterPolicyReport", build: wgpolicy}
	// OpenReports is openreports.io/v1alpha1 Report and ClusterReport.
	OpenReports = Format{Name: "openreports", API: optionalapi.OpenReports,
		Namespaced: "Report", Cluster: "ClusterReport", build: openreports}
)

// FormatNamed returns the format a --report-api value names.
func FormatNamed(name string) (Format, error) {
	for _, f := range []Format{WGPolicy, OpenReports} {
		if f.Name == name {
			return f, nil
		}
	}
	return Format{}, fmt.Errorf("unknown report API %q: use %q or %q", name, WGPolicy.Name, OpenReports.Name)
}

// GVK returns the group, version and kind of one of the format's kinds.
func (f Format) GVK(kind string) schema.GroupVersionKind {
	return f.API.GroupVersion.WithKind(kind)
}

// Render returns a report of kind (f.Namespaced or f.Cluster) as the
// unstructured object phiguard applies: only the fields phiguard sets.
func (f Format) Render(kind string, meta metav1.ObjectMeta, results []Result) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(f.build(kind, meta, Summarize(results), results))
	if err != nil {
		return nil, fmt.Errorf("converting a %s to unstructured: %w", kind, err)
	}
	u := &unstructured.Unstructured{Object: m}
	// The converter writes the zero creationTimestamp as null; the apiserver
	// never stores it, so applying it would never compare equal.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	u.SetGroupVersionKind(f.GVK(kind))
	return u, nil
}

func wgpolicy(kind string, meta metav1.ObjectMeta, s Summary, results []Result) any {
	summary := kyvernopolicyreport.PolicyReportSummary{Pass: s.Pass, Fail: s.Fail, Warn: s.Warn, Error: s.Error, Skip: s.Skip}
	out := make([]kyvernopolicyreport.PolicyReportResult, 0, len(results))
	for _, r := range results {
		out = append(out, kyvernopolicyreport.PolicyReportResult{
			Source: Source, Policy: Policy, Rule: r.Rule, Category: r.Category,
			Severity: kyvernopolicyreport.PolicySeverity(r.Severity), Result: kyvernopolicyreport.PolicyResult(r.Outcome),
			Scored: true, Resources: []corev1.ObjectReference{r.Resource}, Message: r.Message,
			Properties: r.Properties, Timestamp: timestamp(r.Timestamp),
		})
	}
	if kind == "ClusterPolicyReport" {
		return &kyvernopolicyreport.ClusterPolicyReport{ObjectMeta: meta, Summary: summary, Results: out}
	}
	return &kyvernopolicyreport.PolicyReport{ObjectMeta: meta, Summary: summary, Results: out}
}

func openreports(kind string, meta metav1.ObjectMeta, s Summary, results []Result) any {
	summary := openreportsv1alpha1.ReportSummary{Pass: s.Pass, Fail: s.Fail, Warn: s.Warn, Error: s.Error, Skip: s.Skip}
	out := make([]openreportsv1alpha1.ReportResult, 0, len(results))
	for _, r := range results {
		out = append(out, openreportsv1alpha1.ReportResult{
			Source: Source, Policy: Policy, Rule: r.Rule, Category: r.Category,
			Severity: openreportsv1alpha1.ResultSeverity(r.Severity), Result: openreportsv1alpha1.Result(r.Outcome),
			Scored: true, Subjects: []corev1.ObjectReference{r.Resource}, Description: r.Message,
			Properties: r.Properties, Timestamp: timestamp(r.Timestamp),
		})
	}
	if kind == "ClusterReport" {
		return &openreportsv1alpha1.ClusterReport{ObjectMeta: meta, Source: Source, Summary: summary, Results: out}
	}
	return &openreportsv1alpha1.Report{ObjectMeta: meta, Source: Source, Summary: summary, Results: out}
}

func timestamp(t metav1.Time) metav1.Timestamp {
	if t.IsZero() {
		return metav1.Timestamp{}
	}
	return metav1.Timestamp{Seconds: t.Unix()}
}
