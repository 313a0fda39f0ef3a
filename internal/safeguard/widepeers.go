package safeguard

import (
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// ValidateSpec implements SpecValidator: a declared allow that opens the
// workload to the whole internet or to every namespace is admitted, since it
// may be meant, but with a warning naming the rule. A peer's selector or
// CIDR, or a port's name, that the NetworkPolicy API refuses is refused,
// naming the field: the CRD's schema cannot check them as that API does, and the
// NetworkPolicy generated from them could never be applied.
func (NetworkIsolation) ValidateSpec(settings *phiguardv1alpha1.SafeguardSettings) ([]string, error) {
	spec := settings.NetworkIsolation
	if spec == nil {
		return nil, nil
	}
	var warnings []string
	var invalid field.ErrorList
	path := field.NewPath("networkIsolation")
	for i, r := range spec.Ingress {
		for j := range r.From {
			if what := widePeer(&r.From[j]); what != "" {
				warnings = append(warnings, fmt.Sprintf("networkIsolation.ingress[%d].from[%d] lets in %s: ePHI pods reachable this widely are rarely intended", i, j, what))
			}
			invalid = append(invalid, validatePeer(&r.From[j], path.Child("ingress").Index(i).Child("from").Index(j))...)
		}
		invalid = append(invalid, validatePorts(r.Ports, path.Child("ingress").Index(i).Child("ports"))...)
	}
	for i, r := range spec.Egress {
		for j := range r.To {
			if what := widePeer(&r.To[j]); what != "" {
				warnings = append(warnings, fmt.Sprintf("networkIsolation.egress[%d].to[%d] lets the pods reach %s: ePHI could leave this way", i, j, what))
			}
			invalid = append(invalid, validatePeer(&r.To[j], path.Child("egress").Index(i).Child("to").Index(j))...)
		}
		invalid = append(invalid, validatePorts(r.Ports, path.Child("egress").Index(i).Child("ports"))...)
	}
	if len(invalid) > 0 {
		return warnings, fmt.Errorf("%w; correct it: the NetworkPolicy phiguard generates would be refused by the apiserver", invalid.ToAggregate())
	}
	return warnings, nil
}

// validatePeer checks a peer's selectors and CIDRs as the NetworkPolicy API
// does (its strict IP validation, the default since Kubernetes 1.36: no
// bits beyond the prefix length, no leading zeros, no IPv4-mapped IPv6).
func validatePeer(p *phiguardv1alpha1.NetworkPeer, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if b := p.IPBlock; b != nil {
		errs = append(errs, validation.IsValidCIDRForLegacyField(path.Child("ipBlock", "cidr"), b.CIDR, true, nil)...)
		for i, except := range b.Except {
			errs = append(errs, validation.IsValidCIDRForLegacyField(path.Child("ipBlock", "except").Index(i), except, true, nil)...)
		}
	}
	opts := metav1validation.LabelSelectorValidationOptions{}
	if p.PodSelector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(p.PodSelector, opts, path.Child("podSelector"))...)
	}
	if p.NamespaceSelector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(p.NamespaceSelector, opts, path.Child("namespaceSelector"))...)
	}
	return errs
}

// validatePorts checks named ports as the NetworkPolicy API does (the CRD
// checks numbers and ranges).
func validatePorts(ports []phiguardv1alpha1.NetworkPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, p := range ports {
		if p.Port != nil && p.Port.Type == intstr.String {
			for _, msg := range validation.IsValidPortName(p.Port.StrVal) {
				errs = append(errs, field.Invalid(path.Index(i).Child("port"), p.Port.StrVal, msg))
			}
		}
	}
	return errs
}

// widePeer says what a peer opens when that is the whole internet or every
// namespace; "" otherwise.
func widePeer(p *phiguardv1alpha1.NetworkPeer) string {
	switch {
	case p.IPBlock != nil:
		if prefix, err := netip.ParsePrefix(p.IPBlock.CIDR); err == nil && prefix.Bits() == 0 && len(p.IPBlock.Except) == 0 {
			return "every address (ipBlock " + p.IPBlock.CIDR + ")"
		}
	case p.NamespaceSelector != nil && emptySelector(p.NamespaceSelector) && (p.PodSelector == nil || emptySelector(p.PodSelector)):
		return "every pod in every namespace (an empty namespaceSelector)"
	}
	return ""
}

func emptySelector(s *metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}
