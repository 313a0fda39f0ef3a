package safeguard

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The integrity webhook's configurations, generated into config/webhook:
//   - failurePolicy=ignore: it sees every pod and workload created in the
//     cluster, and an outage of phiguard must not stop every namespace from
//     starting pods. A pod admitted while phiguard is down is still caught:
//     IntegrityProtected reports it on the PHIWorkload's status.
//   - timeoutSeconds=5: the decision reads only the manager's cache.
//   - sideEffects=None: deciding writes nothing.
//   - pods on create and update (an update can change a container's image;
//     an update that changes none is not judged, so that a pod admitted
//     earlier can still be labelled); Deployments, StatefulSets, DaemonSets
//     and Jobs on create and update (their pod template can change).
//   - it runs after the mutating webhooks, so a pod is judged with the audit
//     sidecar phiguard injected, which is not judged (phiguard made it).
//   - namespaces: config/webhook's kustomization skips kube-system and
//     phiguard's own namespace; the handler skips them too, and every
//     namespace no PHIWorkload covers.

// +kubebuilder:webhook:path=/validate-integrity,mutating=false,failurePolicy=ignore,sideEffects=None,groups="",resources=pods,verbs=create;update,versions=v1,name=vpod-integrity.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-integrity,mutating=false,failurePolicy=ignore,sideEffects=None,groups=apps,resources=deployments;statefulsets;daemonsets,verbs=create;update,versions=v1,name=vworkload-integrity.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-integrity,mutating=false,failurePolicy=ignore,sideEffects=None,groups=batch,resources=jobs,verbs=create;update,versions=v1,name=vjob-integrity.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// IntegrityPath is where the integrity webhook is served.
const IntegrityPath = "/validate-integrity"

// integrityAdmission refuses pods, and workloads whose pod template would
// make pods, that a PHIWorkload in Enforce mode covers and that fail
// integrity; under Audit it admits them with a warning.
type integrityAdmission struct {
	AdmissionEnv
	decoder admission.Decoder
}

// SetupWebhooks implements Admitter: the integrity webhook.
func (Integrity) SetupWebhooks(mgr ctrl.Manager, env AdmissionEnv) error {
	mgr.GetWebhookServer().Register(IntegrityPath, &webhook.Admission{
		Handler: &integrityAdmission{AdmissionEnv: env, decoder: admission.NewDecoder(mgr.GetScheme())}})
	return nil
}

// Handle implements admission.Handler.
func (a *integrityAdmission) Handle(ctx context.Context, req admission.Request) admission.Response {
	// A raw handler is not given the request in its context: Record reads it there.
	ctx = admission.NewContextWithRequest(ctx, req)
	pod, subject, err := a.podOf(req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if pod == nil {
		return admission.Allowed("")
	}
	warnings, err := a.judge(ctx, pod, subject)
	if err != nil {
		var denied *integrityDenied
		if errors.As(err, &denied) {
			return admission.Denied(denied.Error())
		}
		return admission.Errored(http.StatusInternalServerError, err)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// podOf returns the pod the request would make (a pod template as a pod, in
// the object's namespace), and the object's name for messages ("Deployment
// records"); nil when there is nothing to judge (a delete, a pod update that
// changes no image).
func (a *integrityAdmission) podOf(req admission.Request) (*corev1.Pod, string, error) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return nil, "", nil
	}
	if req.Kind.Kind == "Pod" {
		return a.podOfPod(req)
	}
	obj, template, err := decodeTemplate(a.decoder, req.Kind.Kind, req.Object)
	if err != nil || template == nil {
		return nil, "", err
	}
	pod := &corev1.Pod{ObjectMeta: *template.ObjectMeta.DeepCopy(), Spec: *template.Spec.DeepCopy()}
	pod.Namespace = req.Namespace
	return pod, req.Kind.Kind + " " + obj.GetName(), nil
}

// podOfPod decodes a pod; on update, nil unless a container's image changed.
func (a *integrityAdmission) podOfPod(req admission.Request) (*corev1.Pod, string, error) {
	pod := &corev1.Pod{}
	if err := a.decoder.Decode(req, pod); err != nil {
		return nil, "", fmt.Errorf("decoding the pod: %w", err)
	}
	if req.Operation == admissionv1.Update {
		old := &corev1.Pod{}
		if err := a.decoder.DecodeRaw(req.OldObject, old); err != nil {
			return nil, "", fmt.Errorf("decoding the old pod: %w", err)
		}
		if slices.Equal(images(old), images(pod)) {
			return nil, "", nil
		}
	}
	pod.Namespace = req.Namespace
	return pod, "Pod " + cmpName(pod.Name, pod.GenerateName), nil
}

// decodeTemplate decodes raw as a Deployment, StatefulSet, DaemonSet or Job
// (kind) and returns it and its pod template; nil and nil for another kind.
func decodeTemplate(decoder admission.Decoder, kind string, raw runtime.RawExtension) (client.Object, *corev1.PodTemplateSpec, error) {
	var obj client.Object
	var template func() *corev1.PodTemplateSpec
	switch kind {
	case kindDeployment:
		d := &appsv1.Deployment{}
		obj, template = d, func() *corev1.PodTemplateSpec { return &d.Spec.Template }
	case kindStatefulSet:
		s := &appsv1.StatefulSet{}
		obj, template = s, func() *corev1.PodTemplateSpec { return &s.Spec.Template }
	case kindDaemonSet:
		d := &appsv1.DaemonSet{}
		obj, template = d, func() *corev1.PodTemplateSpec { return &d.Spec.Template }
	case "Job":
		j := &batchv1.Job{}
		obj, template = j, func() *corev1.PodTemplateSpec { return &j.Spec.Template }
	default:
		return nil, nil, nil
	}
	if err := decoder.DecodeRaw(raw, obj); err != nil {
		return nil, nil, fmt.Errorf("decoding the %s: %w", kind, err)
	}
	return obj, template(), nil
}

func cmpName(name, generateName string) string {
	if name == "" {
		return generateName + "(generated)"
	}
	return name
}

// images lists a pod's container images, init containers first.
func images(p *corev1.Pod) []string {
	var out []string
	for _, list := range [][]corev1.Container{p.Spec.InitContainers, p.Spec.Containers} {
		for _, c := range list {
			out = append(out, c.Name+"="+c.Image)
		}
	}
	return out
}

// integrityDenied is a refusal, as opposed to an error deciding.
type integrityDenied struct{ msg string }

func (e *integrityDenied) Error() string { return e.msg }

// judge decides a pod (or a template as a pod): nil when nothing covers it or
// it passes; otherwise the denial (Enforce) or warnings (Audit).
func (a *integrityAdmission) judge(ctx context.Context, pod *corev1.Pod, subject string) (admission.Warnings, error) {
	c, ok, err := a.coverage(ctx, pod.Namespace, phiguardv1alpha1.IntegrityProtected, func(sel labels.Selector) (bool, error) {
		return sel.Matches(labels.Set(pod.Labels)), nil
	})
	if err != nil || !ok {
		return nil, err
	}
	opts := IntegrityOptionsOf(&c.settings)
	problems := IntegrityProblems(pod, opts)
	if len(problems) == 0 {
		return nil, nil
	}
	msg := fmt.Sprintf("%s would run containers that could alter their own software: %s. PHIWorkload %s/%s requires integrity controls (HIPAA §164.312(c)(1), integrity.mode %s); %s",
		subject, strings.Join(problems, "; "), c.workload.Namespace, c.workload.Name, c.mode, integrityFix(opts))
	if c.mode == phiguardv1alpha1.ModeAudit {
		warnings := admission.Warnings{"phiguard (Audit, allowed): " + msg}
		a.Record(ctx, c.workload, nil, warnings)
		return warnings, nil
	}
	denied := &integrityDenied{msg: msg}
	a.Record(ctx, c.workload, denied, nil)
	return nil, denied
}
