//go:build e2e

package e2e

import (
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/policyreport"
)

// update rewrites the golden files of the plugin's outputs under testdata.
var update = flag.Bool("update", false, "rewrite the golden files in test/e2e/testdata")

// auditNamespace holds the workloads of the dashboards-and-auditors case.
const auditNamespace = "e2e-audit"

// plugin runs bin/kubectl-phiguard against the cluster as its administrator.
func plugin(args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(root, "bin", "kubectl-phiguard"),
		append([]string{"--kubeconfig", cluster.Kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("kubectl phiguard %v: %w: %s", args, err, errOut.String())
	}
	return out.String(), nil
}

// volatile matches what changes from run to run in the plugin's output: the
// random suffixes of pods and ReplicaSets, times, ages and UIDs.
var volatile = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), "<uid>"},
	{regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`), "<time>"},
	{regexp.MustCompile(`\b(intake|vault)-[0-9a-z]{8,10}-[0-9a-z]{5}\b`), "$1-<pod>"},
	{regexp.MustCompile(`\b(intake|vault)-[0-9a-z]{8,10}\b`), "$1-<replicaset>"},
	// The simulated Node the scheduler picked.
	{regexp.MustCompile(`\bnode-\d{6}\b`), "node-<n>"},
	// How long until a decision expires: "9d23h", "10d".
	{regexp.MustCompile(`\b\d+d(\d+h)?(\d+m)?\b`), "<duration>"},
}

// normalize replaces what changes from run to run.
func normalize(s string) string {
	for _, v := range volatile {
		s = v.re.ReplaceAllString(s, v.with)
	}
	return s
}

// expectGolden compares the normalized output with testdata/<name>.golden,
// or rewrites the file when the suite runs with -update.
func expectGolden(name, got string) {
	GinkgoHelper()
	got = normalize(got)
	path := filepath.Join("testdata", name+".golden")
	if *update {
		Expect(os.MkdirAll("testdata", 0o755)).To(Succeed())
		Expect(os.WriteFile(path, []byte(got), 0o644)).To(Succeed())
		return
	}
	want, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred(), "run `go test -tags e2e ./test/e2e -args -update` to create %s", path)
	Expect(got).To(Equal(string(want)), "%s (accept a change with -update)", path)
}

// scrape GETs the manager's /metrics over HTTPS with a bearer token ("" for none).
func scrape(token string) (int, string) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+metricsAddr+"/metrics", nil)
	Expect(err).NotTo(HaveOccurred())
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	// The manager serves metrics with a certificate it generated itself,
	// as it does in a cluster when no certificate is mounted: Prometheus
	// scrapes it with insecureSkipVerify there too (the chart's ServiceMonitor).
	httpClient := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, string(body)
}

// serviceAccountToken creates a ServiceAccount and returns a token of it.
func serviceAccountToken(ns, name string) string {
	GinkgoHelper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	Expect(k8s.Create(ctx, sa)).To(Succeed())
	token := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}
	Expect(k8s.SubResource("token").Create(ctx, sa, token)).To(Succeed())
	return token.Status.Token
}

// settled waits until the workload's status describes its spec and says Ready.
func settled(key types.NamespacedName) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		w := get(g, key)
		g.Expect(w.Status.ObservedGeneration).To(Equal(w.Generation))
		g.Expect(meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition)).NotTo(BeNil())
		g.Expect(meta.IsStatusConditionTrue(w.Status.Conditions, phiguardv1alpha1.ReconcilingCondition)).To(BeFalse())
	}, timeout, poll).Should(Succeed())
}

var _ = Describe("what dashboards and auditors read", Ordered, func() {
	var vault, intake types.NamespacedName

	BeforeAll(func() {
		ns := newNamespace(auditNamespace)
		w := workload(ns, "vault", "vault")
		w.Spec.Availability = &phiguardv1alpha1.AvailabilitySpec{Mode: phiguardv1alpha1.ModeEnforce}
		vault = client.ObjectKeyFromObject(w)
		Expect(k8s.Create(ctx, w)).To(Succeed())
		compliantApp(ns, "vault")
		completeBackup(w)
		Eventually(func(g Gomega) {
			g.Expect(meta.IsStatusConditionTrue(get(g, vault).Status.Conditions, phiguardv1alpha1.ReadyCondition)).To(BeTrue())
		}, timeout, poll).Should(Succeed())

		i := workload(ns, "intake", "intake")
		// Its TLS is a mesh's, under a decision that expires within 30 days.
		i.Spec.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}
		i.Spec.Decisions = []phiguardv1alpha1.Decision{{
			Safeguard: phiguardv1alpha1.TransmissionSecure, Kind: phiguardv1alpha1.DecisionAlternative,
			AlternativeMeasure: "the clinic's mesh terminates mTLS in front of every pod",
			Justification:      "TLS is provided by the mesh, so the application does not terminate it itself",
			ApprovedBy:         "security-officer@clinic.example",
			Expires:            metav1.NewTime(time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)),
		}}
		intake = client.ObjectKeyFromObject(i)
		Expect(k8s.Create(ctx, i)).To(Succeed())
		Expect(k8s.Create(ctx, deployment(ns, "intake", 1, nil))).To(Succeed())
		completeBackup(i)
		Eventually(func(g Gomega) {
			w := get(g, intake)
			g.Expect(w.Status.MatchedPods).To(Equal(int32(1)))
			g.Expect(w.Status.Score).To(Equal("5/8"))
		}, timeout, poll).Should(Succeed())
		settled(vault)
		settled(intake)
	})

	It("writes one PolicyReport for the namespace and a ClusterPolicyReport whose results match the status", func() {
		gvk := schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"}
		Eventually(func(g Gomega) {
			report := &unstructured.Unstructured{}
			report.SetGroupVersionKind(gvk)
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: auditNamespace, Name: policyreport.Policy}, report)).To(Succeed())
			results, _, err := unstructured.NestedSlice(report.Object, "results")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(results).To(HaveLen(16), "one result per workload and safeguard")
			var want policyreport.Summary
			for _, key := range []types.NamespacedName{vault, intake} {
				want = addSummary(want, policyreport.Summarize(policyreport.WorkloadResults(get(g, key))))
			}
			g.Expect(want).To(Equal(policyreport.Summary{Pass: 12, Warn: 1, Fail: 3}))
			summary, _, err := unstructured.NestedMap(report.Object, "summary")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(summary).To(Equal(map[string]any{
				"pass": int64(want.Pass), "fail": int64(want.Fail), "warn": int64(want.Warn),
				"error": int64(want.Error), "skip": int64(want.Skip),
			}))
			for _, r := range results {
				res := r.(map[string]any)
				g.Expect(res["policy"]).To(Equal(policyreport.Policy))
				resources := res["resources"].([]any)
				g.Expect(resources).NotTo(BeEmpty())
				owner := resources[0].(map[string]any)
				if owner["name"] == "vault" {
					g.Expect(res["result"]).To(Equal("pass"), "vault's %s", res["rule"])
				}
				if owner["name"] == "intake" && res["rule"] == string(phiguardv1alpha1.AccessControlled) {
					g.Expect(res["result"]).To(Equal("fail"))
					g.Expect(res["category"]).To(Equal("§164.312(a)(1)"))
				}
				if owner["name"] == "intake" && res["rule"] == string(phiguardv1alpha1.TransmissionSecure) {
					g.Expect(res["result"]).To(Equal("warn"), "off under a documented decision")
					g.Expect(res["properties"]).To(HaveKeyWithValue(policyreport.PropertyDecisionApprovedBy, "security-officer@clinic.example"))
				}
			}

			cluster := &unstructured.Unstructured{}
			cluster.SetGroupVersionKind(gvk.GroupVersion().WithKind("ClusterPolicyReport"))
			g.Expect(k8s.Get(ctx, types.NamespacedName{Name: policyreport.Policy}, cluster)).To(Succeed())
			clusterResults, _, err := unstructured.NestedSlice(cluster.Object, "results")
			g.Expect(err).NotTo(HaveOccurred())
			var ours []string
			for _, r := range clusterResults {
				res := r.(map[string]any)
				for _, o := range res["resources"].([]any) {
					if o.(map[string]any)["namespace"] == auditNamespace {
						ours = append(ours, fmt.Sprintf("%s=%s", o.(map[string]any)["name"], res["result"]))
					}
				}
			}
			g.Expect(ours).To(ConsistOf("vault=pass", "intake=fail"))
			keep("policyreport.yaml", report.Object)
		}, timeout, poll).Should(Succeed())
	})

	It("serves its metrics only to callers the chart's metrics-reader role is bound to", func() {
		code, _ := scrape("")
		Expect(code).To(Equal(http.StatusUnauthorized), "no token")
		stranger := serviceAccountToken(auditNamespace, "stranger")
		code, _ = scrape(stranger)
		Expect(code).To(Equal(http.StatusForbidden), "a token without the role")

		reader := serviceAccountToken(auditNamespace, "prometheus")
		Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-prometheus-metrics"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "phiguard-metrics-reader"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: auditNamespace, Name: "prometheus"}},
		})).To(Succeed())
		Eventually(func(g Gomega) {
			code, body := scrape(reader)
			g.Expect(code).To(Equal(http.StatusOK))
			for _, line := range []string{
				`phiguard_workload_compliant{namespace="e2e-audit",workload="vault"} 1`,
				`phiguard_workload_compliant{namespace="e2e-audit",workload="intake"} 0`,
				`phiguard_workload_score_ratio{namespace="e2e-audit",workload="intake"} 0.625`,
				`phiguard_safeguard_status{namespace="e2e-audit",safeguard="AccessControlled",status="False",workload="intake"} 1`,
				`phiguard_safeguard_status{namespace="e2e-audit",safeguard="AccessControlled",status="True",workload="intake"} 0`,
				`phiguard_safeguard_status{namespace="e2e-audit",safeguard="AccessControlled",status="True",workload="vault"} 1`,
			} {
				g.Expect(strings.Split(body, "\n")).To(ContainElement(line))
			}
			keep("metrics.txt", body)
			g.Expect(body).To(MatchRegexp(`(?m)^phiguard_admission_decisions_total\{result="allowed",webhook="[^"]+"\} [1-9]`))
			g.Expect(body).To(MatchRegexp(`(?m)^phiguard_backup_last_success_timestamp_seconds\{namespace="e2e-audit",workload="vault"\} \d`))
			g.Expect(body).To(MatchRegexp(`(?m)^phiguard_decision_expiry_timestamp_seconds\{[^}]*namespace="e2e-audit"[^}]*safeguard="TransmissionSecure"[^}]*workload="intake"[^}]*\} \d`))
		}, timeout, poll).Should(Succeed())
	})

	It("answers every kubectl phiguard command about them, as the golden outputs say", func() {
		for _, tc := range []struct {
			golden string
			args   []string
		}{
			{"status", []string{"status"}},
			{"status-wide", []string{"status", "-o", "wide"}},
			{"explain-intake", []string{"explain", "intake"}},
			{"explain-vault", []string{"explain", "vault"}},
			{"decisions-wide", []string{"decisions", "-o", "wide"}},
			{"risk", []string{"risk"}},
			{"inventory", []string{"inventory"}},
			{"inventory-mermaid", []string{"inventory", "--diagram", "mermaid"}},
		} {
			out, err := plugin(append(tc.args, "-n", auditNamespace)...)
			Expect(err).NotTo(HaveOccurred())
			expectGolden(tc.golden, out)
		}

		By("preview: what Enforce would do to intake as it is stored, written nowhere")
		stored := get(Default, intake)
		manifest, err := yaml.Marshal(&phiguardv1alpha1.PHIWorkload{
			TypeMeta:   metav1.TypeMeta{APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload"},
			ObjectMeta: metav1.ObjectMeta{Namespace: stored.Namespace, Name: stored.Name},
			Spec:       stored.Spec,
		})
		Expect(err).NotTo(HaveOccurred())
		file := filepath.Join(cluster.WorkDir, "intake.yaml")
		Expect(os.WriteFile(file, manifest, 0o600)).To(Succeed())
		var before appsv1.DeploymentList
		Expect(k8s.List(ctx, &before, client.InNamespace(auditNamespace))).To(Succeed())
		out, err := plugin("preview", file)
		Expect(err).NotTo(HaveOccurred())
		expectGolden("preview-intake", out)
		var after appsv1.DeploymentList
		Expect(k8s.List(ctx, &after, client.InNamespace(auditNamespace))).To(Succeed())
		Expect(after.Items).To(HaveLen(len(before.Items)))
		for i := range after.Items {
			Expect(after.Items[i].ResourceVersion).To(Equal(before.Items[i].ResourceVersion), "preview writes nothing")
		}
		w := get(Default, intake)
		Expect(w.Spec.Decisions).To(HaveLen(1), "preview leaves the stored PHIWorkload as it is")
	})
})

// keep writes what a case read to the cluster's directory (bin/cluster/<name>),
// for a reader of the suite's results: a YAML object or a text.
func keep(name string, v any) {
	GinkgoHelper()
	b, ok := v.([]byte)
	if text, isText := v.(string); isText {
		b, ok = []byte(text), true
	}
	if !ok {
		var err error
		b, err = yaml.Marshal(v)
		Expect(err).NotTo(HaveOccurred())
	}
	Expect(os.WriteFile(filepath.Join(cluster.WorkDir, name), b, 0o600)).To(Succeed())
}

func addSummary(a, b policyreport.Summary) policyreport.Summary {
	return policyreport.Summary{Pass: a.Pass + b.Pass, Fail: a.Fail + b.Fail, Warn: a.Warn + b.Warn,
		Error: a.Error + b.Error, Skip: a.Skip + b.Skip}
}
