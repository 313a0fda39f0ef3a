package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/cli"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// previewWorkload is a PHIWorkload file in Audit throughout, selecting
// app=records in ns.
func previewWorkload(ns string) string {
	return `apiVersion: compliance.phiguard.io/v1alpha1
kind: PHIWorkload
metadata:
  name: records
  namespace: ` + ns + `
spec:
  selector:
    matchLabels: {app: records}
  networkIsolation: {mode: Audit}
  encryptionAtRest: {mode: Audit}
  backup: {mode: Audit}
  auditLogging: {mode: Audit}
  transmissionSecurity: {mode: Audit}
  accessControl: {mode: Audit}
  integrity: {mode: Audit}
  availability: {mode: Audit}
`
}

// writeFile writes content to a file of the test's own, and returns its path.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "workload.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// create creates objects, failing the test on any error but AlreadyExists
// (for objects that tests share, such as StorageClasses and namespaces).
func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, obj := range objs {
		if err := k8sClient.Create(t.Context(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

func namespace(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// previewCluster creates in ns what the previews judge: two pods of
// app=records (one mounting a claim of an unencrypted class), that claim, a
// Deployment whose template makes such pods, and the namespace Velero would
// run in.
func previewCluster(t *testing.T, ns string) {
	t.Helper()
	create(t, namespace(ns), namespace("velero"),
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "preview-plain"}, Provisioner: "example.com/plain"},
		&storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "preview-encrypted"}, Provisioner: "driver.longhorn.io",
			Parameters: map[string]string{"encrypted": "true"}},
		&corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-data", Labels: map[string]string{"app": "records"}},
			Spec: corev1.PersistentVolumeClaimSpec{
				StorageClassName: ptr.To("preview-plain"),
				AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			},
		})
	app := corev1.Container{Name: "app", Image: "registry.example/records:1"}
	for _, name := range []string{"records-0", "records-1"} {
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "records"}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{app}},
		}
		if name == "records-0" {
			pod.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "records-data"}}}}
		}
		create(t, pod)
	}
	create(t, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "records"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{app}},
			},
		},
	})
}

// encryptedClasses is the list of encrypted StorageClasses in an admission
// message; it names every encrypted class of the cluster, which other tests
// may add to.
var encryptedClasses = regexp.MustCompile(`use an encrypted StorageClass: [^;."\n]*`)

// ownClasses keeps, of the encrypted classes a message lists, the ones this
// test created, so that the output does not depend on other tests.
func ownClasses(out string) string {
	return encryptedClasses.ReplaceAllStringFunc(out, func(m string) string {
		const prefix = "use an encrypted StorageClass: "
		var own []string
		for _, c := range strings.Split(strings.TrimPrefix(m, prefix), ", ") {
			if strings.HasPrefix(c, "preview-") {
				own = append(own, c)
			}
		}
		return prefix + strings.Join(own, ", ")
	})
}

// assertNothingWritten checks that the preview of records in ns left the
// cluster as it was: no PHIWorkload, NetworkPolicy, PodDisruptionBudget or
// Velero Schedule of phiguard's.
func assertNothingWritten(t *testing.T, ns string) {
	t.Helper()
	ctx := t.Context()
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "records"}, &phiguardv1alpha1.PHIWorkload{}); !apierrors.IsNotFound(err) {
		t.Errorf("PHIWorkload %s/records: want NotFound, got %v", ns, err)
	}
	var policies networkingv1.NetworkPolicyList
	if err := k8sClient.List(ctx, &policies, client.InNamespace(ns)); err != nil || len(policies.Items) != 0 {
		t.Errorf("NetworkPolicies in %s: want none, got %d (%v)", ns, len(policies.Items), err)
	}
	var budgets policyv1.PodDisruptionBudgetList
	if err := k8sClient.List(ctx, &budgets, client.InNamespace(ns)); err != nil || len(budgets.Items) != 0 {
		t.Errorf("PodDisruptionBudgets in %s: want none, got %d (%v)", ns, len(budgets.Items), err)
	}
	var schedules velerov1.ScheduleList
	if err := k8sClient.List(ctx, &schedules, client.InNamespace("velero")); err != nil {
		t.Fatal(err)
	}
	for _, s := range schedules.Items {
		if s.Labels[phiguardv1alpha1.WorkloadLabel] == "records" && strings.Contains(s.Name, ns) {
			t.Errorf("Velero Schedule %s was written", s.Name)
		}
	}
	var pod corev1.Pod
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "records-0"}, &pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.InitContainers) != 0 {
		t.Errorf("pod records-0 was changed: init containers %v", pod.Spec.InitContainers)
	}
}

// An Audit workload not yet applied: Enforce would create the
// NetworkPolicy, the PodDisruptionBudget and the Velero Schedule; admission
// would refuse the unencrypted claim and the pods and template that fail
// integrity, and give the pods the audit sidecar. Nothing is written.
func TestPreviewAuditWorkloadAsEnforce(t *testing.T) {
	const ns = "preview-audit"
	previewCluster(t, ns)
	file := writeFile(t, previewWorkload(ns))

	out, err := run(t, "preview", file)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "preview-audit-table", ownClasses(out))
	assertNothingWritten(t, ns)

	out, err = run(t, "preview", "-f", file, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "preview-audit-json", withoutSafeguardMessages(t, ownClasses(out)))
	assertNothingWritten(t, ns)
}

// withoutSafeguardMessages decodes a JSON result, checks that every
// safeguard has a message, and encodes it again without them: they are the
// safeguards' own (their tests pin them), and some name cluster-wide facts
// that other tests change (who may exec into pods, the encrypted classes).
func withoutSafeguardMessages(t *testing.T, out string) string {
	t.Helper()
	var res cli.PreviewResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decoding the JSON output: %v\n%s", err, out)
	}
	for i := range res.Safeguards {
		if res.Safeguards[i].Message == "" {
			t.Errorf("safeguard %s has no message", res.Safeguards[i].Name)
		}
		res.Safeguards[i].Message = ""
	}
	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(data) + "\n"
}

// withoutSafeguardMessagesYAML is withoutSafeguardMessages for -o yaml.
func withoutSafeguardMessagesYAML(t *testing.T, out string) string {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(out))
	if err != nil {
		t.Fatalf("decoding the YAML output: %v\n%s", err, out)
	}
	stripped := withoutSafeguardMessages(t, string(data))
	back, err := yaml.JSONToYAML([]byte(stripped))
	if err != nil {
		t.Fatal(err)
	}
	return string(back)
}

// --mode-as-written keeps the file's Audit: nothing but the PHIWorkload is
// created, and admission only warns.
func TestPreviewModeAsWritten(t *testing.T) {
	const ns = "preview-written"
	previewCluster(t, ns)
	out, err := run(t, "preview", writeFile(t, previewWorkload(ns)), "--mode-as-written", "-o", "wide")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "preview-as-written-wide", ownClasses(out))
	assertNothingWritten(t, ns)
}

// An applied workload whose NetworkPolicy someone edited by hand: preview
// shows the policy as a change, with the fields phiguard would put back.
func TestPreviewShowsHandEditAsChange(t *testing.T) {
	const ns = "preview-edited"
	ctx := t.Context()
	create(t, namespace(ns), namespace("velero"))
	create(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-0", Labels: map[string]string{"app": "records"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}},
	})
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
				NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{Mode: phiguardv1alpha1.ModeEnforce},
			},
		},
	}
	create(t, w)
	// One reconcile, as the manager would make it, creates phiguard's objects.
	r := &controller.PHIWorkloadReconciler{Client: k8sClient, Registry: safeguard.New(safeguard.Options{}),
		Clock: clock.RealClock{}}
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(w)}); err != nil {
		t.Fatalf("reconciling: %v", err)
	}
	np := &networkingv1.NetworkPolicy{}
	if err := k8sClient.Get(ctx, types.NamespacedName{Namespace: ns, Name: "phiguard-records"}, np); err != nil {
		t.Fatalf("the reconcile made no NetworkPolicy: %v", err)
	}
	// By hand: ingress only, and an allow-all rule.
	np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	np.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{}}
	if err := k8sClient.Update(ctx, np, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	edited := np.ResourceVersion

	// The file is an edit of the workload too: integrity in Audit.
	file := writeFile(t, `apiVersion: compliance.phiguard.io/v1alpha1
kind: PHIWorkload
metadata:
  name: records
spec:
  selector:
    matchLabels: {app: records}
  networkIsolation: {mode: Enforce}
  integrity: {mode: Audit}
`)
	out, err := run(t, "preview", file, "-n", ns)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "preview-edited-table", ownClasses(out))

	// As written, network isolation in Audit: phiguard would delete its policy.
	file = writeFile(t, `apiVersion: compliance.phiguard.io/v1alpha1
kind: PHIWorkload
metadata:
  name: records
  namespace: preview-edited
spec:
  selector:
    matchLabels: {app: records}
  networkIsolation: {mode: Audit}
`)
	out, err = run(t, "preview", file, "--mode-as-written", "-o", "yaml")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "preview-edited-audit-yaml", withoutSafeguardMessagesYAML(t, ownClasses(out)))

	stored := &phiguardv1alpha1.PHIWorkload{}
	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(w), stored); err != nil {
		t.Fatal(err)
	}
	if stored.Generation != 1 || stored.Spec.Integrity != nil {
		t.Errorf("the preview wrote PHIWorkload %s: generation %d, integrity %v", w.Name, stored.Generation, stored.Spec.Integrity)
	}

	if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(np), np); err != nil {
		t.Fatal(err)
	}
	if np.ResourceVersion != edited || len(np.Spec.PolicyTypes) != 1 {
		t.Errorf("the preview wrote NetworkPolicy %s: resourceVersion %s (edited: %s), policyTypes %v", np.Name, np.ResourceVersion, edited, np.Spec.PolicyTypes)
	}
	var budgets policyv1.PodDisruptionBudgetList
	if err := k8sClient.List(ctx, &budgets, client.InNamespace(ns)); err != nil || len(budgets.Items) != 0 {
		t.Errorf("PodDisruptionBudgets in %s: want none, got %d (%v)", ns, len(budgets.Items), err)
	}
}

// A PHIWorkload the CRD refuses is reported with the apiserver's message.
func TestPreviewReportsTheAPIServersRefusal(t *testing.T) {
	const ns = "preview-invalid"
	create(t, namespace(ns))
	file := writeFile(t, `apiVersion: compliance.phiguard.io/v1alpha1
kind: PHIWorkload
metadata:
  name: records
  namespace: preview-invalid
spec:
  selector:
    matchLabels: {app: records}
  auditLogging: {mode: "Off"}
`)
	_, err := run(t, "preview", file)
	if err == nil {
		t.Fatal("preview of an invalid PHIWorkload succeeded")
	}
	golden(t, "preview-invalid-error", err.Error()+"\n")
}

// The file comes from standard input with -f -. A safeguard Off under a
// decision stays Off; the others run in Enforce.
func TestPreviewReadsStandardInput(t *testing.T) {
	const ns = "preview-stdin"
	create(t, namespace(ns), namespace("velero"))
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	var out, errOut bytes.Buffer
	cmd := cli.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(`apiVersion: compliance.phiguard.io/v1alpha1
kind: PHIWorkload
metadata: {name: records}
spec:
  selector: {matchLabels: {app: records}}
  transmissionSecurity: {mode: "Off"}
  decisions:
  - safeguard: TransmissionSecure
    kind: Alternative
    alternativeMeasure: traffic is encrypted by the node-to-node WireGuard mesh
    justification: every packet between nodes is encrypted below the pod network
    approvedBy: security-officer@clinic.example
    expires: "` + expires + `"
`), Out: &out, ErrOut: &errOut})
	cmd.SetArgs([]string{"--kubeconfig", kubeconfig, "preview", "-f", "-", "-n", ns, "-o", "wide"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("%v (stderr: %s)", err, errOut.String())
	}
	golden(t, "preview-stdin-wide", out.String())
}

// A PHIWorkload phiguard's own webhook would refuse (here, in an exempt
// namespace) is reported with the webhook's message, even where the
// webhook is not installed: the preview runs it in-process.
func TestPreviewReportsTheWebhooksRefusal(t *testing.T) {
	file := writeFile(t, "apiVersion: compliance.phiguard.io/v1alpha1\nkind: PHIWorkload\nmetadata: {name: records}\n"+
		"spec:\n  selector: {matchLabels: {app: records}}\n")
	_, err := run(t, "preview", file, "-n", "kube-system")
	if err == nil {
		t.Fatal("preview of a PHIWorkload in kube-system succeeded")
	}
	golden(t, "preview-exempt-error", err.Error()+"\n")
}

func TestPreviewErrors(t *testing.T) {
	valid := writeFile(t, previewWorkload("preview-errors"))
	deployment := writeFile(t, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: records}\n")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no file", []string{"preview"},
			"give the PHIWorkload's file: kubectl phiguard preview <workload.yaml> (or -f -, for standard input)"},
		{"two files", []string{"preview", valid, "-f", valid},
			"give the PHIWorkload's file once: as an argument or with -f, not both"},
		{"missing file", []string{"preview", "/nonexistent/records.yaml"},
			"reading the PHIWorkload: open /nonexistent/records.yaml: no such file or directory"},
		{"not a PHIWorkload", []string{"preview", deployment},
			"holds a Deployment records (apps/v1), not a PHIWorkload (compliance.phiguard.io/v1alpha1)"},
		{"namespace mismatch", []string{"preview", valid, "-n", "elsewhere"},
			"PHIWorkload records is in namespace preview-errors, not elsewhere (-n): drop -n, or pass -n preview-errors"},
		{"bad output", []string{"preview", valid, "-o", "xml"},
			`unknown output format "xml": use one of table, wide, json, yaml`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, tc.args...)
			if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
				t.Fatalf("error: want …%q, got %v", tc.want, err)
			}
		})
	}
}
