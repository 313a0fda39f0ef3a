package netpol

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Flow is one part of what a rule admits: one of its peers on one of its ports.
type Flow struct {
	// Rule is the rule that admits the flow.
	Rule Rule
	// Peer is one of the rule's peers; nil when the rule lists none (every peer).
	Peer *networkingv1.NetworkPolicyPeer
	// Port is one of the rule's ports; nil when the rule lists none (every
	// port of every protocol).
	Port *networkingv1.NetworkPolicyPort
}

// Uncovered returns the flows of r that no rule of declared provably admits.
// A flow (one peer of r on one port of r) is covered when a single declared
// rule lists a peer that admits everything the flow's peer does and a port
// that admits everything its port does.
//
// dst is the destination pod when it is known, as for the ingress rules of a
// pod: named ports are then resolved on its containers. For egress it is nil,
// and a named port is covered only by a port of the same name and protocol.
//
// The answer is sound, not complete: a flow it does not return, declared
// admits; a flow it returns may be admitted in a way it does not prove. A peer
// is covered by one declared peer, never by several together; a selector by
// an identical or broader one (each requirement of the broader implied by one
// of the narrower, as a subset of matchLabels is), or by a namespace's name;
// an ipBlock by a block that contains it, never by selectors (which pods an
// ipBlock matches is up to the network plugin) and selectors never by an
// ipBlock.
func Uncovered(r Rule, declared []Rule, dst *corev1.Pod) []Flow {
	peers := []*networkingv1.NetworkPolicyPeer{nil}
	if len(r.Peers) > 0 {
		peers = peers[:0]
		for i := range r.Peers {
			peers = append(peers, &r.Peers[i])
		}
	}
	ports := []*networkingv1.NetworkPolicyPort{nil}
	if len(r.Ports) > 0 {
		ports = ports[:0]
		for i := range r.Ports {
			ports = append(ports, &r.Ports[i])
		}
	}
	var out []Flow
	for _, peer := range peers {
		for _, port := range ports {
			for _, sp := range admittedSpans(port, dst) {
				if !slices.ContainsFunc(declared, func(d Rule) bool { return d.covers(peer, r.Namespace, sp, dst) }) {
					out = append(out, Flow{Rule: r, Peer: peer, Port: port})
					break
				}
			}
		}
	}
	return out
}

// covers says whether the rule admits everything a peer (of a rule in
// namespace ns) admits on a span of ports.
func (r Rule) covers(peer *networkingv1.NetworkPolicyPeer, ns string, sp span, dst *corev1.Pod) bool {
	peerOK := len(r.Peers) == 0
	for i := 0; !peerOK && i < len(r.Peers); i++ {
		peerOK = peerCovers(&r.Peers[i], r.Namespace, peer, ns)
	}
	if !peerOK {
		return false
	}
	if len(r.Ports) == 0 {
		return true
	}
	for i := range r.Ports {
		if slices.ContainsFunc(declaredSpans(&r.Ports[i], dst), func(d span) bool { return d.contains(sp) }) {
			return true
		}
	}
	return false
}

// peerCovers says whether peer d (of a rule in namespace dNS) admits
// everything peer c (of a rule in cNS) does; nil is every peer.
func peerCovers(d *networkingv1.NetworkPolicyPeer, dNS string, c *networkingv1.NetworkPolicyPeer, cNS string) bool {
	switch {
	case d == nil:
		return true
	case c == nil:
		return false
	case c.IPBlock != nil:
		return d.IPBlock != nil && blockCovers(d.IPBlock, c.IPBlock)
	case d.IPBlock != nil:
		return false
	}
	if !implies(namespaces(c, cNS), namespaces(d, dNS)) {
		return false
	}
	if d.PodSelector == nil {
		return true
	}
	if c.PodSelector == nil {
		return implies(&metav1.LabelSelector{}, d.PodSelector)
	}
	return implies(c.PodSelector, d.PodSelector)
}

// namespaces is the selector of a selector peer's namespaces: without a
// namespaceSelector, the rule's own namespace, by the name label the
// apiserver keeps on every namespace.
func namespaces(p *networkingv1.NetworkPolicyPeer, ns string) *metav1.LabelSelector {
	if p.NamespaceSelector != nil {
		return p.NamespaceSelector
	}
	return &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: ns}}
}

// implies says whether every label set c matches also matches d: each of d's
// requirements follows from one of c's.
func implies(c, d *metav1.LabelSelector) bool {
	cs, err := metav1.LabelSelectorAsSelector(c)
	if err != nil {
		return false
	}
	ds, err := metav1.LabelSelectorAsSelector(d)
	if err != nil {
		return false
	}
	creqs, _ := cs.Requirements()
	dreqs, _ := ds.Requirements()
	for _, dr := range dreqs {
		if !slices.ContainsFunc(creqs, func(cr labels.Requirement) bool { return requirementImplies(cr, dr) }) {
			return false
		}
	}
	return true
}

type operator int

const (
	opUnknown operator = iota
	opIn
	opNotIn
	opExists
	opDoesNotExist
)

func operatorOf(r labels.Requirement) operator {
	switch r.Operator() {
	case selection.In, selection.Equals, selection.DoubleEquals:
		return opIn
	case selection.NotIn, selection.NotEquals:
		return opNotIn
	case selection.Exists:
		return opExists
	case selection.DoesNotExist:
		return opDoesNotExist
	default:
		return opUnknown
	}
}

// requirementImplies says whether a label set meeting c always meets d. A
// NotIn requirement also holds when the key is absent.
func requirementImplies(c, d labels.Requirement) bool {
	if c.Key() != d.Key() {
		return false
	}
	cv, dv := sets.New(c.ValuesUnsorted()...), sets.New(d.ValuesUnsorted()...)
	switch operatorOf(c) {
	case opIn:
		switch operatorOf(d) {
		case opIn:
			return dv.IsSuperset(cv)
		case opNotIn:
			return !dv.HasAny(cv.UnsortedList()...)
		case opExists:
			return true
		}
	case opExists:
		return operatorOf(d) == opExists
	case opNotIn:
		return operatorOf(d) == opNotIn && cv.IsSuperset(dv)
	case opDoesNotExist:
		return operatorOf(d) == opDoesNotExist || operatorOf(d) == opNotIn
	}
	return false
}

// blockCovers says whether every address block c admits, d admits too.
func blockCovers(d, c *networkingv1.IPBlock) bool {
	dp, dErr := prefix(d.CIDR)
	cp, cErr := prefix(c.CIDR)
	if dErr != nil || cErr != nil || dp.Addr().BitLen() != cp.Addr().BitLen() || dp.Bits() > cp.Bits() || !dp.Contains(cp.Addr()) {
		return false
	}
	for _, s := range d.Except {
		e, err := prefix(s)
		if err != nil {
			return false
		}
		if !e.Overlaps(cp) {
			continue
		}
		// The part of c that d excepts must be excepted by c as well.
		if e.Bits() <= cp.Bits() || !slices.ContainsFunc(c.Except, func(s string) bool {
			x, err := prefix(s)
			return err == nil && x.Bits() <= e.Bits() && x.Contains(e.Addr())
		}) {
			return false
		}
	}
	return true
}

func prefix(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}

// span is a set of destination ports: every port of every protocol, every
// port of one, a range, or a named port (resolved to a number or not).
type span struct {
	// protocol is empty for every protocol (then all is set).
	protocol corev1.Protocol
	all      bool
	from, to int32
	// name is a named port's name; from and to are zero while it is unresolved.
	name string
}

// admittedSpans is what a port of a rule being judged admits. A named port
// is resolved on every container of a known destination, init containers
// included, whichever a plugin looks at; one the pod lacks admits nothing.
func admittedSpans(p *networkingv1.NetworkPolicyPort, dst *corev1.Pod) []span {
	if p == nil || p.Port == nil || p.Port.Type != intstr.String || dst == nil {
		return []span{portSpan(p)}
	}
	var out []span
	for _, n := range containerPorts(dst, p.Port.StrVal, protocolOf(p), true) {
		out = append(out, span{protocol: protocolOf(p), from: n, to: n, name: p.Port.StrVal})
	}
	return out
}

// declaredSpans is what a declared port admits for sure: a named port is its
// name, and the numbers it has on the regular containers of a known
// destination, which every plugin looks at.
func declaredSpans(p *networkingv1.NetworkPolicyPort, dst *corev1.Pod) []span {
	out := []span{portSpan(p)}
	if p.Port != nil && p.Port.Type == intstr.String && dst != nil {
		for _, n := range containerPorts(dst, p.Port.StrVal, protocolOf(p), false) {
			out = append(out, span{protocol: protocolOf(p), from: n, to: n, name: p.Port.StrVal})
		}
	}
	return out
}

func portSpan(p *networkingv1.NetworkPolicyPort) span {
	switch {
	case p == nil:
		return span{all: true}
	case p.Port == nil:
		return span{protocol: protocolOf(p), all: true}
	case p.Port.Type == intstr.String:
		return span{protocol: protocolOf(p), name: p.Port.StrVal}
	case p.EndPort != nil:
		return span{protocol: protocolOf(p), from: p.Port.IntVal, to: *p.EndPort}
	default:
		return span{protocol: protocolOf(p), from: p.Port.IntVal, to: p.Port.IntVal}
	}
}

func (d span) contains(c span) bool {
	switch {
	case d.all && d.protocol == "":
		return true
	case c.protocol == "" || d.protocol != c.protocol:
		return false
	case d.all:
		return true
	case c.all:
		return false
	case d.from == 0: // a name, unresolved
		return c.name == d.name
	case c.from == 0: // a name that no number can be proved to cover
		return false
	default:
		return d.from <= c.from && c.to <= d.to
	}
}

// containerPorts are the numbers of a pod's container ports of a name and
// protocol.
func containerPorts(pod *corev1.Pod, name string, protocol corev1.Protocol, inits bool) []int32 {
	containers := pod.Spec.Containers
	if inits {
		containers = slices.Concat(containers, pod.Spec.InitContainers)
	}
	var out []int32
	for _, c := range containers {
		for _, cp := range c.Ports {
			if cp.Name == name && containerProtocol(cp) == protocol {
				out = append(out, cp.ContainerPort)
			}
		}
	}
	return out
}

// Breadth orders flows by how much they open, the peer first: any peer; the
// largest address blocks; any pod in any namespace; pods of other
// namespaces; pods of the policy's namespace. Then the port: any port of any
// protocol, any port of one, a range, one port. Larger is wider.
func (f Flow) Breadth() int {
	return 10*peerBreadth(f.Peer) + portBreadth(f.Port)
}

func peerBreadth(p *networkingv1.NetworkPolicyPeer) int {
	switch {
	case p == nil:
		return 100
	case p.IPBlock != nil:
		pre, err := prefix(p.IPBlock.CIDR)
		if err != nil {
			return 90
		}
		return 90 - 60*pre.Bits()/pre.Addr().BitLen()
	}
	anyPod := p.PodSelector == nil || isEmpty(p.PodSelector)
	switch {
	case p.NamespaceSelector != nil && isEmpty(p.NamespaceSelector):
		return pick(anyPod, 80, 60)
	case p.NamespaceSelector != nil:
		return pick(anyPod, 55, 35)
	default:
		return pick(anyPod, 50, 25)
	}
}

func portBreadth(p *networkingv1.NetworkPolicyPort) int {
	switch {
	case p == nil:
		return 5
	case p.Port == nil:
		return 4
	case p.EndPort != nil:
		return 3
	default:
		return 1
	}
}

func pick(cond bool, yes, no int) int {
	if cond {
		return yes
	}
	return no
}

func isEmpty(s *metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

// Describe says what the flow opens, such as "ingress from any pod in any
// namespace on any port" or "egress to 0.0.0.0/0 on TCP port 443".
func (f Flow) Describe(dir networkingv1.PolicyType) string {
	if dir == networkingv1.PolicyTypeIngress {
		return "ingress from " + describePeer(f.Peer, f.Rule.Namespace) + " " + describePort(f.Port)
	}
	return "egress to " + describePeer(f.Peer, f.Rule.Namespace) + " " + describePort(f.Port)
}

func describePeer(p *networkingv1.NetworkPolicyPeer, ns string) string {
	switch {
	case p == nil:
		return "anywhere"
	case p.IPBlock != nil && len(p.IPBlock.Except) > 0:
		return p.IPBlock.CIDR + " except " + strings.Join(p.IPBlock.Except, ", ")
	case p.IPBlock != nil:
		return p.IPBlock.CIDR
	}
	pods := "any pod"
	if p.PodSelector != nil && !isEmpty(p.PodSelector) {
		pods = "pods with " + metav1.FormatLabelSelector(p.PodSelector)
	}
	switch {
	case p.NamespaceSelector == nil:
		return pods + " in namespace " + ns
	case isEmpty(p.NamespaceSelector):
		return pods + " in any namespace"
	default:
		return pods + " in namespaces with " + metav1.FormatLabelSelector(p.NamespaceSelector)
	}
}

func describePort(p *networkingv1.NetworkPolicyPort) string {
	switch {
	case p == nil:
		return "on any port"
	case p.Port == nil:
		return fmt.Sprintf("on any %s port", protocolOf(p))
	case p.EndPort != nil:
		return fmt.Sprintf("on %s ports %d-%d", protocolOf(p), p.Port.IntVal, *p.EndPort)
	default:
		return fmt.Sprintf("on %s port %s", protocolOf(p), p.Port.String())
	}
}
