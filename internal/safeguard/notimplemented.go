package safeguard

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// placeholder stands for a safeguard phiguard does not evaluate yet: it has
// its name, rule and defaults, and reports Unknown, so it never counts as
// compliant. Implementing one replaces its line in New.
type placeholder struct {
	name     phiguardv1alpha1.SafeguardName
	rule     Rule
	defaults func(*phiguardv1alpha1.SafeguardSettings)
}

func (p placeholder) Name() phiguardv1alpha1.SafeguardName           { return p.name }
func (p placeholder) Rule() Rule                                     { return p.rule }
func (p placeholder) Defaults(s *phiguardv1alpha1.SafeguardSettings) { p.defaults(s) }

func (p placeholder) Reconcile(context.Context, *Scope) Result {
	return Result{
		Status: metav1.ConditionUnknown,
		Reason: phiguardv1alpha1.ReasonNotImplemented,
		Message: fmt.Sprintf("phiguard does not evaluate %s (%s) yet; it is not counted as compliant",
			p.name, p.rule.Section),
	}
}

var (
	transmissionSecurityPlaceholder = placeholder{
		name: phiguardv1alpha1.TransmissionSecure,
		rule: Rule{Section: "§164.312(e)(2)(ii)", Specification: phiguardv1alpha1.Addressable,
			Summary: "traffic to ePHI pods is encrypted in transit"},
		defaults: func(s *phiguardv1alpha1.SafeguardSettings) {
			s.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeEnforce}
		},
	}
	accessControlPlaceholder = placeholder{
		name: phiguardv1alpha1.AccessControlled,
		rule: Rule{Section: "§164.312(a)(1)", Specification: phiguardv1alpha1.Required,
			Summary: "ePHI pods run with dedicated, least-privilege identities"},
		defaults: func(s *phiguardv1alpha1.SafeguardSettings) {
			s.AccessControl = &phiguardv1alpha1.AccessControlSpec{Mode: phiguardv1alpha1.ModeAudit, AllowTokenAutomount: ptr.To(false)}
		},
	}
	availabilityPlaceholder = placeholder{
		name: phiguardv1alpha1.Available,
		rule: Rule{Section: "§164.308(a)(7)(ii)(C)", Specification: phiguardv1alpha1.Required,
			Summary: "ePHI workloads keep running through the loss of a pod"},
		defaults: func(s *phiguardv1alpha1.SafeguardSettings) {
			s.Availability = &phiguardv1alpha1.AvailabilitySpec{Mode: phiguardv1alpha1.ModeAudit, MinReplicas: ptr.To[int32](2)}
		},
	}
)
