package safeguard

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The availability webhook's configuration, generated into config/webhook:
//   - it only warns, in Audit and in Enforce alike (never under Off): Enforce
//     keeps a PodDisruptionBudget but never scales nor reschedules the user's
//     workloads, so refusing a Deployment of one replica would be a stronger
//     control than the safeguard itself exercises. Available reports the
//     workload on the PHIWorkload's status whatever admission said.
//   - failurePolicy=ignore: it sees every Deployment and StatefulSet in the
//     cluster, and since it never refuses, an outage of phiguard must cost
//     nothing but the warnings. An error deciding admits without a warning
//     (and is logged), for the same reason.
//   - timeoutSeconds=5: the decision reads only the manager's cache.
//   - sideEffects=None: deciding writes nothing to the cluster (the Event
//     recording a warning is phiguard's own evidence, not the request's
//     effect, and a dry run records none).
//   - Deployments and StatefulSets (apps/v1) on create and update: the owners
//     whose spec.replicas and pod template Available judges. An update that
//     changes neither (the Deployment controller's revision annotation, a
//     label edit) is not judged, so that rollouts do not repeat the warning.
//     ReplicaSets are left out: one a Deployment makes is judged through it.
//   - a HorizontalPodAutoscaler is not read: what it keeps is its own object's
//     business, and the warning says that one with enough minReplicas counts.
//   - pods the scheduler already placed are not read either: the template
//     must declare a spread (declaredSpread), which is what admission sees.
//   - namespaces: config/webhook's kustomization skips kube-system and
//     phiguard's own namespace; the handler skips them too, and every
//     namespace no PHIWorkload covers.

// +kubebuilder:webhook:path=/warn-availability,mutating=false,failurePolicy=ignore,sideEffects=None,groups=apps,resources=deployments;statefulsets,verbs=create;update,versions=v1,name=vworkload-availability.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// AvailabilityPath is where the availability webhook is served.
const AvailabilityPath = "/warn-availability"

// availabilityAdmission warns about Deployments and StatefulSets whose pod
// template a PHIWorkload covers and that would fail Available: fewer
// replicas than availability.minReplicas, or no declared spread over nodes.
// It never refuses.
type availabilityAdmission struct {
	AdmissionEnv
	decoder admission.Decoder
}

// SetupWebhooks implements Admitter: the availability webhook.
func (Availability) SetupWebhooks(mgr ctrl.Manager, env AdmissionEnv) error {
	mgr.GetWebhookServer().Register(AvailabilityPath, &webhook.Admission{
		Handler: &availabilityAdmission{AdmissionEnv: env, decoder: admission.NewDecoder(mgr.GetScheme())}})
	return nil
}

// Handle implements admission.Handler: always Allowed, with the warnings.
func (a *availabilityAdmission) Handle(ctx context.Context, req admission.Request) admission.Response {
	// A raw handler is not given the request in its context: Record reads it there.
	ctx = admission.NewContextWithRequest(ctx, req)
	warnings, err := a.warn(ctx, req)
	if err != nil {
		logf.FromContext(ctx).Error(err, "judging availability at admission; admitted without warnings",
			"kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name)
		return admission.Allowed("")
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// warn returns the warnings for a request, recorded on the workload that
// covers its object; none when nothing covers it or it passes.
func (a *availabilityAdmission) warn(ctx context.Context, req admission.Request) (admission.Warnings, error) {
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return nil, nil
	}
	owner, selector, err := a.ownerOf(req)
	if err != nil || owner == nil {
		return nil, err
	}
	c, ok, err := a.coverage(ctx, req.Namespace, phiguardv1alpha1.Available, func(sel labels.Selector) (bool, error) {
		return sel.Matches(labels.Set(owner.template.Labels)), nil
	})
	if err != nil || !ok {
		return nil, err
	}
	warnings := availabilityWarnings(owner, selector, c)
	a.Record(ctx, c.workload, nil, warnings)
	return warnings, nil
}

// ownerOf decodes a Deployment or StatefulSet as the owner Available judges,
// as sure to run its spec.replicas (no autoscaler is read), with its label
// selector; nil for another kind, and for an update that changes neither
// spec.replicas nor the pod template.
func (a *availabilityAdmission) ownerOf(req admission.Request) (*replicatedOwner, *metav1.LabelSelector, error) {
	type fields struct {
		name     string
		replicas *int32
		selector *metav1.LabelSelector
		template *corev1.PodTemplateSpec
	}
	decode := func(raw runtime.RawExtension, what string) (fields, error) {
		var obj runtime.Object
		var get func() fields
		if req.Kind.Kind == kindDeployment {
			d := &appsv1.Deployment{}
			obj, get = d, func() fields {
				return fields{cmpName(d.Name, d.GenerateName), d.Spec.Replicas, d.Spec.Selector, &d.Spec.Template}
			}
		} else {
			s := &appsv1.StatefulSet{}
			obj, get = s, func() fields {
				return fields{cmpName(s.Name, s.GenerateName), s.Spec.Replicas, s.Spec.Selector, &s.Spec.Template}
			}
		}
		if err := a.decoder.DecodeRaw(raw, obj); err != nil {
			return fields{}, fmt.Errorf("decoding the %s%s: %w", what, req.Kind.Kind, err)
		}
		return get(), nil
	}
	if req.Kind.Kind != kindDeployment && req.Kind.Kind != kindStatefulSet {
		return nil, nil, nil
	}
	obj, err := decode(req.Object, "")
	if err != nil {
		return nil, nil, err
	}
	if req.Operation == admissionv1.Update {
		old, err := decode(req.OldObject, "old ")
		if err != nil {
			return nil, nil, err
		}
		if ptr.Deref(old.replicas, 1) == ptr.Deref(obj.replicas, 1) && equality.Semantic.DeepEqual(old.template, obj.template) {
			return nil, nil, nil
		}
	}
	return newOwner(req.Kind.Kind, obj.name, obj.replicas, obj.template, nil), obj.selector, nil
}

// availabilityWarnings are the warnings about one owner a cover requires
// availability of: the rules of judgeAvailability (tooFew, declaredSpread)
// applied to its spec alone, each saying what to set.
func availabilityWarnings(o *replicatedOwner, selector *metav1.LabelSelector, c cover) admission.Warnings {
	minReplicas := minReplicasOf(&c.settings)
	requirer := fmt.Sprintf("PHIWorkload %s/%s (availability, %s)", c.workload.Namespace, c.workload.Name, c.mode)
	var out admission.Warnings
	if o.tooFew(minReplicas) {
		out = append(out, fmt.Sprintf(
			"phiguard: %s runs %s; %s requires at least %d so that ePHI stays available through the loss of a pod (HIPAA §164.308(a)(7)(ii)(C), availability.minReplicas): set spec.replicas: %d, unless a HorizontalPodAutoscaler keeps at least %d (its minReplicas)",
			o, replicasOf(o.replicas), requirer, minReplicas, minReplicas, minReplicas))
	}
	if declaredSpread(o.template) == "" {
		out = append(out, fmt.Sprintf(
			"phiguard: %s declares no spread over nodes, so its pods may all land on one node and be lost with it; %s requires them on at least two nodes (HIPAA §164.308(a)(7)(ii)(C)): add to spec.template.spec %s, or a podAntiAffinity on %s whose labelSelector matches the template's labels",
			o, requirer, spreadSuggestion(o, selector), corev1.LabelHostname))
	}
	return out
}

// spreadSuggestion is a topologySpreadConstraint that declaredSpread accepts
// for the owner, selecting its pods by its selector's matchLabels (the
// template's labels when it has none); a Deployment's also spreads each
// rollout's pods on their own, as the sample does.
func spreadSuggestion(o *replicatedOwner, selector *metav1.LabelSelector) string {
	match := o.template.Labels
	if selector != nil && len(selector.MatchLabels) > 0 {
		match = selector.MatchLabels
	}
	pairs := make([]string, 0, len(match))
	for _, k := range slices.Sorted(maps.Keys(match)) {
		pairs = append(pairs, k+": "+match[k])
	}
	extra := ""
	if o.kind == kindDeployment {
		extra = ", matchLabelKeys: [" + appsv1.DefaultDeploymentUniqueLabelKey + "]"
	}
	return fmt.Sprintf("topologySpreadConstraints: [{maxSkew: 1, topologyKey: %s, whenUnsatisfiable: DoNotSchedule, labelSelector: {matchLabels: {%s}}%s}]",
		corev1.LabelHostname, strings.Join(pairs, ", "), extra)
}
