package netpol

import (
	"fmt"
	"net/netip"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// The evaluator is checked by what it lets through: in a fixed little world,
// every (peer, port) that reaches the pod under test (ingress) or that it
// reaches (egress) is listed, and each case names exactly those.

type peer struct {
	name string
	Endpoint
	ports []corev1.ContainerPort
}

func tcp(name string, port int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: port, Protocol: corev1.ProtocolTCP}
}

// target is the pod whose traffic the cases judge: records-0 in clinic.
var target = &corev1.Pod{
	ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records-0", Labels: map[string]string{"app": "records", "tier": "db"}},
	Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app",
		Ports: []corev1.ContainerPort{tcp("http", 8080), tcp("metrics", 9090)}}}},
}

var world = []peer{
	{name: "records-1", Endpoint: Endpoint{Namespace: "clinic", NamespaceLabels: map[string]string{"team": "clinic"},
		Labels: map[string]string{"app": "records", "tier": "cache"}, IP: netip.MustParseAddr("10.1.0.11")},
		ports: []corev1.ContainerPort{tcp("http", 8080)}},
	{name: "web", Endpoint: Endpoint{Namespace: "clinic", NamespaceLabels: map[string]string{"team": "clinic"},
		Labels: map[string]string{"app": "web"}, IP: netip.MustParseAddr("10.1.0.20")},
		ports: []corev1.ContainerPort{tcp("http", 80)}},
	{name: "billing-api", Endpoint: Endpoint{Namespace: "billing", NamespaceLabels: map[string]string{"team": "billing"},
		Labels: map[string]string{"app": "api"}, IP: netip.MustParseAddr("10.2.0.5")},
		ports: []corev1.ContainerPort{tcp("http", 8443)}},
	{name: "billing-web", Endpoint: Endpoint{Namespace: "billing", NamespaceLabels: map[string]string{"team": "billing"},
		Labels: map[string]string{"app": "web"}, IP: netip.MustParseAddr("10.2.0.6")}},
	{name: "kube-dns", Endpoint: Endpoint{Namespace: "kube-system",
		Labels: map[string]string{"k8s-app": "kube-dns"}, IP: netip.MustParseAddr("10.3.0.10")},
		ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}}},
	{name: "ext-a", Endpoint: Endpoint{IP: netip.MustParseAddr("203.0.113.7")}},
	{name: "ext-b", Endpoint: Endpoint{IP: netip.MustParseAddr("203.0.113.200")}},
	{name: "ext-c", Endpoint: Endpoint{IP: netip.MustParseAddr("198.51.100.9")}},
}

type probe struct {
	protocol corev1.Protocol
	port     int32
}

func (p probe) String() string { return fmt.Sprintf("%s/%d", p.protocol, p.port) }

var probes = []probe{{corev1.ProtocolTCP, 80}, {corev1.ProtocolTCP, 8080}, {corev1.ProtocolTCP, 8443}, {corev1.ProtocolUDP, 53}}

// admitted lists "peer PROTO/port" for every connection the direction lets
// through: for ingress, from the peer to the target (named ports resolved on
// the target); for egress, from the target to the peer (resolved on the peer).
func admitted(policies []networkingv1.NetworkPolicy, dir networkingv1.PolicyType) []string {
	ev := Evaluate(target, policies)
	var out []string
	for _, p := range world {
		for _, pr := range probes {
			var ok bool
			if dir == networkingv1.PolicyTypeIngress {
				ok = ev.Ingress.Allows(p.Endpoint, target.Spec.Containers[0].Ports, pr.protocol, pr.port)
			} else {
				ok = ev.Egress.Allows(p.Endpoint, p.ports, pr.protocol, pr.port)
			}
			if ok {
				out = append(out, p.name+" "+pr.String())
			}
		}
	}
	return out
}

// on lists a peer on the given probes ("TCP/8080"), or on every probe.
func on(name string, at ...string) []string {
	if len(at) == 0 {
		for _, p := range probes {
			at = append(at, p.String())
		}
	}
	out := make([]string, 0, len(at))
	for _, a := range at {
		out = append(out, name+" "+a)
	}
	return out
}

// every lists each peer on every probe.
func every(names ...string) []string {
	out := make([]string, 0, len(names)*len(probes))
	for _, n := range names {
		out = append(out, on(n)...)
	}
	return out
}

var everyone = []string{"records-1", "web", "billing-api", "billing-web", "kube-dns", "ext-a", "ext-b", "ext-c"}

func sel(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func policy(name string, spec networkingv1.NetworkPolicySpec) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name}, Spec: spec}
}

func port(protocol corev1.Protocol, p intstr.IntOrString) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: &protocol, Port: &p}
}

var (
	ingressOnly = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressOnly  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	both        = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	records     = *sel("app", "records")
)

func fromPeers(peers ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyIngressRule {
	return []networkingv1.NetworkPolicyIngressRule{{From: peers}}
}

func TestEvaluateFollowsTheAPI(t *testing.T) {
	cases := []struct {
		name     string
		policies []networkingv1.NetworkPolicy
		ingress  []string // nil with isolated false: open
		egress   []string
		// isolated says which directions some policy isolates.
		isolatedIn, isolatedOut bool
	}{{
		name:    "no policy: open both ways",
		ingress: every(everyone...), egress: every(everyone...),
	}, {
		name:       "without policyTypes, a policy with no rules isolates ingress only",
		policies:   []networkingv1.NetworkPolicy{policy("deny", networkingv1.NetworkPolicySpec{PodSelector: records})},
		isolatedIn: true, egress: every(everyone...),
	}, {
		name: "without policyTypes, egress rules make it isolate egress as well",
		policies: []networkingv1.NetworkPolicy{policy("dns", networkingv1.NetworkPolicySpec{PodSelector: records,
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: sel(corev1.LabelMetadataName, "kube-system"), PodSelector: sel("k8s-app", "kube-dns")}}}}})},
		isolatedIn: true, isolatedOut: true, egress: on("kube-dns"),
	}, {
		name: "policyTypes Egress alone ignores the policy's ingress rules",
		policies: []networkingv1.NetworkPolicy{policy("out", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: egressOnly,
			Ingress: fromPeers(networkingv1.NetworkPolicyPeer{PodSelector: sel("app", "web")})})},
		isolatedOut: true, ingress: every(everyone...),
	}, {
		name: "an empty podSelector selects every pod of its namespace; a policy of another namespace selects none",
		policies: []networkingv1.NetworkPolicy{
			policy("deny-all", networkingv1.NetworkPolicySpec{PolicyTypes: ingressOnly}),
			{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "deny-all"}, Spec: networkingv1.NetworkPolicySpec{PolicyTypes: egressOnly}},
		},
		isolatedIn: true, egress: every(everyone...),
	}, {
		name:     "a policy whose podSelector does not match the pod does nothing for it",
		policies: []networkingv1.NetworkPolicy{policy("web", networkingv1.NetworkPolicySpec{PodSelector: *sel("app", "web"), PolicyTypes: both})},
		ingress:  every(everyone...), egress: every(everyone...),
	}, {
		name: "a policy being deleted is ignored",
		policies: []networkingv1.NetworkPolicy{{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "going",
			DeletionTimestamp: ptr.To(metav1.Now()), Finalizers: []string{"example.com/hold"}},
			Spec: networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: both}}},
		ingress: every(everyone...), egress: every(everyone...),
	}, {
		name: "a rule with no from admits every source, outside the cluster too, on every port",
		policies: []networkingv1.NetworkPolicy{policy("allow-all", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: both,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{}}})},
		isolatedIn: true, isolatedOut: true, ingress: every(everyone...),
	}, {
		name: "a rule with no to admits every destination",
		policies: []networkingv1.NetworkPolicy{policy("egress-all", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: both,
			Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolUDP, intstr.FromInt32(53))}}}})},
		isolatedIn: true, isolatedOut: true,
		egress: []string{"records-1 UDP/53", "web UDP/53", "billing-api UDP/53", "billing-web UDP/53", "kube-dns UDP/53",
			"ext-a UDP/53", "ext-b UDP/53", "ext-c UDP/53"},
	}, {
		name: "an empty podSelector peer is every pod of the policy's namespace, and no address",
		policies: []networkingv1.NetworkPolicy{policy("same-ns", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: ingressOnly,
			Ingress: fromPeers(networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}})})},
		isolatedIn: true, ingress: every("records-1", "web"), egress: every(everyone...),
	}, {
		name: "an empty namespaceSelector peer is every pod of every namespace",
		policies: []networkingv1.NetworkPolicy{policy("all-pods", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: ingressOnly,
			Ingress: fromPeers(networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}})})},
		isolatedIn: true, ingress: every("records-1", "web", "billing-api", "billing-web", "kube-dns"), egress: every(everyone...),
	}, {
		name: "namespaceSelector and podSelector in one peer: those pods of those namespaces",
		policies: []networkingv1.NetworkPolicy{policy("and", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: ingressOnly,
			Ingress: fromPeers(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("team", "billing"), PodSelector: sel("app", "web")})})},
		isolatedIn: true, ingress: every("billing-web"), egress: every(everyone...),
	}, {
		name: "the same selectors as two peers: every pod of those namespaces, or those pods of the policy's namespace",
		policies: []networkingv1.NetworkPolicy{policy("or", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: ingressOnly,
			Ingress: fromPeers(networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("team", "billing")},
				networkingv1.NetworkPolicyPeer{PodSelector: sel("app", "web")})})},
		isolatedIn: true, ingress: every("web", "billing-api", "billing-web"), egress: every(everyone...),
	}, {
		name: "a namespace is selected by the name label the apiserver sets",
		policies: []networkingv1.NetworkPolicy{policy("dns", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: egressOnly,
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel(corev1.LabelMetadataName, "kube-system")}}}}})},
		isolatedOut: true, ingress: every(everyone...), egress: on("kube-dns"),
	}, {
		name: "an ipBlock with an exception",
		policies: []networkingv1.NetworkPolicy{policy("ext", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: egressOnly,
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{
				IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}}}}}})},
		isolatedOut: true, ingress: every(everyone...), egress: on("ext-a"),
	}, {
		name: "a named port is the destination's port of that name: on ingress the pod's own",
		policies: []networkingv1.NetworkPolicy{policy("http", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: ingressOnly,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{port(corev1.ProtocolTCP, intstr.FromString("http"))}}}})},
		isolatedIn: true, egress: every(everyone...),
		ingress: []string{"records-1 TCP/8080", "web TCP/8080", "billing-api TCP/8080", "billing-web TCP/8080", "kube-dns TCP/8080",
			"ext-a TCP/8080", "ext-b TCP/8080", "ext-c TCP/8080"},
	}, {
		name: "on egress each peer's port of that name, of that protocol; a peer without it is not reached",
		policies: []networkingv1.NetworkPolicy{policy("http", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: egressOnly,
			Egress: []networkingv1.NetworkPolicyEgressRule{{Ports: []networkingv1.NetworkPolicyPort{
				port(corev1.ProtocolTCP, intstr.FromString("http")), port(corev1.ProtocolTCP, intstr.FromString("dns"))}}}})},
		isolatedOut: true, ingress: every(everyone...),
		egress: []string{"records-1 TCP/8080", "web TCP/80", "billing-api TCP/8443"},
	}, {
		name: "endPort makes a range; a port with no number is every port of its protocol",
		policies: []networkingv1.NetworkPolicy{policy("range", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: ingressOnly,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "web")}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt32(8000)), EndPort: ptr.To[int32](8100)},
					{Protocol: ptr.To(corev1.ProtocolUDP)}},
			}}})},
		isolatedIn: true, ingress: on("web", "TCP/8080", "UDP/53"), egress: every(everyone...),
	}, {
		name: "policies add up: the union of every selecting policy's rules",
		policies: []networkingv1.NetworkPolicy{
			policy("deny", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: both}),
			policy("web", networkingv1.NetworkPolicySpec{PodSelector: *sel("tier", "db"), PolicyTypes: ingressOnly,
				Ingress: fromPeers(networkingv1.NetworkPolicyPeer{PodSelector: sel("app", "web")})}),
			policy("ext", networkingv1.NetworkPolicySpec{PodSelector: records, PolicyTypes: ingressOnly,
				Ingress: fromPeers(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "198.51.100.0/24"}})}),
		},
		isolatedIn: true, isolatedOut: true, ingress: every("web", "ext-c"),
	}}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ev := Evaluate(target, tc.policies)
			g.Expect(ev.Ingress.Isolated).To(Equal(tc.isolatedIn))
			g.Expect(ev.Egress.Isolated).To(Equal(tc.isolatedOut))
			g.Expect(admitted(tc.policies, networkingv1.PolicyTypeIngress)).To(ConsistOf(tc.ingress))
			g.Expect(admitted(tc.policies, networkingv1.PolicyTypeEgress)).To(ConsistOf(tc.egress))
		})
	}
}

func TestEvaluateOrdersRulesByPolicyName(t *testing.T) {
	g := NewWithT(t)
	rule := func(app string) []networkingv1.NetworkPolicyIngressRule {
		return fromPeers(networkingv1.NetworkPolicyPeer{PodSelector: sel("app", app)})
	}
	ev := Evaluate(target, []networkingv1.NetworkPolicy{
		policy("b", networkingv1.NetworkPolicySpec{PodSelector: records, Ingress: rule("b")}),
		policy("a", networkingv1.NetworkPolicySpec{PodSelector: records, Ingress: append(rule("a1"), rule("a2")...)}),
	})
	g.Expect(ev.Ingress.Rules).To(Equal([]Rule{
		{Policy: "clinic/a", Namespace: "clinic", Peers: rule("a1")[0].From},
		{Policy: "clinic/a", Namespace: "clinic", Peers: rule("a2")[0].From},
		{Policy: "clinic/b", Namespace: "clinic", Peers: rule("b")[0].From},
	}))
	g.Expect(ev.Egress).To(Equal(Direction{}))
}
