// Package podsecurity judges the manager's pod against the restricted Pod
// Security Standard with k8s.io/pod-security-admission's own checks (the
// library the apiserver's PodSecurity admission runs), at its latest version,
// plus the hardening phiguard adds on top.
package podsecurity

import (
	"bytes"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/phiguard/phiguard/internal/manifests"
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
	objs, err := manifests.Decode(bytes.NewReader(data), "manifests")
	if err != nil {
		return nil, fmt.Errorf("reading the Deployments: %w", err)
	}
	var out []*appsv1.Deployment
	for _, obj := range objs {
		if obj.GetKind() != "Deployment" {
			continue
		}
		var d appsv1.Deployment
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, &d); err != nil {
			return nil, fmt.Errorf("reading Deployment %s: %w", obj.GetName(), err)
		}
		out = append(out, &d)
	}
	if len(out) == 0 {
		return nil, errors.New("no Deployment found")
	}
	return out, nil
}

// Problems returns everything that keeps the Deployments in a YAML stream
// from the restricted profile and phiguard's hardening, one line each.
func Problems(stream []byte) ([]string, error) {
	deployments, err := Deployments(stream)
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
