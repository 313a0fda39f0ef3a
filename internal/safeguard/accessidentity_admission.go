package safeguard

import (
	"context"
	"fmt"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The identity webhook's configurations, generated into config/webhook (the
// break-glass webhook, accesscontrol_admission.go, is another):
//   - it only warns, in Audit and in Enforce alike (never under Off):
//     AccessControlled's Enforce governs break-glass access only and never
//     changes a workload's identity, so refusing a Deployment that runs as
//     the default ServiceAccount would be a stronger control than the
//     safeguard itself exercises. The PHIWorkload's status reports the pods
//     whatever admission said.
//   - failurePolicy=ignore: it sees every pod and workload created in the
//     cluster, and since it never refuses, an outage of phiguard must cost
//     nothing but the warnings. An error deciding admits without a warning
//     (and is logged), for the same reason.
//   - timeoutSeconds=5: the decision reads only the manager's cache (the
//     PHIWorkloads, the PHIPolicy and the ServiceAccount the pod names). A
//     ServiceAccount created a moment before may not be in the cache yet, and
//     then be said not to exist; the status, judged later, is not misled.
//   - sideEffects=None: deciding writes nothing to the cluster (the Event
//     recording a warning is phiguard's own evidence, not the request's
//     effect, and a dry run records none).
//   - pods, and Deployments, StatefulSets, DaemonSets (apps/v1) and Jobs
//     (batch/v1) on create and update: whatever names the ServiceAccount and
//     token mounts of ePHI pods. A pod a controller owns (a ReplicaSet's, a
//     Job's) is not judged: its owner was, when someone applied it, and the
//     warnings would reach only the controller. An update that changes
//     neither the ServiceAccount nor how the token is mounted (a label, an
//     image, a rollout's annotation) is not judged, so that it does not
//     repeat the warnings; one that only brings the object under a
//     PHIWorkload's selector is not either, and the status reports it.
//   - what is judged is the pod spec on its own, with AccessControlled's own
//     rules (serviceAccountFaults, forbiddenTokenMounts): the default
//     ServiceAccount, a ServiceAccount that does not exist, and a token
//     mounted while accessControl.allowTokenAutomount is false. RBAC and
//     ServiceAccounts shared with other pods are not: they depend on objects
//     that change apart from this one, and the status reports them.
//   - namespaces: config/webhook's kustomization skips kube-system and
//     phiguard's own namespace; the handler skips them too, and every
//     namespace no PHIWorkload covers.

// +kubebuilder:webhook:path=/warn-access,mutating=false,failurePolicy=ignore,sideEffects=None,groups="",resources=pods,verbs=create;update,versions=v1,name=vpod-access-identity.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/warn-access,mutating=false,failurePolicy=ignore,sideEffects=None,groups=apps,resources=deployments;statefulsets;daemonsets,verbs=create;update,versions=v1,name=vworkload-access-identity.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/warn-access,mutating=false,failurePolicy=ignore,sideEffects=None,groups=batch,resources=jobs,verbs=create;update,versions=v1,name=vjob-access-identity.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// AccessIdentityPath is where the identity webhook is served.
const AccessIdentityPath = "/warn-access"

// accessIdentityAdmission warns about pods, and workloads whose pod template
// would make pods, that a PHIWorkload covers and whose identity would fail
// AccessControlled. It never refuses.
type accessIdentityAdmission struct {
	AdmissionEnv
	decoder admission.Decoder
}

// Handle implements admission.Handler: always allowed, with the warnings.
func (a *accessIdentityAdmission) Handle(ctx context.Context, req admission.Request) admission.Response {
	// A raw handler is not given the request in its context: Record reads it there.
	ctx = admission.NewContextWithRequest(ctx, req)
	warnings, err := a.warn(ctx, req)
	if err != nil {
		logf.FromContext(ctx).Error(err, "judging a pod's identity at admission; admitted without warnings",
			"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
		return admission.Allowed("")
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// identitySubject is what the webhook judges of a request: the pod (a pod
// template as a pod, in the object's namespace), the object's name for
// messages ("Deployment records") and where its pod spec is
// ("spec.template.spec.").
type identitySubject struct {
	pod     *corev1.Pod
	name    string
	specAt  string
	managed bool // a pod a controller owns
}

// warn returns the warnings for a request, recorded on the workload that
// covers its object; none when nothing covers it or it passes.
func (a *accessIdentityAdmission) warn(ctx context.Context, req admission.Request) (admission.Warnings, error) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return nil, nil
	}
	s, err := a.subjectOf(req, req.Object, "")
	if err != nil || s == nil || s.managed {
		return nil, err
	}
	if req.Operation == admissionv1.Update {
		old, err := a.subjectOf(req, req.OldObject, "old ")
		if err != nil {
			return nil, err
		}
		if sameIdentity(old.pod, s.pod) {
			return nil, nil
		}
	}
	c, ok, err := a.coverage(ctx, req.Namespace, phiguardv1alpha1.AccessControlled, func(sel labels.Selector) (bool, error) {
		return sel.Matches(labels.Set(s.pod.Labels)), nil
	})
	if err != nil || !ok {
		return nil, err
	}
	name := podServiceAccount(&s.pod.Spec)
	var sas []corev1.ServiceAccount
	sa := &corev1.ServiceAccount{}
	switch err := a.Reader.Get(ctx, client.ObjectKey{Namespace: req.Namespace, Name: name}, sa); {
	case err == nil:
		sas = []corev1.ServiceAccount{*sa}
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("reading ServiceAccount %s/%s: %w", req.Namespace, name, err)
	}
	warnings := identityWarnings(s, sas, c)
	a.Record(ctx, c.workload, nil, warnings)
	return warnings, nil
}

// sameIdentity is true when an update changes neither the ServiceAccount a
// pod runs as nor how it would get the token, whatever the ServiceAccount
// says (TokenMounts of no ServiceAccount tells the pod's own
// automountServiceAccountToken and token volumes apart).
func sameIdentity(old, pod *corev1.Pod) bool {
	return podServiceAccount(&old.Spec) == podServiceAccount(&pod.Spec) && slices.Equal(TokenMounts(old, nil), TokenMounts(pod, nil))
}

// subjectOf decodes raw (the request's object or old object, what says
// which) as a pod, or a Deployment, StatefulSet, DaemonSet or Job as its pod
// template; nil for another kind.
func (a *accessIdentityAdmission) subjectOf(req admission.Request, raw runtime.RawExtension, what string) (*identitySubject, error) {
	if req.Kind.Kind == kindPod {
		pod := &corev1.Pod{}
		if err := a.decoder.DecodeRaw(raw, pod); err != nil {
			return nil, fmt.Errorf("decoding the %spod: %w", what, err)
		}
		pod.Namespace = req.Namespace
		return &identitySubject{pod: pod, name: "Pod " + cmpName(pod.Name, pod.GenerateName), specAt: "spec.",
			managed: metav1.GetControllerOf(pod) != nil}, nil
	}
	obj, t, err := decodeTemplate(a.decoder, req.Kind.Kind, raw)
	if err != nil {
		return nil, fmt.Errorf("the request's %sobject: %w", what, err)
	}
	if t == nil {
		return nil, nil
	}
	pod := &corev1.Pod{ObjectMeta: *t.ObjectMeta.DeepCopy(), Spec: *t.Spec.DeepCopy()}
	pod.Namespace = req.Namespace
	return &identitySubject{pod: pod, name: req.Kind.Kind + " " + cmpName(obj.GetName(), obj.GetGenerateName()),
		specAt: "spec.template.spec."}, nil
}

// identityWarnings are the warnings about one pod spec a cover requires
// access control of, given the ServiceAccount it names when it exists (sas,
// empty otherwise): AccessControlled's rules on the one pod
// (serviceAccountFaults, forbiddenTokenMounts), each saying what to change.
func identityWarnings(s *identitySubject, sas []corev1.ServiceAccount, c cover) admission.Warnings {
	ns, name := s.pod.Namespace, podServiceAccount(&s.pod.Spec)
	requirer := fmt.Sprintf("PHIWorkload %s/%s (access control, %s)", c.workload.Namespace, c.workload.Name, c.mode)
	named := fmt.Sprintf("%sserviceAccountName: %s", s.specAt, name)
	if s.pod.Spec.ServiceAccountName == "" {
		named = s.specAt + "serviceAccountName unset"
	}
	var out admission.Warnings
	sa, faults := serviceAccountFaults(name, sas)
	for _, reason := range faults {
		switch reason {
		case phiguardv1alpha1.ReasonServiceAccountMissing:
			out = append(out, fmt.Sprintf(
				"phiguard: %s runs as ServiceAccount %s (%s), which does not exist in namespace %s; %s requires ePHI pods to run as a ServiceAccount of their own that exists (HIPAA §164.312(a)(1)), and reports %s until then: create it (kubectl create serviceaccount %s -n %s) or set %sserviceAccountName to one that exists",
				s.name, name, named, ns, requirer, reason, name, ns, s.specAt))
		case phiguardv1alpha1.ReasonDefaultServiceAccount:
			out = append(out, fmt.Sprintf(
				"phiguard: %s runs as the namespace's default ServiceAccount (%s), which every pod that names none shares; %s requires ePHI pods to run as a ServiceAccount of their own (HIPAA §164.312(a)(1)), and reports %s until then: create a ServiceAccount for it and set %sserviceAccountName to its name",
				s.name, named, requirer, reason, s.specAt))
		}
	}
	if how := forbiddenTokenMounts(s.pod, sa, allowTokenAutomount(&c.settings)); len(how) > 0 {
		var fixes []string
		if tokenAutomount(s.pod, sa) != "" {
			fixes = append(fixes, "set "+s.specAt+"automountServiceAccountToken: false")
		}
		if vols := tokenVolumes(s.pod); len(vols) > 0 {
			names := make([]string, 0, len(vols))
			for _, v := range vols {
				names = append(names, v.volume)
			}
			fixes = append(fixes, fmt.Sprintf("remove the serviceAccountToken volumes %s from %svolumes and their volumeMounts",
				strings.Join(names, ", "), s.specAt))
		}
		out = append(out, fmt.Sprintf(
			"phiguard: %s would mount ServiceAccount %s's API token in its pods (%s); %s allows no token (accessControl.allowTokenAutomount: false, HIPAA §164.312(a)(1)), and reports %s until then: %s, or, if the pods call the Kubernetes API, set accessControl.allowTokenAutomount: true on PHIWorkload %s/%s",
			s.name, name, strings.Join(how, ", "), requirer, phiguardv1alpha1.ReasonTokenMounted, strings.Join(fixes, " and "),
			c.workload.Namespace, c.workload.Name))
	}
	return out
}
