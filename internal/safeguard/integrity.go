package safeguard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Integrity reports whether the selected pods cannot alter their own software
// (HIPAA §164.312(c)(1), Required): every container, init containers
// included, passes the restricted Pod Security Standard (judged by
// k8s.io/pod-security-admission's own checks, the library the apiserver's
// PodSecurity admission runs, at its latest version), has a read-only root
// filesystem, and, unless integrity.requireImageDigest is false, runs an
// image pinned by digest. phiguard's own audit sidecar is not judged: phiguard
// injects it hardened. Integrity changes nothing in the cluster: in Enforce
// mode its admission webhook keeps new pods that fail (and workloads whose
// pod template would make them) out; a running pod can only be reported.
type Integrity struct{}

// Name implements Safeguard.
func (Integrity) Name() phiguardv1alpha1.SafeguardName {
	return phiguardv1alpha1.IntegrityProtected
}

// Rule implements Safeguard.
func (Integrity) Rule() Rule {
	// Proposed: §164.312(c), configuration management (systems kept to
	// established secure baselines), which is what these checks are; the
	// proposal's integrity standard, §164.312(e), is about ePHI itself.
	return Rule{Section: "§164.312(c)(1)", Specification: phiguardv1alpha1.Required,
		ProposedSection: "§164.312(c)",
		Summary:         "ePHI pods run immutable, unprivileged, digest-pinned containers"}
}

// Defaults implements Safeguard: Audit, images pinned by digest.
func (Integrity) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.Integrity = &phiguardv1alpha1.IntegritySpec{Mode: phiguardv1alpha1.ModeAudit, RequireImageDigest: ptr.To(true)}
}

// Reconcile implements Safeguard.
func (Integrity) Reconcile(_ context.Context, s *Scope) Result {
	opts := IntegrityOptionsOf(&s.Settings)
	var failing []string
	for i := range s.Pods {
		if problems := IntegrityProblems(&s.Pods[i], opts); len(problems) > 0 {
			failing = append(failing, fmt.Sprintf("%s (%s)", s.Pods[i].Name, strings.Join(problems, "; ")))
		}
	}
	if len(failing) > 0 {
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonContainersMutable,
			Message: fmt.Sprintf("%d of %d selected pods run containers that could alter their own software: %s; %s",
				len(failing), len(s.Pods), strings.Join(named(failing), ", "), integrityFix(opts))}
	}
	return NoPods(s, Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonContainersImmutable,
		Message: fmt.Sprintf("every container of the %d selected pods passes the restricted Pod Security Standard with a read-only root filesystem%s",
			len(s.Pods), digestClause(opts))})
}

// IntegrityOptions are what the judgment of a pod depends on.
type IntegrityOptions struct {
	// RequireImageDigest requires every image to be pinned by digest (@sha256:).
	RequireImageDigest bool
	// SidecarImage is the image of phiguard's audit sidecar the effective
	// settings name: the container phiguard injects with it is not judged.
	SidecarImage string
}

// IntegrityOptionsOf reads the options from effective settings.
func IntegrityOptionsOf(s *phiguardv1alpha1.SafeguardSettings) IntegrityOptions {
	var o IntegrityOptions
	o.RequireImageDigest = s.Integrity == nil || ptr.Deref(s.Integrity.RequireImageDigest, true)
	if s.AuditLogging != nil && s.AuditLogging.Sidecar != nil {
		o.SidecarImage = s.AuditLogging.Sidecar.Image
	}
	return o
}

func digestClause(o IntegrityOptions) string {
	if o.RequireImageDigest {
		return ", and runs an image pinned by digest"
	}
	return " (integrity.requireImageDigest is false: images are not required to be pinned by digest)"
}

func integrityFix(o IntegrityOptions) string {
	fix := "set each container's securityContext as the restricted Pod Security Standard requires (runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities.drop: [ALL], seccompProfile.type: RuntimeDefault) and readOnlyRootFilesystem: true"
	if o.RequireImageDigest {
		fix += ", and pin each image by digest (image@sha256:...)"
	}
	return fix
}

// restrictedEvaluator judges against the restricted level; built once, as
// the checks never change while the binary runs.
var restrictedEvaluator = func() policy.Evaluator {
	e, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		panic(fmt.Sprintf("creating the Pod Security evaluator: %v", err)) // the library's own checks
	}
	return e
}()

var restrictedLatest = api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}

// failedChecks returns each check of the restricted level the pod fails, as
// "reason (detail)".
func failedChecks(meta *metav1.ObjectMeta, spec *corev1.PodSpec) []string {
	var out []string
	for _, r := range restrictedEvaluator.EvaluatePod(restrictedLatest, meta, spec) {
		if r.Allowed {
			continue
		}
		check := cmp.Or(r.ForbiddenReason, policy.UnknownForbiddenReason)
		if r.ForbiddenDetail != "" {
			check += " (" + r.ForbiddenDetail + ")"
		}
		out = append(out, check)
	}
	return out
}

// IntegrityProblems returns what keeps the pod (or a pod template, as a pod)
// from integrity, one entry per container that fails, naming each failed
// check ("container app: allowPrivilegeEscalation != false (...), root
// filesystem not read-only, image not pinned by digest"), after one for the
// pod's own fields ("pod: host namespaces (...)"). Nil when it passes.
//
// The Pod Security checks judge the whole pod; to name the container each
// failure belongs to, they are run on the pod without containers (what fails
// then is the pod's own), and on the pod with each container alone (what
// fails then beyond the pod's own is the container's). The pod's security
// context counts for every container, as it does at runtime.
func IntegrityProblems(pod *corev1.Pod, o IntegrityOptions) []string {
	var out []string
	bare := pod.Spec.DeepCopy()
	bare.Containers, bare.InitContainers, bare.EphemeralContainers = nil, nil, nil
	podLevel := failedChecks(&pod.ObjectMeta, bare)
	if len(podLevel) > 0 {
		out = append(out, "pod: "+strings.Join(podLevel, ", "))
	}
	for i := range pod.Spec.InitContainers {
		out = append(out, containerProblems(pod, bare, podLevel, &pod.Spec.InitContainers[i], true, o)...)
	}
	for i := range pod.Spec.Containers {
		out = append(out, containerProblems(pod, bare, podLevel, &pod.Spec.Containers[i], false, o)...)
	}
	return out
}

// containerProblems judges one container of pod: with the pod's own fields
// (bare, the pod without containers, whose failures podLevel already holds)
// and the container alone. Nothing, or one entry naming every failed check.
func containerProblems(pod *corev1.Pod, bare *corev1.PodSpec, podLevel []string, c *corev1.Container, init bool, o IntegrityOptions) []string {
	if c.Name == AuditSidecarName && o.SidecarImage != "" && AuditSidecarProblem(pod, o.SidecarImage) == "" {
		return nil // phiguard's own sidecar, injected hardened
	}
	alone := bare.DeepCopy()
	kind := "container"
	if init {
		alone.InitContainers, kind = []corev1.Container{*c}, "init container"
	} else {
		alone.Containers = []corev1.Container{*c}
	}
	var checks []string
	for _, f := range failedChecks(&pod.ObjectMeta, alone) {
		if !slices.Contains(podLevel, f) {
			checks = append(checks, f)
		}
	}
	if sc := c.SecurityContext; sc == nil || !ptr.Deref(sc.ReadOnlyRootFilesystem, false) {
		checks = append(checks, "root filesystem not read-only (securityContext.readOnlyRootFilesystem must be true)")
	}
	if o.RequireImageDigest && !strings.Contains(c.Image, "@sha256:") {
		checks = append(checks, fmt.Sprintf("image %s not pinned by digest", c.Image))
	}
	if len(checks) == 0 {
		return nil
	}
	return []string{fmt.Sprintf("%s %s: %s", kind, c.Name, strings.Join(checks, ", "))}
}
