// Package netpol evaluates Kubernetes NetworkPolicies (networking.k8s.io/v1)
// as the API defines them, one pod at a time: whether the pod is isolated in
// each direction, the rules that together admit its traffic (the union of the
// rules of every policy that selects it), whether a given connection passes,
// and which parts of a rule another set of rules does not provably admit
// (Uncovered), which is how phiguard judges that no policy opens a workload
// wider than it declares.
//
// It models the API, not a network plugin: NetworkPolicies take effect only
// where the plugin enforces them, and what a plugin does with an ipBlock that
// contains pod addresses is left to it by the API (Uncovered never counts on
// it).
package netpol

import (
	"cmp"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Rule is one ingress or egress rule of a NetworkPolicy: it admits each of
// Peers on each of Ports.
type Rule struct {
	// Policy names the NetworkPolicy the rule belongs to, as namespace/name.
	Policy string
	// Namespace is the policy's namespace: a peer with a podSelector and no
	// namespaceSelector means pods of this namespace.
	Namespace string
	// Peers are the rule's from (ingress) or to (egress). Empty: every peer,
	// inside the cluster or not.
	Peers []networkingv1.NetworkPolicyPeer
	// Ports are the rule's ports. Empty: every port of every protocol.
	Ports []networkingv1.NetworkPolicyPort
}

// Direction is what the policies admit in one direction of one pod.
type Direction struct {
	// Isolated says some policy selects the pod for this direction: then only
	// what Rules admit passes. A pod no policy isolates is open.
	Isolated bool
	// Rules are the rules of every policy that selects the pod for this
	// direction, ordered by policy name: the traffic they admit together.
	Rules []Rule
}

// Pod is what the NetworkPolicies of its namespace admit for one pod.
type Pod struct {
	Ingress, Egress Direction
}

// Evaluate collects, for a pod, the rules of every NetworkPolicy that selects
// it. Policies of other namespaces and policies being deleted are ignored.
func Evaluate(pod *corev1.Pod, policies []networkingv1.NetworkPolicy) Pod {
	ordered := make([]*networkingv1.NetworkPolicy, 0, len(policies))
	for i := range policies {
		np := &policies[i]
		if np.Namespace == pod.Namespace && np.DeletionTimestamp.IsZero() && Selects(np, pod.Labels) {
			ordered = append(ordered, np)
		}
	}
	slices.SortStableFunc(ordered, func(a, b *networkingv1.NetworkPolicy) int { return cmp.Compare(a.Name, b.Name) })

	var out Pod
	for _, np := range ordered {
		ingress, egress := PolicyTypes(np)
		if ingress {
			out.Ingress.Isolated = true
			out.Ingress.Rules = append(out.Ingress.Rules, Rules(np, networkingv1.PolicyTypeIngress)...)
		}
		if egress {
			out.Egress.Isolated = true
			out.Egress.Rules = append(out.Egress.Rules, Rules(np, networkingv1.PolicyTypeEgress)...)
		}
	}
	return out
}

// Selects says whether a policy's podSelector matches a pod's labels. An
// empty selector matches every pod of the policy's namespace.
func Selects(np *networkingv1.NetworkPolicy, podLabels map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	return err == nil && sel.Matches(labels.Set(podLabels))
}

// PolicyTypes says which directions a policy isolates. Without policyTypes
// (the apiserver fills them in, but an object may come from elsewhere) a
// policy isolates ingress always, and egress only when it has egress rules.
func PolicyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress),
		slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// Rules returns a policy's rules of one direction, whatever its policyTypes.
func Rules(np *networkingv1.NetworkPolicy, dir networkingv1.PolicyType) []Rule {
	name := np.Namespace + "/" + np.Name
	var out []Rule
	if dir == networkingv1.PolicyTypeIngress {
		for _, r := range np.Spec.Ingress {
			out = append(out, Rule{Policy: name, Namespace: np.Namespace, Peers: r.From, Ports: r.Ports})
		}
		return out
	}
	for _, r := range np.Spec.Egress {
		out = append(out, Rule{Policy: name, Namespace: np.Namespace, Peers: r.To, Ports: r.Ports})
	}
	return out
}

// Endpoint is the other end of a connection: a pod (Namespace set) or an
// address outside the cluster (IP only).
type Endpoint struct {
	// Namespace is a pod's namespace; empty for an address outside the cluster.
	Namespace string
	// NamespaceLabels are the labels of the pod's namespace; its
	// kubernetes.io/metadata.name label, which the apiserver sets on every
	// namespace, need not be given.
	NamespaceLabels map[string]string
	// Labels are the pod's labels.
	Labels map[string]string
	// IP is the address, matched by ipBlock peers.
	IP netip.Addr
}

// Allows says whether the direction lets a connection through: peer is the
// other end, dst the container ports of the destination (named ports are
// resolved on it), and protocol and port the destination port.
func (d Direction) Allows(peer Endpoint, dst []corev1.ContainerPort, protocol corev1.Protocol, port int32) bool {
	if !d.Isolated {
		return true
	}
	for _, r := range d.Rules {
		if r.Admits(peer, dst, protocol, port) {
			return true
		}
	}
	return false
}

// Admits says whether the rule admits a connection; see Direction.Allows.
func (r Rule) Admits(peer Endpoint, dst []corev1.ContainerPort, protocol corev1.Protocol, port int32) bool {
	return r.admitsPeer(peer) && admitsPort(r.Ports, dst, protocol, port)
}

func (r Rule) admitsPeer(e Endpoint) bool {
	if len(r.Peers) == 0 {
		return true
	}
	for i := range r.Peers {
		p := &r.Peers[i]
		if p.IPBlock != nil {
			if inBlock(p.IPBlock, e.IP) {
				return true
			}
			continue
		}
		if e.Namespace == "" {
			continue // selectors choose pods only
		}
		namespaceOK := e.Namespace == r.Namespace
		if p.NamespaceSelector != nil {
			nsLabels := labels.Merge(labels.Set(e.NamespaceLabels), labels.Set{corev1.LabelMetadataName: e.Namespace})
			namespaceOK = matches(p.NamespaceSelector, nsLabels)
		}
		if namespaceOK && (p.PodSelector == nil || matches(p.PodSelector, e.Labels)) {
			return true
		}
	}
	return false
}

func matches(s *metav1.LabelSelector, set map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && sel.Matches(labels.Set(set))
}

func inBlock(b *networkingv1.IPBlock, ip netip.Addr) bool {
	prefix, err := netip.ParsePrefix(b.CIDR)
	if !ip.IsValid() || err != nil || !prefix.Masked().Contains(ip) {
		return false
	}
	for _, except := range b.Except {
		if e, err := netip.ParsePrefix(except); err == nil && e.Masked().Contains(ip) {
			return false
		}
	}
	return true
}

func admitsPort(ports []networkingv1.NetworkPolicyPort, dst []corev1.ContainerPort, protocol corev1.Protocol, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for i := range ports {
		p := &ports[i]
		if protocolOf(p) != protocol {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String:
			// A named port is the destination's container port of that name and protocol.
			if slices.ContainsFunc(dst, func(cp corev1.ContainerPort) bool {
				return cp.Name == p.Port.StrVal && containerProtocol(cp) == protocol && cp.ContainerPort == port
			}) {
				return true
			}
		case p.EndPort != nil:
			if port >= p.Port.IntVal && port <= *p.EndPort {
				return true
			}
		case port == p.Port.IntVal:
			return true
		}
	}
	return false
}

// protocolOf is a policy port's protocol; the API's default is TCP.
func protocolOf(p *networkingv1.NetworkPolicyPort) corev1.Protocol {
	if p.Protocol == nil || *p.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return *p.Protocol
}

// containerProtocol is a container port's protocol; the API's default is TCP.
func containerProtocol(cp corev1.ContainerPort) corev1.Protocol {
	return cmp.Or(cp.Protocol, corev1.ProtocolTCP)
}
