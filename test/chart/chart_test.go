//go:build chart

// Package chart checks the Helm chart against config/: rendered with its
// default values (helm template, the Helm CLI built from the module proxy)
// it must hold the same objects as `kustomize build config/default`, equal in
// everything but labels and annotations, and its manager pod must pass the
// restricted Pod Security Standard under any values the tests set.
//
//	make verify-chart
package chart

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/phiguard/phiguard/internal/manifests"
	"github.com/phiguard/phiguard/internal/podsecurity"
)

var root = filepath.Join("..", "..")

func render(t *testing.T, args ...string) []byte {
	t.Helper()
	helm := filepath.Join(root, "bin", "helm")
	all := append([]string{"template", "phiguard", filepath.Join(root, "charts", "phiguard"),
		"--namespace", "phiguard-system", "--kube-version", "v1.37.2", "--include-crds"}, args...)
	out, err := exec.Command(helm, all...).Output()
	if err != nil {
		t.Fatalf("helm template %v: %v (make verify-chart builds bin/helm)", args, stderr(err))
	}
	return out
}

func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	out, err := exec.Command(filepath.Join(root, "bin", "kustomize"), "build", filepath.Join(root, "config", dir)).Output()
	if err != nil {
		t.Fatalf("kustomize build: %v", stderr(err))
	}
	return out
}

func stderr(err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return errors.New(err.Error() + ": " + string(ee.Stderr))
	}
	return err
}

func objects(t *testing.T, data []byte) map[string]*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.Decode(bytes.NewReader(data), "rendered manifests")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*unstructured.Unstructured{}
	for _, obj := range objs {
		out[obj.GetKind()+"/"+obj.GetName()] = obj
	}
	return out
}

// comparable drops what may differ between the two installs: labels and
// annotations (Helm adds its own), and the Generated-by header.
func comparable(obj *unstructured.Unstructured) map[string]any {
	c := obj.DeepCopy()
	c.SetLabels(nil)
	c.SetAnnotations(nil)
	if tmpl, ok, _ := unstructured.NestedMap(c.Object, "spec", "template", "metadata"); ok {
		delete(tmpl, "labels")
		_ = unstructured.SetNestedMap(c.Object, tmpl, "spec", "template", "metadata")
	}
	return c.Object
}

func TestChartMatchesConfigDefault(t *testing.T) {
	compare(t, objects(t, render(t)), objects(t, kustomize(t, "default")))
}

// TestChartWithCertManagerMatchesConfigCertManager: the chart's cert-manager
// value and the config/certmanager overlay install the same.
func TestChartWithCertManagerMatchesConfigCertManager(t *testing.T) {
	chart := objects(t, render(t, "--set", "webhook.certManager.enabled=true"))
	config := objects(t, kustomize(t, "certmanager"))
	compare(t, chart, config)
	for _, key := range []string{"ValidatingWebhookConfiguration/phiguard-validating-webhook-configuration",
		"MutatingWebhookConfiguration/phiguard-mutating-webhook-configuration"} {
		for name, objs := range map[string]map[string]*unstructured.Unstructured{"chart": chart, "config/certmanager": config} {
			if obj := objs[key]; obj == nil || obj.GetAnnotations()["cert-manager.io/inject-ca-from"] != "phiguard-system/phiguard-serving-cert" {
				t.Errorf("%s: %s lacks cert-manager's CA injection", name, key)
			}
		}
	}
}

// compare fails the test for each object only one side has, and each that
// differs in more than labels and annotations.
func compare(t *testing.T, chart, config map[string]*unstructured.Unstructured) {
	t.Helper()
	for key, want := range config {
		if strings.HasPrefix(key, "Namespace/") {
			continue // Helm installs into the release's namespace; it does not own it
		}
		got, ok := chart[key]
		if !ok {
			t.Errorf("config has %s; the chart does not (run make chart)", key)
			continue
		}
		if !reflect.DeepEqual(comparable(got), comparable(want)) {
			g, _ := yamlOf(comparable(got))
			w, _ := yamlOf(comparable(want))
			t.Errorf("%s differs between the chart and config (run make chart, or align templates/deployment.yaml):\nchart:\n%s\nconfig:\n%s", key, g, w)
		}
	}
	for key := range chart {
		if _, ok := config[key]; !ok {
			t.Errorf("the chart renders %s; config does not", key)
		}
	}
}

func TestChartManagerIsRestricted(t *testing.T) {
	for _, values := range [][]string{
		nil,
		{"--set", "webhook.certManager.enabled=true", "--set", "priorityClassName=system-cluster-critical",
			"--set", "logLevel=debug", "--set", "replicas=3"},
	} {
		problems, err := podsecurity.Problems(render(t, values...))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("values %v: %s", values, p)
		}
	}
}

func TestChartValuesReachTheObjects(t *testing.T) {
	out := string(render(t, "--set", "webhook.certManager.enabled=true", "--set", "webhook.failurePolicy=Fail",
		"--set", "webhook.timeoutSeconds=3", "--set", "serviceMonitor.enabled=true", "--set", "policy.create=true",
		"--set", "policy.exemptNamespaces={legacy-lab}", "--set", "image.tag=v0.1.0", "--set", "leaderElection=false",
		"--set", "reportAPI=openreports"))
	for _, want := range []string{
		"kind: Certificate", "kind: Issuer", "cert-manager.io/inject-ca-from: phiguard-system/phiguard-serving-cert",
		"--webhook-cert-source=files", "kind: ServiceMonitor", "kind: PHIPolicy", "- legacy-lab",
		"image: ghcr.io/phiguard/manager:v0.1.0", "timeoutSeconds: 3", "--report-api=openreports",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the rendered chart lacks %q", want)
		}
	}
	for _, unwanted := range []string{"failurePolicy: Ignore", "--leader-elect"} {
		if strings.Contains(out, unwanted) {
			t.Errorf("the rendered chart still has %q", unwanted)
		}
	}
}

// The PrometheusRule ships files/alerts.yaml, the file test/alerts unit-tests
// with promtool, unchanged.
func TestChartPrometheusRuleIsTheTestedFile(t *testing.T) {
	objs, err := manifests.Decode(bytes.NewReader(render(t, "--set", "prometheusRule.enabled=true",
		"--set", "prometheusRule.labels.release=monitoring")), "rendered manifests")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "charts", "phiguard", "files", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tested map[string]any
	if err := yaml.Unmarshal(data, &tested); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "PrometheusRule" {
			continue
		}
		if o.GetLabels()["release"] != "monitoring" {
			t.Errorf("prometheusRule.labels did not reach the PrometheusRule: %v", o.GetLabels())
		}
		if !reflect.DeepEqual(o.Object["spec"], tested) {
			t.Errorf("the PrometheusRule's spec differs from files/alerts.yaml")
		}
		return
	}
	t.Error("prometheusRule.enabled=true rendered no PrometheusRule")
}

// The dashboard ConfigMap carries the Grafana sidecar's label and holds
// files/dashboard.json, the file hack/dashboardgen generates and tests,
// unchanged; namespace, labels and annotations come from the values.
func TestChartGrafanaDashboard(t *testing.T) {
	objs, err := manifests.Decode(bytes.NewReader(render(t, "--set", "grafanaDashboard.enabled=true",
		"--set", "grafanaDashboard.namespace=monitoring", "--set", "grafanaDashboard.annotations.grafana_folder=Compliance")),
		"rendered manifests")
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(root, "charts", "phiguard", "files", "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "ConfigMap" || o.GetName() != "phiguard-grafana-dashboard" {
			continue
		}
		if got := o.GetLabels()["grafana_dashboard"]; got != "1" {
			t.Errorf("the dashboard ConfigMap's grafana_dashboard label is %q, not \"1\"", got)
		}
		if got := o.GetAnnotations()["grafana_folder"]; got != "Compliance" {
			t.Errorf("grafanaDashboard.annotations did not reach the ConfigMap: %v", o.GetAnnotations())
		}
		if o.GetNamespace() != "monitoring" {
			t.Errorf("the dashboard ConfigMap is in %q, not the namespace grafanaDashboard.namespace names", o.GetNamespace())
		}
		data, _, _ := unstructured.NestedString(o.Object, "data", "phiguard.json")
		if !json.Valid([]byte(data)) {
			t.Fatalf("the dashboard ConfigMap's phiguard.json is not valid JSON: %.200s", data)
		}
		if data+"\n" != string(file) {
			t.Error("the dashboard ConfigMap's phiguard.json differs from files/dashboard.json")
		}
		return
	}
	t.Error("grafanaDashboard.enabled=true rendered no ConfigMap phiguard-grafana-dashboard")
}

func yamlOf(v map[string]any) (string, error) {
	var b strings.Builder
	u := unstructured.Unstructured{Object: v}
	data, err := u.MarshalJSON()
	if err != nil {
		return "", err
	}
	b.Write(data)
	return b.String(), nil
}
