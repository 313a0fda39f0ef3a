package safeguard

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/ssa"
)

// NetworkPolicyName is the name of the NetworkPolicy phiguard keeps for a
// workload. PHIWorkload names are at most 63 characters, so it is a valid name.
func NetworkPolicyName(workload string) string {
	return "phiguard-" + workload
}

// DesiredNetworkPolicy is the NetworkPolicy that isolates a workload's pods:
// both policy types, so that everything not allowed by a rule is denied, and
// rules for the same workload, DNS and what the spec declares. spec holds the
// effective settings (every optional field set).
func DesiredNetworkPolicy(w *phiguardv1alpha1.PHIWorkload, spec *phiguardv1alpha1.NetworkIsolationSpec) *networkingv1ac.NetworkPolicyApplyConfiguration {
	self := networkingv1ac.NetworkPolicyPeer().WithPodSelector(ssa.LabelSelector(&w.Spec.Selector))
	policy := networkingv1ac.NetworkPolicySpec().
		WithPodSelector(ssa.LabelSelector(&w.Spec.Selector)).
		WithPolicyTypes(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress)

	// WithIngress/WithEgress with no rules leave the lists nil, which the
	// apiserver stores as absent: deny all.
	var ingress []*networkingv1ac.NetworkPolicyIngressRuleApplyConfiguration
	var egress []*networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration
	if ptr.Deref(spec.AllowSameWorkload, true) {
		ingress = append(ingress, networkingv1ac.NetworkPolicyIngressRule().WithFrom(self))
		egress = append(egress, networkingv1ac.NetworkPolicyEgressRule().WithTo(self))
	}
	if ptr.Deref(spec.AllowDNS, true) {
		egress = append(egress, dnsRule())
	}
	for i := range spec.Ingress {
		r := &spec.Ingress[i]
		ingress = append(ingress, networkingv1ac.NetworkPolicyIngressRule().WithFrom(peers(r.From)...).WithPorts(ports(r.Ports)...))
	}
	for i := range spec.Egress {
		r := &spec.Egress[i]
		egress = append(egress, networkingv1ac.NetworkPolicyEgressRule().WithTo(peers(r.To)...).WithPorts(ports(r.Ports)...))
	}
	policy.WithIngress(ingress...).WithEgress(egress...)

	return networkingv1ac.NetworkPolicy(NetworkPolicyName(w.Name), w.Namespace).
		WithLabels(ownedLabels(w)).
		WithOwnerReferences(controllerReference(w)).
		WithSpec(policy)
}

// dnsRule allows name resolution through kube-dns (CoreDNS keeps the label).
func dnsRule() *networkingv1ac.NetworkPolicyEgressRuleApplyConfiguration {
	dns := networkingv1ac.NetworkPolicyPeer().
		WithNamespaceSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{corev1.LabelMetadataName: metav1.NamespaceSystem})).
		WithPodSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"k8s-app": "kube-dns"}))
	return networkingv1ac.NetworkPolicyEgressRule().WithTo(dns).WithPorts(
		networkingv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolUDP).WithPort(intstr.FromInt32(53)),
		networkingv1ac.NetworkPolicyPort().WithProtocol(corev1.ProtocolTCP).WithPort(intstr.FromInt32(53)),
	)
}

func peers(in []phiguardv1alpha1.NetworkPeer) []*networkingv1ac.NetworkPolicyPeerApplyConfiguration {
	out := make([]*networkingv1ac.NetworkPolicyPeerApplyConfiguration, 0, len(in))
	for i := range in {
		p := &in[i]
		ac := networkingv1ac.NetworkPolicyPeer()
		if p.PodSelector != nil {
			ac.WithPodSelector(ssa.LabelSelector(p.PodSelector))
		}
		if p.NamespaceSelector != nil {
			ac.WithNamespaceSelector(ssa.LabelSelector(p.NamespaceSelector))
		}
		if p.IPBlock != nil {
			ac.WithIPBlock(networkingv1ac.IPBlock().WithCIDR(p.IPBlock.CIDR).WithExcept(p.IPBlock.Except...))
		}
		out = append(out, ac)
	}
	return out
}

func ports(in []phiguardv1alpha1.NetworkPort) []*networkingv1ac.NetworkPolicyPortApplyConfiguration {
	out := make([]*networkingv1ac.NetworkPolicyPortApplyConfiguration, 0, len(in))
	for i := range in {
		p := &in[i]
		protocol := p.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP // the API's default, spelled out so that what is applied is what is stored
		}
		ac := networkingv1ac.NetworkPolicyPort().WithProtocol(protocol)
		if p.Port != nil {
			ac.WithPort(*p.Port)
		}
		if p.EndPort != nil {
			ac.WithEndPort(*p.EndPort)
		}
		out = append(out, ac)
	}
	return out
}
