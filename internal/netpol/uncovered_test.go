package netpol

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// rule is a rule of a policy in clinic.
func rule(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) Rule {
	return Rule{Policy: "clinic/p", Namespace: "clinic", Peers: peers, Ports: ports}
}

func peers(p ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyPeer { return p }

func pods(s *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{PodSelector: s}
}

func nsPods(ns, pod *metav1.LabelSelector) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{NamespaceSelector: ns, PodSelector: pod}
}

func block(cidr string, except ...string) networkingv1.NetworkPolicyPeer {
	return networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: cidr, Except: except}}
}

func expr(key string, op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: key, Operator: op, Values: values}}}
}

func tcpPort(p intstr.IntOrString) networkingv1.NetworkPolicyPort {
	return port(corev1.ProtocolTCP, p)
}

func tcpRange(from, to int32) networkingv1.NetworkPolicyPort {
	p := tcpPort(intstr.FromInt32(from))
	p.EndPort = &to
	return p
}

// dns is the declared DNS peer.
var dns = nsPods(sel(corev1.LabelMetadataName, "kube-system"), sel("k8s-app", "kube-dns"))

func TestUncoveredIsSoundAndNamesWhatIsWider(t *testing.T) {
	// sidecar has a port only in an init container, which not every plugin resolves.
	withSidecar := target.DeepCopy()
	withSidecar.Spec.InitContainers = []corev1.Container{{Name: "proxy", Ports: []corev1.ContainerPort{tcp("proxy", 15001)}}}

	cases := []struct {
		name      string
		declared  []Rule
		candidate Rule
		dst       *corev1.Pod
		ingress   bool
		want      []string // the uncovered flows, described
	}{{
		name:      "an identical rule is covered",
		declared:  []Rule{rule(peers(pods(sel("app", "records"))))},
		candidate: rule(peers(pods(sel("app", "records")))),
	}, {
		name:      "the declared DNS rule covers itself",
		declared:  []Rule{rule(peers(dns), port(corev1.ProtocolUDP, intstr.FromInt32(53)), tcpPort(intstr.FromInt32(53)))},
		candidate: rule(peers(dns), port(corev1.ProtocolUDP, intstr.FromInt32(53))),
	}, {
		name:      "a rule with no peers and no ports is everything",
		declared:  []Rule{rule(peers(block("0.0.0.0/0"), block("::/0"), nsPods(&metav1.LabelSelector{}, nil)))},
		candidate: rule(nil),
		ingress:   true,
		want:      []string{"ingress from anywhere on any port"},
	}, {
		name:      "nothing declared: any pod in any namespace is wider",
		candidate: rule(peers(nsPods(&metav1.LabelSelector{}, nil))),
		ingress:   true,
		want:      []string{"ingress from any pod in any namespace on any port"},
	}, {
		name:      "a narrower selector (more matchLabels) is covered, a broader one is not",
		declared:  []Rule{rule(peers(pods(sel("app", "web"))))},
		candidate: rule(peers(pods(sel("app", "web", "tier", "front")), pods(sel("tier", "front")), pods(&metav1.LabelSelector{}))),
		want: []string{"egress to pods with tier=front in namespace clinic on any port",
			"egress to any pod in namespace clinic on any port"},
	}, {
		name: "matchExpressions: In within In, In outside NotIn, NotIn within a smaller NotIn, DoesNotExist within NotIn, In within Exists",
		declared: []Rule{rule(peers(pods(expr("app", metav1.LabelSelectorOpIn, "web", "api")), pods(expr("env", metav1.LabelSelectorOpNotIn, "prod")),
			pods(expr("team", metav1.LabelSelectorOpExists))))},
		candidate: rule(peers(pods(sel("app", "web")), pods(sel("env", "dev")), pods(expr("env", metav1.LabelSelectorOpNotIn, "prod", "stage")),
			pods(expr("env", metav1.LabelSelectorOpDoesNotExist)), pods(sel("team", "a")),
			pods(expr("app", metav1.LabelSelectorOpIn, "web", "db")), pods(expr("env", metav1.LabelSelectorOpExists)))),
		want: []string{"egress to pods with app in (db,web) in namespace clinic on any port",
			"egress to pods with env in namespace clinic on any port"},
	}, {
		name:      "no namespaceSelector is the policy's namespace, which its name label selects as well, both ways",
		declared:  []Rule{rule(peers(pods(sel("app", "web")), nsPods(sel(corev1.LabelMetadataName, "clinic"), sel("app", "api"))))},
		candidate: rule(peers(nsPods(sel(corev1.LabelMetadataName, "clinic"), sel("app", "web")), pods(sel("app", "api")))),
	}, {
		name:     "another namespace, or namespaces by a label phiguard cannot read, are not the policy's namespace",
		declared: []Rule{rule(peers(pods(sel("app", "web"))))},
		candidate: rule(peers(nsPods(sel(corev1.LabelMetadataName, "billing"), sel("app", "web")),
			nsPods(sel("team", "clinic"), sel("app", "web")))),
		want: []string{"egress to pods with app=web in namespaces with kubernetes.io/metadata.name=billing on any port",
			"egress to pods with app=web in namespaces with team=clinic on any port"},
	}, {
		name:      "a namespaceSelector alone is every pod there: covered by the same namespaces with no podSelector or an empty one",
		declared:  []Rule{rule(peers(nsPods(sel("team", "billing"), &metav1.LabelSelector{})))},
		candidate: rule(peers(nsPods(sel("team", "billing"), nil), nsPods(sel("team", "billing"), sel("app", "api")))),
	}, {
		name:      "selectors are not covered by an ipBlock, even 0.0.0.0/0; nor is a block of the other family",
		declared:  []Rule{rule(peers(block("0.0.0.0/0")))},
		candidate: rule(peers(pods(sel("app", "web")), block("10.0.0.0/8"), block("2001:db8::/32"))),
		want:      []string{"egress to pods with app=web in namespace clinic on any port", "egress to 2001:db8::/32 on any port"},
	}, {
		name:      "an ipBlock is not covered by selectors, even every pod of every namespace",
		declared:  []Rule{rule(peers(nsPods(&metav1.LabelSelector{}, nil)))},
		candidate: rule(peers(pods(sel("app", "web")), block("10.0.0.0/8"))),
		want:      []string{"egress to 10.0.0.0/8 on any port"},
	}, {
		name:     "an ipBlock is covered by one that contains it, minus the exceptions it shares",
		declared: []Rule{rule(peers(block("203.0.113.0/24", "203.0.113.128/26")))},
		candidate: rule(peers(block("203.0.113.0/25"), block("203.0.113.128/25", "203.0.113.128/26"),
			block("203.0.113.128/25", "203.0.113.128/27"), block("203.0.113.0/23"), block("203.0.113.128/26"))),
		want: []string{"egress to 203.0.113.128/25 except 203.0.113.128/27 on any port", "egress to 203.0.113.0/23 on any port",
			"egress to 203.0.113.128/26 on any port"},
	}, {
		name:      "ports: a range covers the ports and ranges inside it, not one that sticks out, nor another protocol",
		declared:  []Rule{rule(nil, tcpRange(8000, 8100)), rule(peers(pods(sel("app", "web"))))},
		candidate: rule(nil, tcpPort(intstr.FromInt32(8080)), tcpRange(8050, 8100), tcpRange(7999, 8000), port(corev1.ProtocolUDP, intstr.FromInt32(8080))),
		want:      []string{"egress to anywhere on TCP ports 7999-8000", "egress to anywhere on UDP port 8080"},
	}, {
		name:      "ports: a port with no number is every port of its protocol, TCP when unset",
		declared:  []Rule{rule(peers(pods(sel("app", "web"))), networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP)}, port(corev1.ProtocolUDP, intstr.FromInt32(53)))},
		candidate: rule(peers(pods(sel("app", "web"))), networkingv1.NetworkPolicyPort{}, networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolSCTP)}),
		want:      []string{"egress to pods with app=web in namespace clinic on any SCTP port"},
	}, {
		name:      "ports: no ports at all, against a protocol's every port",
		declared:  []Rule{rule(nil, networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP)})},
		candidate: rule(nil),
		want:      []string{"egress to anywhere on any port"},
	}, {
		name:      "egress: a named port is covered by the same name and protocol only",
		declared:  []Rule{rule(nil, tcpPort(intstr.FromString("http")), tcpPort(intstr.FromInt32(8080)))},
		candidate: rule(nil, tcpPort(intstr.FromString("http")), port(corev1.ProtocolUDP, intstr.FromString("http")), tcpPort(intstr.FromString("https"))),
		want:      []string{"egress to anywhere on UDP port http", "egress to anywhere on TCP port https"},
	}, {
		name:     "ingress: named ports resolve on the pod, init containers counted for what is opened but not for what is declared",
		declared: []Rule{rule(nil, tcpPort(intstr.FromInt32(8080)), tcpPort(intstr.FromString("metrics")), tcpPort(intstr.FromString("proxy")))},
		candidate: rule(nil, tcpPort(intstr.FromString("http")), tcpPort(intstr.FromInt32(9090)), tcpPort(intstr.FromString("missing")),
			tcpPort(intstr.FromString("proxy")), tcpPort(intstr.FromInt32(15001))),
		dst: withSidecar, ingress: true,
		want: []string{"ingress from anywhere on TCP port 15001"},
	}, {
		name:      "a peer and a port must be covered by one declared rule",
		declared:  []Rule{rule(peers(pods(sel("app", "web"))), tcpPort(intstr.FromInt32(80))), rule(peers(pods(sel("app", "api"))), tcpPort(intstr.FromInt32(443)))},
		candidate: rule(peers(pods(sel("app", "web"))), tcpPort(intstr.FromInt32(80)), tcpPort(intstr.FromInt32(443))),
		want:      []string{"egress to pods with app=web in namespace clinic on TCP port 443"},
	}}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			dir := networkingv1.PolicyTypeEgress
			if tc.ingress {
				dir = networkingv1.PolicyTypeIngress
			}
			var got []string
			for _, f := range Uncovered(tc.candidate, tc.declared, tc.dst) {
				g.Expect(f.Rule).To(Equal(tc.candidate))
				got = append(got, f.Describe(dir))
			}
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

func TestUncoveredNeverCoversWhatItAdmitsBeyondTheDeclared(t *testing.T) {
	// Whatever Uncovered calls covered must be admitted by the declared rules:
	// checked connection by connection in the little world, for ingress to
	// the target and egress from it.
	declared := []Rule{
		rule(peers(pods(sel("app", "records")))),
		rule(peers(dns), port(corev1.ProtocolUDP, intstr.FromInt32(53))),
		rule(peers(nsPods(sel("team", "billing"), sel("app", "api"))), tcpPort(intstr.FromString("http"))),
		rule(peers(block("203.0.113.0/24", "203.0.113.128/25")), tcpRange(8000, 8500)),
	}
	candidates := []Rule{
		rule(peers(pods(sel("app", "records", "tier", "cache")))),
		rule(peers(nsPods(sel(corev1.LabelMetadataName, "kube-system"), sel("k8s-app", "kube-dns"))), port(corev1.ProtocolUDP, intstr.FromInt32(53))),
		rule(peers(nsPods(sel("team", "billing"), sel("app", "api"))), tcpPort(intstr.FromString("http"))),
		rule(peers(block("203.0.113.0/25")), tcpPort(intstr.FromInt32(8080)), tcpPort(intstr.FromInt32(8443))),
		rule(peers(nsPods(&metav1.LabelSelector{}, nil))),
		rule(nil, tcpPort(intstr.FromInt32(80))),
		rule(peers(block("203.0.113.0/24")), tcpPort(intstr.FromInt32(8080))),
	}
	for _, dir := range []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress} {
		for i, c := range candidates {
			var dst *corev1.Pod
			if dir == networkingv1.PolicyTypeIngress {
				dst = target
			}
			if len(Uncovered(c, declared, dst)) > 0 {
				continue
			}
			for _, p := range world {
				for _, pr := range probes {
					ports := p.ports
					if dir == networkingv1.PolicyTypeIngress {
						ports = target.Spec.Containers[0].Ports
					}
					admitted := Direction{Isolated: true, Rules: []Rule{c}}.Allows(p.Endpoint, ports, pr.protocol, pr.port)
					allowed := Direction{Isolated: true, Rules: declared}.Allows(p.Endpoint, ports, pr.protocol, pr.port)
					if admitted && !allowed {
						t.Errorf("%s candidate %d is called covered but admits %s %s, which the declared rules do not", dir, i, p.name, pr)
					}
				}
			}
		}
	}
}

func TestBreadthOrdersTheWidestFirst(t *testing.T) {
	g := NewWithT(t)
	flows := []Flow{
		{Peer: nil},
		{Peer: &networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}},
		{Peer: &networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}}},
		{Peer: &networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: sel("app", "web")}},
		{Peer: &networkingv1.NetworkPolicyPeer{NamespaceSelector: sel("team", "billing")}},
		{Peer: &networkingv1.NetworkPolicyPeer{PodSelector: &metav1.LabelSelector{}}},
		{Peer: &networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/24"}}},
		{Peer: &networkingv1.NetworkPolicyPeer{PodSelector: sel("app", "web")}},
	}
	for i := 1; i < len(flows); i++ {
		g.Expect(flows[i-1].Breadth()).To(BeNumerically(">", flows[i].Breadth()), "flow %d", i)
	}
	web := &networkingv1.NetworkPolicyPeer{PodSelector: sel("app", "web")}
	anyPort := Flow{Peer: web}
	anyTCP := Flow{Peer: web, Port: &networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP)}}
	aRange := Flow{Peer: web, Port: ptr.To(tcpRange(8000, 8100))}
	one := Flow{Peer: web, Port: ptr.To(tcpPort(intstr.FromInt32(443)))}
	g.Expect([]int{anyPort.Breadth(), anyTCP.Breadth(), aRange.Breadth(), one.Breadth()}).To(BeEquivalentTo([]int{255, 254, 253, 251}))
}
