package safeguard

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The break-glass webhook's configurations, generated into config/webhook:
//   - pods/exec, pods/attach and pods/portforward on CONNECT, and
//     pods/ephemeralcontainers on UPDATE (kubectl debug): every way into a
//     running pod's processes.
//   - failurePolicy=ignore: with Fail, an outage of phiguard would stop every
//     exec, attach, port-forward and debug session in the cluster (the
//     apiserver cannot tell which pods phiguard covers without asking it),
//     and make break-glass access impossible exactly when an incident may
//     need it, which §164.312(a)(2)(ii) requires to be possible. The price: while
//     phiguard is down, Enforce refuses nobody and phiguard records no Event;
//     the apiserver's audit log still records each such request.
//   - sideEffects=NoneOnDryRun: each access is recorded as an Event on the
//     PHIWorkload; a dry run (an ephemeral container added with --dry-run)
//     records none.
//   - timeoutSeconds=5: the decision reads only the manager's cache.
//   - namespaces: config/webhook's kustomization skips kube-system and
//     phiguard's own namespace; the handler skips them too, and every pod no
//     PHIWorkload selects.

// +kubebuilder:webhook:path=/validate-access,mutating=false,failurePolicy=ignore,sideEffects=NoneOnDryRun,groups="",resources=pods/exec;pods/attach;pods/portforward,verbs=connect,versions=v1,name=vpod-connect-access.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-access,mutating=false,failurePolicy=ignore,sideEffects=NoneOnDryRun,groups="",resources=pods/ephemeralcontainers,verbs=update,versions=v1,name=vpod-debug-access.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// AccessPath is where the break-glass webhook is served.
const AccessPath = "/validate-access"

// BreakGlassAction is the action of the Events the break-glass webhook records.
const BreakGlassAction = "BreakGlass"

// accessAdmission records every way into a selected pod (exec, attach,
// port-forward, an ephemeral container) on its PHIWorkload and, in Enforce,
// admits only members of accessControl.emergencyAccessGroups.
type accessAdmission struct {
	AdmissionEnv
	decoder admission.Decoder
}

// SetupWebhooks implements Admitter: the break-glass webhook, and the
// identity webhook that warns (accessidentity_admission.go).
func (AccessControl) SetupWebhooks(mgr ctrl.Manager, env AdmissionEnv) error {
	mgr.GetWebhookServer().Register(AccessPath, &webhook.Admission{
		Handler: &accessAdmission{AdmissionEnv: env, decoder: admission.NewDecoder(mgr.GetScheme())}})
	mgr.GetWebhookServer().Register(AccessIdentityPath, &webhook.Admission{
		Handler: &accessIdentityAdmission{AdmissionEnv: env, decoder: admission.NewDecoder(mgr.GetScheme())}})
	return nil
}

// podAccess is one request into a pod.
type podAccess struct {
	pod *corev1.Pod
	// what says what the request does, without who: "exec into container app
	// of pod clinic/records-0: command [sh -c ls]".
	what string
	// fieldPath names the container reached ("spec.containers{app}"), as
	// Events refer to a container; empty for a port-forward.
	fieldPath string
}

// Handle implements admission.Handler.
func (a *accessAdmission) Handle(ctx context.Context, req admission.Request) admission.Response {
	access, err := a.accessOf(ctx, req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if access == nil {
		return admission.Allowed("")
	}
	c, ok, err := a.coverage(ctx, req.Namespace, phiguardv1alpha1.AccessControlled, func(sel labels.Selector) (bool, error) {
		return sel.Matches(labels.Set(access.pod.Labels)), nil
	})
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	if !ok {
		return admission.Allowed("")
	}
	var groups []string
	if c.settings.AccessControl != nil {
		groups = c.settings.AccessControl.EmergencyAccessGroups
	}
	d := BreakGlass(req.UserInfo.Username, req.UserInfo.Groups, groups, c.mode, access.what,
		fmt.Sprintf("PHIWorkload %s/%s", c.workload.Namespace, c.workload.Name))
	if req.DryRun == nil || !*req.DryRun {
		a.recordAccess(c.workload, access, d, req.UserInfo.Username)
	}
	if !d.Allowed {
		return admission.Denied(d.Message)
	}
	return admission.Allowed("").WithWarnings(d.Warnings...)
}

// BreakGlassDecision is what the webhook decides about one access.
type BreakGlassDecision struct {
	// Allowed admits the request.
	Allowed bool
	// Member is true when the user is in an emergency access group.
	Member bool
	// Message is the denial, or what the Event records.
	Message string
	// Warnings go back to the client (Audit, someone not in the groups).
	Warnings []string
}

// BreakGlass decides an access (what, as podAccess says) by user with
// userGroups to a pod that workload covers with accessControl in mode, whose
// emergencyAccessGroups are groups: a member is admitted; anyone else is
// refused in Enforce and admitted with a warning in Audit.
func BreakGlass(username string, userGroups, groups []string, mode phiguardv1alpha1.Mode, what, workload string) BreakGlassDecision {
	who := fmt.Sprintf("%s (groups %v)", username, userGroups)
	if i := slices.IndexFunc(userGroups, func(g string) bool { return slices.Contains(groups, g) }); i >= 0 {
		return BreakGlassDecision{Allowed: true, Member: true,
			Message: fmt.Sprintf("%s: %s, as a member of emergency access group %s of %s", who, what, userGroups[i], workload)}
	}
	may := "no group may: accessControl.emergencyAccessGroups is empty; list the groups allowed break-glass access"
	if len(groups) > 0 {
		may = fmt.Sprintf("only members of %s may (accessControl.emergencyAccessGroups)", strings.Join(groups, ", "))
	}
	msg := fmt.Sprintf("%s may not %s: %s requires break-glass access to its pods (HIPAA §164.312(a)(2)(ii), accessControl.mode %s), and %s",
		who, what, workload, mode, may)
	if mode == phiguardv1alpha1.ModeEnforce {
		return BreakGlassDecision{Message: msg}
	}
	return BreakGlassDecision{Allowed: true, Message: msg, Warnings: []string{"phiguard (Audit, allowed, recorded): " + msg}}
}

// recordAccess records an access as an Event on the workload, related to the
// pod's container: EmergencyAccess (Normal for a member, Warning for anyone
// else admitted in Audit) or EmergencyAccessDenied. events.k8s.io folds
// Events alike in all but their note into one series: accesses to different
// containers stay apart, repeated ones to one container within minutes
// count in the series of the first (the apiserver's audit log has each).
func (a *accessAdmission) recordAccess(w *phiguardv1alpha1.PHIWorkload, access *podAccess, d BreakGlassDecision, actor string) {
	eventType, reason, note := corev1.EventTypeWarning, phiguardv1alpha1.ReasonEmergencyAccessDenied, "denied: "+d.Message
	switch {
	case d.Member:
		eventType, reason, note = corev1.EventTypeNormal, phiguardv1alpha1.ReasonEmergencyAccess, "admitted: "+d.Message
	case d.Allowed:
		reason, note = phiguardv1alpha1.ReasonEmergencyAccess, "admitted (Audit): "+d.Message
	}
	pod := access.pod
	related := &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID,
		FieldPath: access.fieldPath}
	a.recordAdmissionEvidence(w, reason, note, actor, related)
	if a.Recorder == nil {
		return
	}
	a.Recorder.Eventf(w, related, eventType, reason, BreakGlassAction, "%s", EventNote(note))
}

// accessOf reads what a request does to which pod; nil when it is not an
// access to judge (another operation, a pod that is gone, an update that adds
// no ephemeral container).
func (a *accessAdmission) accessOf(ctx context.Context, req admission.Request) (*podAccess, error) {
	switch {
	case req.Operation == admissionv1.Connect:
		return a.connectOf(ctx, req)
	case req.Operation == admissionv1.Update && req.SubResource == "ephemeralcontainers":
		return a.debugOf(req)
	}
	return nil, nil
}

// connectOf reads an exec, attach or port-forward: its options from the
// request, the pod from the cache.
func (a *accessAdmission) connectOf(ctx context.Context, req admission.Request) (*podAccess, error) {
	pod := &corev1.Pod{}
	if err := a.Reader.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: req.Name}, pod); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil // the apiserver answers NotFound itself
		}
		return nil, fmt.Errorf("reading pod %s/%s: %w", req.Namespace, req.Name, err)
	}
	ref := fmt.Sprintf("pod %s/%s", pod.Namespace, pod.Name)
	var what, container string
	switch req.SubResource {
	case "exec":
		var o corev1.PodExecOptions
		if err := a.decoder.DecodeRaw(req.Object, &o); err != nil {
			return nil, fmt.Errorf("decoding the exec options: %w", err)
		}
		container = containerOf(pod, o.Container)
		what = fmt.Sprintf("exec into container %s of %s: command %q", container, ref, o.Command)
	case "attach":
		var o corev1.PodAttachOptions
		if err := a.decoder.DecodeRaw(req.Object, &o); err != nil {
			return nil, fmt.Errorf("decoding the attach options: %w", err)
		}
		container = containerOf(pod, o.Container)
		what = fmt.Sprintf("attach to container %s of %s (stdin %t, tty %t)", container, ref, o.Stdin, o.TTY)
	case "portforward":
		var o corev1.PodPortForwardOptions
		if err := a.decoder.DecodeRaw(req.Object, &o); err != nil {
			return nil, fmt.Errorf("decoding the port-forward options: %w", err)
		}
		ports := "ports given in the stream"
		if len(o.Ports) > 0 {
			ports = fmt.Sprintf("ports %v", o.Ports)
		}
		what = fmt.Sprintf("port-forward to %s (%s)", ref, ports)
	default:
		return nil, nil
	}
	return &podAccess{pod: pod, what: what, fieldPath: containerFieldPath(pod, container)}, nil
}

// debugOf reads the ephemeral containers an update adds to a pod.
func (a *accessAdmission) debugOf(req admission.Request) (*podAccess, error) {
	pod, old := &corev1.Pod{}, &corev1.Pod{}
	if err := a.decoder.Decode(req, pod); err != nil {
		return nil, fmt.Errorf("decoding the pod: %w", err)
	}
	if err := a.decoder.DecodeRaw(req.OldObject, old); err != nil {
		return nil, fmt.Errorf("decoding the old pod: %w", err)
	}
	var added []string
	fieldPath := ""
	for _, c := range pod.Spec.EphemeralContainers {
		if !slices.ContainsFunc(old.Spec.EphemeralContainers, func(o corev1.EphemeralContainer) bool { return o.Name == c.Name }) {
			fieldPath = cmp.Or(fieldPath, "spec.ephemeralContainers{"+c.Name+"}")
			added = append(added, fmt.Sprintf("ephemeral container %s (image %s, target %s, command %q)",
				c.Name, c.Image, cmp.Or(c.TargetContainerName, "none"), slices.Concat(c.Command, c.Args)))
		}
	}
	if len(added) == 0 {
		return nil, nil
	}
	pod.Namespace = req.Namespace
	return &podAccess{pod: pod, what: fmt.Sprintf("add %s to pod %s/%s", strings.Join(added, ", "), pod.Namespace, pod.Name),
		fieldPath: fieldPath}, nil
}

// containerOf names the container a request names, or the one the apiserver
// picks when it names none (the pod's only container).
func containerOf(pod *corev1.Pod, name string) string {
	if name == "" && len(pod.Spec.Containers) == 1 {
		return pod.Spec.Containers[0].Name
	}
	return cmp.Or(name, "(unnamed)")
}

// containerFieldPath refers to a container of a pod as Events do
// ("spec.containers{app}"); empty when the pod has none of that name.
func containerFieldPath(pod *corev1.Pod, name string) string {
	has := func(cs []corev1.Container) bool {
		return slices.ContainsFunc(cs, func(c corev1.Container) bool { return c.Name == name })
	}
	switch {
	case name == "":
		return ""
	case has(pod.Spec.Containers):
		return "spec.containers{" + name + "}"
	case has(pod.Spec.InitContainers):
		return "spec.initContainers{" + name + "}"
	case slices.ContainsFunc(pod.Spec.EphemeralContainers, func(c corev1.EphemeralContainer) bool { return c.Name == name }):
		return "spec.ephemeralContainers{" + name + "}"
	}
	return ""
}
