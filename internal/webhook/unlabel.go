package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// The unlabel webhooks' configuration:
//   - Namespaces, failurePolicy=fail: with PHIPolicy requireApprovalToUnlabel,
//     a Namespace must not lose its phiguard.io/ephi label without a
//     documented decision, and phiguard being down must not be a way around
//     that. config/webhook limits the call to Namespaces that carry the
//     label (an objectSelector), so no other Namespace depends on phiguard.
//   - Deployments, StatefulSets, Services, failurePolicy=ignore: the call
//     only records who removed the label or deleted the labelled object (the
//     requesting user is known only at admission); it never refuses.

// +kubebuilder:webhook:path=/validate-ephi-label-namespace,mutating=false,failurePolicy=fail,sideEffects=None,groups="",resources=namespaces,verbs=update,versions=v1,name=vnamespace-unlabel.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5
// +kubebuilder:webhook:path=/validate-ephi-label,mutating=false,failurePolicy=ignore,sideEffects=None,groups="";apps,resources=services;deployments;statefulsets,verbs=update;delete,versions=v1,name=vunlabel.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// UnlabelGuard sees every removal of the phiguard.io/ephi label and every
// deletion of a labelled object. It logs who made it, and refuses a
// Namespace's removal without a decision when PHIPolicy
// requireApprovalToUnlabel is set.
type UnlabelGuard struct {
	// Reader reads the PHIPolicy (the manager's cache).
	Reader client.Reader
	// Clock is the time decisions are judged against.
	Clock clock.PassiveClock
	// Recorder records a Namespace's denial or warning as an Event on its
	// generated PHIWorkload; nil records none.
	Recorder recorder.EventRecorder
}

// SetupWithManager registers the guard on both paths.
func (g *UnlabelGuard) SetupWithManager(mgr ctrl.Manager) error {
	server := mgr.GetWebhookServer()
	server.Register("/validate-ephi-label-namespace", &webhook.Admission{Handler: g})
	server.Register("/validate-ephi-label", &webhook.Admission{Handler: g})
	return nil
}

// objectMeta is the part of any object the guard reads.
type objectMeta struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
}

// Handle implements admission.Handler.
func (g *UnlabelGuard) Handle(ctx context.Context, req admission.Request) admission.Response {
	// A raw handler is not given the request in its context: record reads it there.
	ctx = admission.NewContextWithRequest(ctx, req)
	var before, after objectMeta
	if err := json.Unmarshal(req.OldObject.Raw, &before); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("reading the old object: %w", err))
	}
	wasLabelled := before.Metadata.Labels[phiguardv1alpha1.EPHILabel] == phiguardv1alpha1.EPHILabelValue
	if !wasLabelled {
		return admission.Allowed("")
	}
	object := req.Kind.Kind + " " + req.Namespace + "/" + req.Name
	if req.Kind.Kind == kindNamespace { // its request names it as its own namespace
		object = "Namespace " + req.Name
	}
	log := logf.FromContext(ctx).WithValues("kind", req.Kind.Kind, "namespace", req.Namespace, "name", req.Name,
		"user", req.UserInfo.Username, "groups", req.UserInfo.Groups)
	if req.Operation == admissionv1.Delete {
		if req.DryRun == nil || !*req.DryRun {
			log.Info("object labelled " + phiguardv1alpha1.EPHILabel + "=true deleted: its pods lose phiguard coverage")
		}
		return admission.Allowed("")
	}
	if err := json.Unmarshal(req.Object.Raw, &after); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("reading the object: %w", err))
	}
	if after.Metadata.Labels[phiguardv1alpha1.EPHILabel] == phiguardv1alpha1.EPHILabelValue {
		return admission.Allowed("")
	}

	var warnings []string
	if req.Kind.Kind == kindNamespace {
		var denied, err error
		warnings, denied, err = g.namespaceDecision(ctx, after.Metadata.Annotations, object)
		if err != nil {
			return admission.Errored(http.StatusInternalServerError, err)
		}
		g.record(ctx, req.Name, denied, warnings)
		if denied != nil {
			return admission.Denied(denied.Error())
		}
		a := after.Metadata.Annotations
		log = log.WithValues("approvedBy", a[phiguardv1alpha1.UnlabelApprovedByAnnotation],
			"justification", a[phiguardv1alpha1.UnlabelJustificationAnnotation])
	}
	if req.DryRun == nil || !*req.DryRun {
		log.Info("label " + phiguardv1alpha1.EPHILabel + "=true removed: the object's pods lose phiguard coverage")
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// kindNamespace is the kind whose unlabelling may need an approved decision.
const kindNamespace = "Namespace"

// namespaceDecision applies PHIPolicy requireApprovalToUnlabel to a
// Namespace losing its label: the denial when the decision is missing, or
// the warning that names its approver; err when the policy cannot be read.
func (g *UnlabelGuard) namespaceDecision(ctx context.Context, annotations map[string]string, object string) (warnings []string, denied, err error) {
	required, err := g.approvalRequired(ctx)
	if err != nil || !required {
		return nil, nil, err
	}
	if problem := g.checkDecision(annotations); problem != "" {
		return nil, fmt.Errorf("%s is labelled %s=true and PHIPolicy %s requires an approved decision to remove it (spec.requireApprovalToUnlabel): %s",
			object, phiguardv1alpha1.EPHILabel, phiguardv1alpha1.DefaultPolicyName, problem), nil
	}
	return []string{fmt.Sprintf("removing %s from %s, approved by %s: every pod in it loses phiguard coverage",
		phiguardv1alpha1.EPHILabel, object, annotations[phiguardv1alpha1.UnlabelApprovedByAnnotation])}, nil, nil
}

// record makes a Namespace's denial or warning an Event on the PHIWorkload
// generated for it, the workload whose coverage the label decides.
func (g *UnlabelGuard) record(ctx context.Context, namespace string, denied error, warnings []string) {
	w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: controller.NamespaceSource.GeneratedName(namespace)}}
	safeguard.AdmissionEnv{Recorder: g.Recorder}.Record(ctx, w, denied, warnings)
}

// approvalRequired reads PHIPolicy requireApprovalToUnlabel.
func (g *UnlabelGuard) approvalRequired(ctx context.Context) (bool, error) {
	p, err := safeguard.DefaultPolicy(ctx, g.Reader)
	if err != nil {
		return false, err
	}
	return p != nil && p.Spec.RequireApprovalToUnlabel, nil
}

// checkDecision returns what is missing from the decision annotations, or "".
func (g *UnlabelGuard) checkDecision(a map[string]string) string {
	var missing []string
	if len(strings.TrimSpace(a[phiguardv1alpha1.UnlabelJustificationAnnotation])) < phiguardv1alpha1.MinJustificationLength {
		missing = append(missing, fmt.Sprintf("%s (why the namespace no longer handles ePHI, at least %d characters)",
			phiguardv1alpha1.UnlabelJustificationAnnotation, phiguardv1alpha1.MinJustificationLength))
	}
	if strings.TrimSpace(a[phiguardv1alpha1.UnlabelApprovedByAnnotation]) == "" {
		missing = append(missing, phiguardv1alpha1.UnlabelApprovedByAnnotation+" (who approved it)")
	}
	switch expires, err := time.Parse(time.RFC3339, a[phiguardv1alpha1.UnlabelExpiresAnnotation]); {
	case err != nil:
		missing = append(missing, phiguardv1alpha1.UnlabelExpiresAnnotation+" (when the approval lapses, RFC 3339 such as 2030-01-31T00:00:00Z)")
	case !g.Clock.Now().Before(expires):
		return fmt.Sprintf("the approval in %s expired at %s; renew it", phiguardv1alpha1.UnlabelExpiresAnnotation, expires.UTC().Format(time.RFC3339))
	}
	if len(missing) == 0 {
		return ""
	}
	return "add the annotations " + strings.Join(missing, ", ") + " in the same change"
}
