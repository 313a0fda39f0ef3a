//go:build chart

// Package chart checks the Helm chart against config/: rendered with its
// default values (helm template, the Helm CLI built from the module proxy)
// it must hold the same objects as `kustomize build config/default`, equal in
// everything but labels and annotations, and its manager pod must pass the
// restricted Pod Security Standard under any values the tests set. With
// webhook.failClosedForEPHI its webhooks are installed into a real
// kube-apiserver (bin/k8s) with no webhook server behind them, to see which
// requests fail closed.
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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"

	"github.com/phiguard/phiguard/internal/manifests"
	"github.com/phiguard/phiguard/internal/podsecurity"
)

var root = filepath.Join("..", "..")

func render(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := helmTemplate(args...).Output()
	if err != nil {
		t.Fatalf("helm template %v: %v (make verify-chart builds bin/helm)", args, stderr(err))
	}
	return out
}

// renderFails renders the chart with values that must be refused, and
// returns what Helm said.
func renderFails(t *testing.T, args ...string) string {
	t.Helper()
	out, err := helmTemplate(args...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("helm template %v: want it to fail, got error %v and:\n%.500s", args, err, out)
	}
	return string(out)
}

func helmTemplate(args ...string) *exec.Cmd {
	all := append([]string{"template", "phiguard", filepath.Join(root, "charts", "phiguard"),
		"--namespace", "phiguard-system", "--kube-version", "v1.37.2", "--include-crds"}, args...)
	return exec.Command(filepath.Join(root, "bin", "helm"), all...)
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
		{"--set", "replicas=1", "--set", "evidence.persistence.enabled=true"},
		{"--set", "evidence.sink=s3", "--set", "evidence.s3.bucket=evidence", "--set", "evidence.s3.credentialsSecret=s3"},
		{"--set", "evidence.sink=none"},
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

// evidenceSetup is what a rendered chart does with the evidence trail.
type evidenceSetup struct {
	// flags are the manager's --evidence-* arguments, in order.
	flags []string
	// volume is the source of the Deployment's volume "evidence":
	// "emptyDir", "claim <name>", or "" when there is none.
	volume string
	// mount is where the manager mounts that volume ("" for nowhere).
	mount string
	// strategy is the Deployment's update strategy ("" for the default).
	strategy appsv1.DeploymentStrategyType
	// fsGroup is the pod's fsGroup (0 for none).
	fsGroup int64
	// claim is the PersistentVolumeClaim the chart renders, if any.
	claim *evidenceClaim
}

// evidenceClaim is what matters of the rendered PersistentVolumeClaim.
type evidenceClaim struct {
	name, storage, storageClass string
	accessModes                 []corev1.PersistentVolumeAccessMode
	// resourcePolicy is its helm.sh/resource-policy annotation.
	resourcePolicy string
}

func evidenceOf(t *testing.T, data []byte) evidenceSetup {
	t.Helper()
	var got evidenceSetup
	objs := objects(t, data)
	obj := objs["Deployment/phiguard-controller-manager"]
	if obj == nil {
		t.Fatal("the chart renders no Deployment phiguard-controller-manager")
	}
	var dep appsv1.Deployment
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &dep); err != nil {
		t.Fatal(err)
	}
	pod := dep.Spec.Template.Spec
	manager := pod.Containers[0]
	for _, arg := range manager.Args {
		if strings.HasPrefix(arg, "--evidence-") {
			got.flags = append(got.flags, arg)
		}
	}
	got.volume = evidenceVolume(pod.Volumes)
	for _, m := range manager.VolumeMounts {
		if m.Name == "evidence" {
			got.mount = m.MountPath
		}
	}
	got.strategy = dep.Spec.Strategy.Type
	if sc := pod.SecurityContext; sc != nil && sc.FSGroup != nil {
		got.fsGroup = *sc.FSGroup
	}
	got.claim = evidenceClaimOf(t, objs)
	return got
}

// evidenceVolume is the source of volume "evidence" among volumes:
// "emptyDir", "claim <name>", or "" when there is none.
func evidenceVolume(volumes []corev1.Volume) string {
	source := ""
	for _, v := range volumes {
		if v.Name != "evidence" {
			continue
		}
		switch {
		case v.EmptyDir != nil:
			source = "emptyDir"
		case v.PersistentVolumeClaim != nil:
			source = "claim " + v.PersistentVolumeClaim.ClaimName
		default:
			source = "unexpected"
		}
	}
	return source
}

// evidenceClaimOf is the one PersistentVolumeClaim among objs, or nil.
func evidenceClaimOf(t *testing.T, objs map[string]*unstructured.Unstructured) *evidenceClaim {
	t.Helper()
	var claim *evidenceClaim
	for key, obj := range objs {
		if !strings.HasPrefix(key, "PersistentVolumeClaim/") {
			continue
		}
		var pvc corev1.PersistentVolumeClaim
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &pvc); err != nil {
			t.Fatal(err)
		}
		if claim != nil {
			t.Fatalf("the chart renders more than one PersistentVolumeClaim: %s and %s", claim.name, pvc.Name)
		}
		storage := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
		claim = &evidenceClaim{name: pvc.Name, storage: storage.String(), accessModes: pvc.Spec.AccessModes,
			resourcePolicy: pvc.Annotations["helm.sh/resource-policy"]}
		if pvc.Spec.StorageClassName != nil {
			claim.storageClass = *pvc.Spec.StorageClassName
		}
	}
	return claim
}

// TestChartEvidence: each evidence sink's volume, flags and claim.
func TestChartEvidence(t *testing.T) {
	const dir = "/var/lib/phiguard/evidence"
	rwo := []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
	for _, tc := range []struct {
		name   string
		values []string
		want   evidenceSetup
	}{{
		name: "defaults: an emptyDir the manager is told of",
		want: evidenceSetup{flags: []string{"--evidence-dir-ephemeral"}, volume: "emptyDir", mount: dir},
	}, {
		name:   "dir with a segment interval",
		values: []string{"--set", "evidence.segmentInterval=5m"},
		want: evidenceSetup{flags: []string{"--evidence-dir-ephemeral", "--evidence-segment-interval=5m"},
			volume: "emptyDir", mount: dir},
	}, {
		name: "dir on a claim of the size and class set",
		values: []string{"--set", "replicas=1", "--set", "evidence.persistence.enabled=true",
			"--set", "evidence.persistence.size=20Gi", "--set", "evidence.persistence.storageClassName=fast-ssd"},
		want: evidenceSetup{volume: "claim phiguard-evidence", mount: dir, strategy: appsv1.RecreateDeploymentStrategyType,
			fsGroup: 65532, claim: &evidenceClaim{name: "phiguard-evidence", storage: "20Gi", storageClass: "fast-ssd",
				accessModes: rwo, resourcePolicy: "keep"}},
	}, {
		name:   "dir on a claim of the default class",
		values: []string{"--set", "replicas=1", "--set", "evidence.persistence.enabled=true"},
		want: evidenceSetup{volume: "claim phiguard-evidence", mount: dir, strategy: appsv1.RecreateDeploymentStrategyType,
			fsGroup: 65532, claim: &evidenceClaim{name: "phiguard-evidence", storage: "5Gi", accessModes: rwo, resourcePolicy: "keep"}},
	}, {
		name: "dir on an existing claim",
		values: []string{"--set", "replicas=1", "--set", "evidence.persistence.enabled=true",
			"--set", "evidence.persistence.existingClaim=evidence-2026"},
		want: evidenceSetup{volume: "claim evidence-2026", mount: dir, strategy: appsv1.RecreateDeploymentStrategyType, fsGroup: 65532},
	}, {
		name:   "s3 with only what it requires",
		values: []string{"--set", "evidence.sink=s3", "--set", "evidence.s3.bucket=phi-evidence", "--set", "evidence.s3.credentialsSecret=evidence-s3"},
		want: evidenceSetup{flags: []string{"--evidence-sink=s3", "--evidence-s3-bucket=phi-evidence",
			"--evidence-s3-credentials-secret=evidence-s3"}, volume: "emptyDir", mount: dir},
	}, {
		name: "s3 with every value",
		values: []string{"--set", "evidence.sink=s3", "--set", "evidence.s3.bucket=phi-evidence",
			"--set", "evidence.s3.credentialsSecret=evidence-s3", "--set", "evidence.s3.endpoint=http://minio.storage:9000",
			"--set", "evidence.s3.prefix=prod", "--set", "evidence.s3.region=eu-west-1", "--set", "evidence.s3.pathStyle=true",
			"--set", "evidence.segmentInterval=30s"},
		want: evidenceSetup{flags: []string{"--evidence-sink=s3", "--evidence-s3-endpoint=http://minio.storage:9000",
			"--evidence-s3-bucket=phi-evidence", "--evidence-s3-prefix=prod", "--evidence-s3-region=eu-west-1",
			"--evidence-s3-path-style", "--evidence-s3-credentials-secret=evidence-s3", "--evidence-segment-interval=30s"},
			volume: "emptyDir", mount: dir},
	}, {
		name:   "none: no volume",
		values: []string{"--set", "evidence.sink=none"},
		want:   evidenceSetup{flags: []string{"--evidence-sink=none"}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := evidenceOf(t, render(t, tc.values...))
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("values %v:\n got %+v (claim %+v)\nwant %+v (claim %+v)", tc.values, got, got.claim, tc.want, tc.want.claim)
			}
		})
	}
}

// TestChartEvidenceRefusesValues: values that cannot work fail the render
// with a message that says what to set.
func TestChartEvidenceRefusesValues(t *testing.T) {
	for _, tc := range []struct {
		values []string
		want   string
	}{{
		values: []string{"--set", "evidence.persistence.enabled=true"},
		want:   "evidence.persistence.enabled: a ReadWriteOnce volume serves one replica, and replicas is 2: set replicas: 1 or use evidence.sink: s3",
	}, {
		values: []string{"--set", "evidence.sink=s3", "--set", "evidence.s3.credentialsSecret=evidence-s3"},
		want:   "evidence.sink is s3: set evidence.s3.bucket",
	}, {
		values: []string{"--set", "evidence.sink=s3", "--set", "evidence.s3.bucket=phi-evidence"},
		want:   "evidence.sink is s3: set evidence.s3.credentialsSecret",
	}, {
		values: []string{"--set", "evidence.sink=s3", "--set", "evidence.s3.bucket=phi-evidence",
			"--set", "evidence.s3.credentialsSecret=evidence-s3", "--set", "replicas=1", "--set", "evidence.persistence.enabled=true"},
		want: "evidence.persistence.enabled is for the dir sink, and evidence.sink is s3",
	}, {
		values: []string{"--set", "evidence.sink=tape"},
		want:   `evidence.sink is "tape": set dir, s3 or none`,
	}} {
		if out := renderFails(t, tc.values...); !strings.Contains(out, tc.want) {
			t.Errorf("values %v: helm said\n%s\nwant it to say %q", tc.values, out, tc.want)
		}
	}
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
