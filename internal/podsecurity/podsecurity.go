// Package podsecurity judges the manager's pod against the restricted Pod
// Security Standard with k8s.io/pod-security-admission's own checks (the
// library the apiserver's PodSecurity admission runs), at its latest version,
// plus the hardening phiguard adds on top.
package podsecurity

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// Restricted returns what keeps the Deployment's pod template from the
// restricted profile, or "".
func Restricted(d *appsv1.Deployment) (string, error) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return "", fmt.Errorf("creating the Pod Security evaluator: %w", err)
	}
	results := evaluator.EvaluatePod(api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()},
		&d.Spec.Template.ObjectMeta, &d.Spec.Template.Spec)
	if agg := policy.AggregateCheckResults(results); !agg.Allowed {
		return agg.ForbiddenDetail(), nil
	}
	return "", nil
}

// Hardening returns what the Deployment lacks beyond the restricted profile:
// a read-only root filesystem, memory limits and cpu requests, and a grace
// period longer than the manager's 20 s graceful shutdown.
func Hardening(d *appsv1.Deployment) []string {
	var out []string
	for _, c := range d.Spec.Template.Spec.Containers {
		sc := c.SecurityContext
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			out = append(out, fmt.Sprintf("container %s: the root filesystem is not read-only", c.Name))
		}
		if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			out = append(out, fmt.Sprintf("container %s: set memory limits and cpu requests", c.Name))
		}
	}
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g == nil || *g <= 20 {
		out = append(out, "terminationGracePeriodSeconds must exceed the manager's 20 s graceful shutdown")
	}
	return out
}

// Deployments decodes the Deployments of a multi-document YAML stream.
func Deployments(data []byte) ([]*appsv1.Deployment, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []*appsv1.Deployment
	for {
		var d appsv1.Deployment
		if err := dec.Decode(&d); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("decoding: %w", err)
		}
		if d.Kind == "Deployment" {
			out = append(out, &d)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no Deployment found")
	}
	return out, nil
}

// Problems returns everything that keeps the Deployments in a YAML stream
// from the restricted profile and phiguard's hardening, one line each.
func Problems(manifests []byte) ([]string, error) {
	deployments, err := Deployments(manifests)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range deployments {
		detail, err := Restricted(d)
		if err != nil {
			return nil, err
		}
		if detail != "" {
			out = append(out, fmt.Sprintf("Deployment %s does not pass the restricted Pod Security Standard: %s", d.Name, detail))
		}
		for _, p := range Hardening(d) {
			out = append(out, "Deployment "+d.Name+": "+p)
		}
	}
	return out, nil
}
