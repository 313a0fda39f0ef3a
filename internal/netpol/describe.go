package netpol

import networkingv1 "k8s.io/api/networking/v1"

// DescribePeer says in words which peers p admits, for a rule of a policy in
// namespace ns, as Flow.Describe names them: "anywhere" (nil), a CIDR and
// its exceptions, "any pod in namespace clinic", "pods with app=web in
// namespaces with team=front".
func DescribePeer(p *networkingv1.NetworkPolicyPeer, ns string) string {
	return describePeer(p, ns)
}
