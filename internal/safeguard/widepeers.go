package safeguard

import (
	"fmt"
	"net/netip"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// ValidateSpec implements SpecValidator: a declared allow that opens the
// workload to the whole internet or to every namespace is admitted, since it
// may be meant, but with a warning naming the rule.
func (NetworkIsolation) ValidateSpec(settings *phiguardv1alpha1.SafeguardSettings) ([]string, error) {
	spec := settings.NetworkIsolation
	if spec == nil {
		return nil, nil
	}
	var warnings []string
	for i, r := range spec.Ingress {
		for j := range r.From {
			if what := widePeer(&r.From[j]); what != "" {
				warnings = append(warnings, fmt.Sprintf("networkIsolation.ingress[%d].from[%d] lets in %s: ePHI pods reachable this widely are rarely intended", i, j, what))
			}
		}
	}
	for i, r := range spec.Egress {
		for j := range r.To {
			if what := widePeer(&r.To[j]); what != "" {
				warnings = append(warnings, fmt.Sprintf("networkIsolation.egress[%d].to[%d] lets the pods reach %s: ePHI could leave this way", i, j, what))
			}
		}
	}
	return warnings, nil
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
