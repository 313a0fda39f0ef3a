package safeguard

import (
	"context"
	"fmt"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The transmission webhook's configurations, generated into config/webhook:
//   - Ingresses (networking.k8s.io/v1) and Services on create and update: the
//     edge objects whose TLS can be judged from the object itself and the
//     cache. Gateway API routes are not: whether a route is plain depends on
//     Gateways that may change after it; the status reports them.
//   - it never refuses, in Audit as in Enforce: the edge is the user's to
//     change (Enforce changes only in-cluster mTLS), so it admits with a
//     warning that says what to change, also recorded as an Event on the
//     PHIWorkload. Off (or an Off decision) warns nothing.
//   - failurePolicy=ignore: it sees every Ingress and Service created in the
//     cluster, and an outage of phiguard must not stop them; one admitted
//     while phiguard is down is still reported on the PHIWorkload's status.
//     An error deciding admits too, with a warning that says so.
//   - timeoutSeconds=5: the decision reads only the manager's cache.
//   - sideEffects=None: deciding writes nothing; the Event it records is
//     skipped for a dry run.
//   - covered pods: those in the manager's cache that a PHIWorkload selects
//     (not being deleted) and the Service's selector matches, exactly as the
//     status judgment has them. An Ingress or Service created before its
//     pods exist gets no warning, and the status reports it once they run:
//     intersecting the Service's selector with the PHIWorkload's instead
//     would warn about Services whose pods merely could carry both labels.
//   - namespaces: config/webhook's kustomization skips kube-system and
//     phiguard's own namespace; the handler skips them too, and every
//     namespace no PHIWorkload covers.

// +kubebuilder:webhook:path=/warn-transmission,mutating=false,failurePolicy=ignore,sideEffects=None,groups=networking.k8s.io,resources=ingresses,verbs=create;update,versions=v1,name=vingress-transmission.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/warn-transmission,mutating=false,failurePolicy=ignore,sideEffects=None,groups="",resources=services,verbs=create;update,versions=v1,name=vservice-transmission.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// TransmissionPath is where the transmission webhook is served.
const TransmissionPath = "/warn-transmission"

// transmissionAdmission warns about an Ingress or Service that would expose
// pods a PHIWorkload covers without TLS; it never refuses.
type transmissionAdmission struct {
	AdmissionEnv
	decoder admission.Decoder
}

// SetupWebhooks implements Admitter: the transmission webhook.
func (TransmissionSecurity) SetupWebhooks(mgr ctrl.Manager, env AdmissionEnv) error {
	mgr.GetWebhookServer().Register(TransmissionPath, &webhook.Admission{
		Handler: &transmissionAdmission{AdmissionEnv: env, decoder: admission.NewDecoder(mgr.GetScheme())}})
	return nil
}

// Handle implements admission.Handler: always allowed, with warnings.
func (a *transmissionAdmission) Handle(ctx context.Context, req admission.Request) admission.Response {
	// A raw handler is not given the request in its context: Record reads it there.
	ctx = admission.NewContextWithRequest(ctx, req)
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		return admission.Allowed("")
	}
	var warnings admission.Warnings
	var err error
	switch {
	case req.Kind.Group == networkingv1.GroupName && req.Kind.Kind == "Ingress":
		warnings, err = a.ingress(ctx, req)
	case req.Kind.Group == "" && req.Kind.Kind == kindService:
		warnings, err = a.service(ctx, req)
	}
	if err != nil {
		logf.FromContext(ctx).Error(err, "judging transmission security at admission", "kind", req.Kind.Kind,
			"namespace", req.Namespace, "name", req.Name)
		warnings = admission.Warnings{fmt.Sprintf("phiguard could not check whether %s %s exposes ePHI pods without TLS (%v); the PHIWorkload's status will say",
			req.Kind.Kind, objectName(req), err)}
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// ingress judges an Ingress against the Services in its namespace.
func (a *transmissionAdmission) ingress(ctx context.Context, req admission.Request) (admission.Warnings, error) {
	ing := &networkingv1.Ingress{}
	if err := a.decoder.Decode(req, ing); err != nil {
		return nil, fmt.Errorf("decoding the Ingress: %w", err)
	}
	ing.Name = cmpName(ing.Name, ing.GenerateName)
	var services []corev1.Service
	read := func() error {
		if services != nil {
			return nil
		}
		var list corev1.ServiceList
		if err := a.Reader.List(ctx, &list, client.InNamespace(req.Namespace)); err != nil {
			return fmt.Errorf("listing Services in %s: %w", req.Namespace, err)
		}
		services = append(make([]corev1.Service, 0, len(list.Items)), list.Items...)
		return nil
	}
	facts := func(pods []corev1.Pod) (transmissionFacts, error) {
		if err := read(); err != nil {
			return transmissionFacts{}, err
		}
		return transmissionFacts{namespace: req.Namespace, pods: pods, services: services,
			ingresses: []networkingv1.Ingress{*ing}}, nil
	}
	return a.warn(ctx, req.Namespace, "Ingress "+ing.Name, phiguardv1alpha1.ReasonIngressWithoutTLS, facts)
}

// service judges a Service on its own: exposed outside the cluster, it must
// declare TLS on every port.
func (a *transmissionAdmission) service(ctx context.Context, req admission.Request) (admission.Warnings, error) {
	svc := &corev1.Service{}
	if err := a.decoder.Decode(req, svc); err != nil {
		return nil, fmt.Errorf("decoding the Service: %w", err)
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, nil // selects no pod (its Endpoints are someone else's)
	}
	svc.Name = cmpName(svc.Name, svc.GenerateName)
	facts := func(pods []corev1.Pod) (transmissionFacts, error) {
		return transmissionFacts{namespace: req.Namespace, pods: pods, services: []corev1.Service{*svc}}, nil
	}
	return a.warn(ctx, req.Namespace, "Service "+svc.Name, phiguardv1alpha1.ReasonServiceExposedWithoutTLS, facts)
}

// warn finds the PHIWorkloads in ns whose pods the object would expose
// without TLS (the judgment's findings of reason, given facts about their
// pods), and warns for the one of the strongest mode, recording the warning
// on it.
func (a *transmissionAdmission) warn(ctx context.Context, ns, subject, reason string,
	facts func(pods []corev1.Pod) (transmissionFacts, error)) (admission.Warnings, error) {
	var all []corev1.Pod
	findings := func(sel labels.Selector) ([]string, error) {
		if all == nil {
			var list corev1.PodList
			if err := a.Reader.List(ctx, &list, client.InNamespace(ns)); err != nil {
				return nil, fmt.Errorf("listing pods in %s: %w", ns, err)
			}
			all = make([]corev1.Pod, 0, len(list.Items))
			for i := range list.Items {
				if list.Items[i].DeletionTimestamp.IsZero() {
					all = append(all, list.Items[i])
				}
			}
		}
		var pods []corev1.Pod
		for i := range all {
			if sel.Matches(labels.Set(all[i].Labels)) {
				pods = append(pods, all[i])
			}
		}
		if len(pods) == 0 {
			return nil, nil
		}
		f, err := facts(pods)
		if err != nil {
			return nil, err
		}
		return edgeFindings(f, reason), nil
	}
	// A workload "covers" the object when the object would fail it.
	c, ok, err := a.coverage(ctx, ns, phiguardv1alpha1.TransmissionSecure, func(sel labels.Selector) (bool, error) {
		texts, err := findings(sel)
		return len(texts) > 0, err
	})
	if err != nil || !ok {
		return nil, err
	}
	sel, err := metav1.LabelSelectorAsSelector(&c.workload.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("parsing the selector of %s/%s: %w", c.workload.Namespace, c.workload.Name, err)
	}
	texts, err := findings(sel)
	if err != nil {
		return nil, err
	}
	msg := fmt.Sprintf("phiguard (%s, allowed): %s would carry ePHI unencrypted: %s%s. PHIWorkload %s/%s requires encryption in transit "+
		"(HIPAA §164.312(e)(2)(ii), transmissionSecurity.mode %s), and its %s condition reports %s until then",
		c.mode, subject, strings.Join(named(texts), "; "), fix(reason), c.workload.Namespace, c.workload.Name, c.mode,
		phiguardv1alpha1.TransmissionSecure, reason)
	warnings := admission.Warnings{msg}
	a.Record(ctx, c.workload, nil, warnings)
	return warnings, nil
}

// edgeFindings runs the status judgment's step for reason (the Ingresses,
// or the exposed Services) on f, and returns what it found.
func edgeFindings(f transmissionFacts, reason string) []string {
	j := newTransmissionJudgement(f)
	switch reason {
	case phiguardv1alpha1.ReasonIngressWithoutTLS:
		j.judgeIngresses()
	case phiguardv1alpha1.ReasonServiceExposedWithoutTLS:
		j.judgeExposedServices()
	}
	return j.findings[reason]
}
