// Package podsecurity checks that the manager's pod, as config/ and the Helm
// chart install it, passes the restricted Pod Security Standard, judged by
// k8s.io/pod-security-admission's own checks (the library the apiserver's
// admission plugin runs), at the latest version.
package podsecurity

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// Restricted fails the test for each restricted-profile check the
// Deployment's pod template does not pass.
func Restricted(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	if detail := violations(t, d); detail != "" {
		t.Errorf("Deployment %s does not pass the restricted Pod Security Standard: %s", d.Name, detail)
	}
}

// violations are the restricted-profile checks the pod template fails, or "".
func violations(t *testing.T, d *appsv1.Deployment) string {
	t.Helper()
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	results := evaluator.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()},
		&d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec)
	if agg := policy.AggregateCheckResults(results); !agg.Allowed {
		return agg.ForbiddenDetail()
	}
	return ""
}

// Hardened fails the test where the manager's container is not hardened
// beyond what the restricted profile asks: a read-only root filesystem, and
// requests and limits set.
func Hardened(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	for _, c := range d.Spec.Template.Spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: the root filesystem is not read-only", c.Name)
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			t.Errorf("container %s: set memory limits and cpu requests", c.Name)
		}
	}
	if d.Spec.Template.Spec.TerminationGracePeriodSeconds == nil || *d.Spec.Template.Spec.TerminationGracePeriodSeconds <= 20 {
		t.Errorf("terminationGracePeriodSeconds must exceed the manager's 20 s graceful shutdown")
	}
}

// Deployments decodes the Deployments of a multi-document YAML stream.
func Deployments(t *testing.T, data []byte) []*appsv1.Deployment {
	t.Helper()
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*appsv1.Deployment
	for {
		var d appsv1.Deployment
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if d.Kind == "Deployment" {
			out = append(out, &d)
		}
	}
	if len(out) == 0 {
		t.Fatal("no Deployment found")
	}
	return out
}

func TestConfigManagerIsRestricted(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "manager", "manager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range Deployments(t, data) {
		Restricted(t, d)
		Hardened(t, d)
	}
}

// TestTheCheckCanFail keeps the check honest: a privileged pod fails it.
func TestTheCheckCanFail(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "manager", "manager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	weakened := strings.Replace(string(data), "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", 1)
	if weakened == string(data) {
		t.Fatal("the manifest no longer sets allowPrivilegeEscalation: false")
	}
	for _, d := range Deployments(t, []byte(weakened)) {
		if detail := violations(t, d); !strings.Contains(detail, "allowPrivilegeEscalation") {
			t.Errorf("a container allowing privilege escalation passed the restricted check (detail %q)", detail)
		}
	}
}
