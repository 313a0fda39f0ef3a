package safeguard

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The pod webhook's configuration, generated into config/webhook:
//   - failurePolicy=ignore: it sees every pod created in the cluster; were it
//     Fail, an outage of phiguard would stop every namespace (and the control
//     plane's own add-ons) from starting pods. A pod admitted without the
//     sidecar is reported by AuditLogging and, with restartNonCompliant,
//     re-created through its owner once phiguard is back.
//   - timeoutSeconds=5: the decision reads only the manager's cache.
//   - reinvocationPolicy=IfNeeded: when a later mutating webhook (a service
//     mesh, say) adds containers, phiguard runs again and mounts the log volume
//     into them too; the injection is idempotent, so a second call adds nothing.
//     A pod counts as injected by the rule AuditLogging judges by (container
//     phiguard-audit with the settings' image, and the annotation naming it);
//     a container that only has the name is replaced, with a warning.
//   - CREATE only: a pod's containers cannot change after creation.
//   - namespaces: as for the encryption webhooks, config/webhook skips
//     kube-system and phiguard's own namespace, and the handler does too.

// +kubebuilder:webhook:path=/mutate--v1-pod,mutating=true,failurePolicy=ignore,sideEffects=None,groups="",resources=pods,verbs=create,versions=v1,name=mpod.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5,reinvocationPolicy=IfNeeded

// AuditPath is where the pod webhook is served.
const AuditPath = "/mutate--v1-pod"

// auditInjector injects the audit sidecar into pods a PHIWorkload in Enforce
// mode selects; under Audit it only warns that it would.
type auditInjector struct {
	AdmissionEnv
	decoder admission.Decoder
}

// SetupWebhooks implements Admitter: the pod webhook.
func (AuditLogging) SetupWebhooks(mgr ctrl.Manager, env AdmissionEnv) error {
	a := &auditInjector{AdmissionEnv: env, decoder: admission.NewDecoder(mgr.GetScheme())}
	mgr.GetWebhookServer().Register(AuditPath, &webhook.Admission{Handler: a})
	return nil
}

// Handle implements admission.Handler.
func (a *auditInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	// A raw handler is not given the request in its context: Record reads it there.
	ctx = admission.NewContextWithRequest(ctx, req)
	pod := &corev1.Pod{}
	if err := a.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the pod: %w", err))
	}
	// A pod made from a template has no name yet and may lack its namespace.
	c, ok, err := a.coverage(ctx, req.Namespace, phiguardv1alpha1.AuditLogging,
		func(sel labels.Selector) (bool, error) { return sel.Matches(labels.Set(pod.Labels)), nil })
	switch {
	case err != nil:
		return admission.Errored(http.StatusInternalServerError, err)
	case !ok:
		return admission.Allowed("")
	case HasAuditSidecar(pod, c.settings.AuditLogging) && podHasMounts(pod):
		// The rule AuditLogging judges by: a reinvocation, or a pod copied
		// from an injected one with the current image, has nothing to add.
		return admission.Allowed("")
	}
	who := fmt.Sprintf("PHIWorkload %s/%s", c.workload.Namespace, c.workload.Name)
	warn := func(resp admission.Response, warning string) admission.Response {
		a.Record(ctx, c.workload, nil, []string{warning})
		return resp.WithWarnings(warning)
	}
	if c.mode == phiguardv1alpha1.ModeAudit {
		return warn(admission.Allowed(""), fmt.Sprintf(
			"phiguard (Audit): %s selects this pod; in Enforce mode it would get the audit sidecar %s (HIPAA §164.312(b))",
			who, c.settings.AuditLogging.Sidecar.Image))
	}
	if OptedOut(pod) {
		return warn(admission.Allowed(""), fmt.Sprintf(
			"phiguard: this pod opted out of the audit sidecar (%s=false); %s reports it as lacking audit controls (HIPAA §164.312(b))",
			AuditOptOutAnnotation, who))
	}
	mutated := pod.DeepCopy()
	replaced := InjectAuditSidecar(mutated, c.workload.Name, c.settings.AuditLogging)
	raw, err := json.Marshal(mutated)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the pod: %w", err))
	}
	resp := admission.PatchResponseFromRaw(req.Object.Raw, raw)
	if replaced != "" {
		// The name is phiguard's: a container that merely carries it is not the
		// audit sidecar, and AuditLogging would report the pod.
		resp = warn(resp, fmt.Sprintf("phiguard: replaced this pod's container %s (%s) with the audit sidecar %s of %s",
			AuditSidecarName, replaced, c.settings.AuditLogging.Sidecar.Image, who))
	}
	return resp
}

// podHasMounts says whether every app container already mounts the log volume:
// then a reinvocation has nothing to add.
func podHasMounts(pod *corev1.Pod) bool {
	for _, c := range pod.Spec.Containers {
		mounted := false
		for _, m := range c.VolumeMounts {
			mounted = mounted || m.Name == AuditVolumeName
		}
		if !mounted {
			return false
		}
	}
	return true
}
