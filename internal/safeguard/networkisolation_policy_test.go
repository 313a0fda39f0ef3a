package safeguard

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// This file checks the generated NetworkPolicy by what it lets through, not by
// its shape: a small evaluator of NetworkPolicy semantics decides, for every
// (source, destination, port) in a fixed little world, whether a connection
// is allowed, and each case lists exactly the connections that must be.

// endpoint is a pod (namespace set) or an address outside the cluster.
type endpoint struct {
	name      string
	namespace string
	labels    map[string]string
	ip        netip.Addr
	ports     []corev1.ContainerPort
}

func (e endpoint) isPod() bool { return e.namespace != "" }

var namespaceLabels = map[string]map[string]string{
	"clinic":      {corev1.LabelMetadataName: "clinic", "team": "clinic"},
	"billing":     {corev1.LabelMetadataName: "billing", "team": "billing"},
	"kube-system": {corev1.LabelMetadataName: "kube-system"},
}

func tcp(name string, port int32) corev1.ContainerPort {
	return corev1.ContainerPort{Name: name, ContainerPort: port, Protocol: corev1.ProtocolTCP}
}

var world = []endpoint{
	{name: "records-0", namespace: "clinic", labels: map[string]string{"app": "records"}, ip: netip.MustParseAddr("10.1.0.10"),
		ports: []corev1.ContainerPort{tcp("http", 8080)}},
	{name: "records-1", namespace: "clinic", labels: map[string]string{"app": "records"}, ip: netip.MustParseAddr("10.1.0.11"),
		ports: []corev1.ContainerPort{tcp("http", 8080)}},
	{name: "web", namespace: "clinic", labels: map[string]string{"app": "web"}, ip: netip.MustParseAddr("10.1.0.20"),
		ports: []corev1.ContainerPort{tcp("http", 80)}},
	{name: "billing-api", namespace: "billing", labels: map[string]string{"app": "api"}, ip: netip.MustParseAddr("10.2.0.5"),
		ports: []corev1.ContainerPort{tcp("http", 8443)}},
	{name: "billing-batch", namespace: "billing", labels: map[string]string{"app": "batch"}, ip: netip.MustParseAddr("10.2.0.6")},
	{name: "kube-dns", namespace: "kube-system", labels: map[string]string{"k8s-app": "kube-dns"}, ip: netip.MustParseAddr("10.3.0.10"),
		ports: []corev1.ContainerPort{{Name: "dns", ContainerPort: 53, Protocol: corev1.ProtocolUDP}, tcp("dns-tcp", 53)}},
	{name: "ext-a", ip: netip.MustParseAddr("203.0.113.7")},
	{name: "ext-b", ip: netip.MustParseAddr("203.0.113.200")},
	{name: "ext-c", ip: netip.MustParseAddr("198.51.100.9")},
}

type probe struct {
	protocol corev1.Protocol
	port     int32
}

func (p probe) String() string { return fmt.Sprintf("%s/%d", p.protocol, p.port) }

var probes = []probe{
	{corev1.ProtocolTCP, 8080}, {corev1.ProtocolTCP, 8443}, {corev1.ProtocolTCP, 443},
	{corev1.ProtocolUDP, 53}, {corev1.ProtocolTCP, 53},
}

// allowed decides a connection: the source's egress and the destination's
// ingress must both let it through. A pod no policy selects for a direction
// is open in that direction; a selected one only lets through what a rule of
// a selecting policy allows.
func allowed(policies []networkingv1.NetworkPolicy, src, dst endpoint, p probe) bool {
	return directionAllows(policies, src, networkingv1.PolicyTypeEgress, dst, dst, p) &&
		directionAllows(policies, dst, networkingv1.PolicyTypeIngress, src, dst, p)
}

// directionAllows decides one direction at pod: peer is the other end, and
// named ports are resolved on dst.
func directionAllows(policies []networkingv1.NetworkPolicy, pod endpoint, dir networkingv1.PolicyType, peer, dst endpoint, p probe) bool {
	if !pod.isPod() {
		return true
	}
	selected := false
	for i := range policies {
		np := &policies[i]
		if np.Namespace != pod.namespace || !selects(&np.Spec.PodSelector, pod.labels) || !slices.Contains(np.Spec.PolicyTypes, dir) {
			continue
		}
		selected = true
		if dir == networkingv1.PolicyTypeIngress {
			for _, r := range np.Spec.Ingress {
				if peersMatch(r.From, peer, np.Namespace) && portsMatch(r.Ports, dst, p) {
					return true
				}
			}
			continue
		}
		for _, r := range np.Spec.Egress {
			if peersMatch(r.To, peer, np.Namespace) && portsMatch(r.Ports, dst, p) {
				return true
			}
		}
	}
	return !selected
}

func peersMatch(peers []networkingv1.NetworkPolicyPeer, e endpoint, policyNamespace string) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		if peer.IPBlock != nil {
			if inBlock(peer.IPBlock, e.ip) {
				return true
			}
			continue
		}
		if !e.isPod() {
			continue
		}
		nsOK := e.namespace == policyNamespace
		if peer.NamespaceSelector != nil {
			nsOK = selects(peer.NamespaceSelector, namespaceLabels[e.namespace])
		}
		if nsOK && (peer.PodSelector == nil || selects(peer.PodSelector, e.labels)) {
			return true
		}
	}
	return false
}

func inBlock(b *networkingv1.IPBlock, ip netip.Addr) bool {
	if !netip.MustParsePrefix(b.CIDR).Contains(ip) {
		return false
	}
	for _, except := range b.Except {
		if netip.MustParsePrefix(except).Contains(ip) {
			return false
		}
	}
	return true
}

func portsMatch(ports []networkingv1.NetworkPolicyPort, dst endpoint, p probe) bool {
	if len(ports) == 0 {
		return true
	}
	for _, port := range ports {
		if ptr.Deref(port.Protocol, corev1.ProtocolTCP) != p.protocol {
			continue
		}
		switch {
		case port.Port == nil:
			return true
		case port.Port.Type == intstr.Int && port.EndPort != nil:
			if p.port >= port.Port.IntVal && p.port <= *port.EndPort {
				return true
			}
		case port.Port.Type == intstr.Int:
			if p.port == port.Port.IntVal {
				return true
			}
		default: // a named port means the destination pod's container port of that name
			for _, cp := range dst.ports {
				if cp.Name == port.Port.StrVal && cp.Protocol == p.protocol && cp.ContainerPort == p.port {
					return true
				}
			}
		}
	}
	return false
}

func selects(s *metav1.LabelSelector, set map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		panic(err)
	}
	return sel.Matches(labels.Set(set))
}

// connections lists every allowed connection that involves a pod of the
// workload (app=records in clinic), as "src->dst PROTO/port".
func connections(policies []networkingv1.NetworkPolicy) []string {
	isRecords := func(e endpoint) bool { return e.namespace == "clinic" && e.labels["app"] == "records" }
	var out []string
	for _, src := range world {
		for _, dst := range world {
			if src.name == dst.name || (!isRecords(src) && !isRecords(dst)) {
				continue
			}
			for _, p := range probes {
				if allowed(policies, src, dst, p) {
					out = append(out, fmt.Sprintf("%s->%s %s", src.name, dst.name, p))
				}
			}
		}
	}
	return out
}

// conn lists a connection on the given probes ("TCP/8080"), or on all probes.
func conn(src, dst string, on ...string) []string {
	if len(on) == 0 {
		for _, p := range probes {
			on = append(on, p.String())
		}
	}
	out := make([]string, 0, len(on))
	for _, p := range on {
		out = append(out, fmt.Sprintf("%s->%s %s", src, dst, p))
	}
	return out
}

// toRecords lists a connection from src to both records pods.
func toRecords(src string, on ...string) []string {
	return append(conn(src, "records-0", on...), conn(src, "records-1", on...)...)
}

// fromRecords lists a connection from both records pods to dst.
func fromRecords(dst string, on ...string) []string {
	return append(conn("records-0", dst, on...), conn("records-1", dst, on...)...)
}

func join(parts ...[]string) []string { return slices.Concat(parts...) }

func selector(kv ...string) *metav1.LabelSelector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return &metav1.LabelSelector{MatchLabels: m}
}

func tcpPort(p intstr.IntOrString) phiguardv1alpha1.NetworkPort {
	return phiguardv1alpha1.NetworkPort{Protocol: corev1.ProtocolTCP, Port: &p}
}

// generated renders the desired policy and decodes it as the apiserver stores it.
func generated(t *testing.T, spec phiguardv1alpha1.NetworkIsolationSpec) networkingv1.NetworkPolicy {
	t.Helper()
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Name: "records", Namespace: "clinic", UID: "uid-1"},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: *selector("app", "records")},
	}
	effective, _, err := New(Options{}).Effective(&phiguardv1alpha1.SafeguardSettings{NetworkIsolation: &spec}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(DesiredNetworkPolicy(w, effective.NetworkIsolation))
	if err != nil {
		t.Fatal(err)
	}
	var np networkingv1.NetworkPolicy
	if err := json.Unmarshal(data, &np); err != nil {
		t.Fatal(err)
	}
	return np
}

func TestGeneratedPolicyAllowsExactlyWhatIsDeclared(t *testing.T) {
	off := ptr.To(false)
	records := []string{"records-0", "records-1"}
	sameWorkload := join(conn("records-0", "records-1"), conn("records-1", "records-0"))
	dns := fromRecords("kube-dns", "UDP/53", "TCP/53")

	cases := []struct {
		name string
		spec phiguardv1alpha1.NetworkIsolationSpec
		want []string
	}{{
		name: "defaults: the workload's own pods and DNS, nothing else",
		want: join(sameWorkload, dns),
	}, {
		name: "everything off: complete isolation",
		spec: phiguardv1alpha1.NetworkIsolationSpec{AllowSameWorkload: off, AllowDNS: off},
		want: nil,
	}, {
		name: "ingress from pods of the namespace on a named port, resolved on the destination",
		spec: phiguardv1alpha1.NetworkIsolationSpec{AllowSameWorkload: off, AllowDNS: off,
			Ingress: []phiguardv1alpha1.NetworkIngressRule{{
				From:  []phiguardv1alpha1.NetworkPeer{{PodSelector: selector("app", "web")}},
				Ports: []phiguardv1alpha1.NetworkPort{tcpPort(intstr.FromString("http"))},
			}}},
		want: toRecords("web", "TCP/8080"),
	}, {
		name: "ingress from every pod of another namespace, on every port",
		spec: phiguardv1alpha1.NetworkIsolationSpec{AllowSameWorkload: off, AllowDNS: off,
			Ingress: []phiguardv1alpha1.NetworkIngressRule{{
				From: []phiguardv1alpha1.NetworkPeer{{NamespaceSelector: selector("team", "billing")}},
			}}},
		want: join(toRecords("billing-api"), toRecords("billing-batch")),
	}, {
		name: "ingress from some pods of another namespace, on a port range",
		spec: phiguardv1alpha1.NetworkIsolationSpec{AllowSameWorkload: off, AllowDNS: off,
			Ingress: []phiguardv1alpha1.NetworkIngressRule{{
				From: []phiguardv1alpha1.NetworkPeer{{NamespaceSelector: selector("team", "billing"), PodSelector: selector("app", "api")}},
				Ports: []phiguardv1alpha1.NetworkPort{{Protocol: corev1.ProtocolTCP, Port: ptr.To(intstr.FromInt32(8000)),
					EndPort: ptr.To[int32](8100)}},
			}}},
		want: toRecords("billing-api", "TCP/8080"),
	}, {
		name: "egress to an IP block with an exception",
		spec: phiguardv1alpha1.NetworkIsolationSpec{AllowSameWorkload: off, AllowDNS: off,
			Egress: []phiguardv1alpha1.NetworkEgressRule{{
				To:    []phiguardv1alpha1.NetworkPeer{{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}}},
				Ports: []phiguardv1alpha1.NetworkPort{tcpPort(intstr.FromInt32(443))},
			}}},
		want: fromRecords("ext-a", "TCP/443"),
	}, {
		name: "egress to a pod of another namespace on its named port",
		spec: phiguardv1alpha1.NetworkIsolationSpec{AllowSameWorkload: off, AllowDNS: off,
			Egress: []phiguardv1alpha1.NetworkEgressRule{{
				To:    []phiguardv1alpha1.NetworkPeer{{NamespaceSelector: selector("team", "billing"), PodSelector: selector("app", "api")}},
				Ports: []phiguardv1alpha1.NetworkPort{tcpPort(intstr.FromString("http"))},
			}}},
		want: fromRecords("billing-api", "TCP/8443"),
	}, {
		name: "egress to every namespace over one protocol; the workload's own pods stay closed",
		spec: phiguardv1alpha1.NetworkIsolationSpec{AllowSameWorkload: off, AllowDNS: off,
			Egress: []phiguardv1alpha1.NetworkEgressRule{{
				To:    []phiguardv1alpha1.NetworkPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
				Ports: []phiguardv1alpha1.NetworkPort{{Protocol: corev1.ProtocolUDP}},
			}}},
		want: join(fromRecords("web", "UDP/53"), fromRecords("billing-api", "UDP/53"),
			fromRecords("billing-batch", "UDP/53"), fromRecords("kube-dns", "UDP/53")),
	}, {
		name: "defaults plus ingress from an outside range",
		spec: phiguardv1alpha1.NetworkIsolationSpec{
			Ingress: []phiguardv1alpha1.NetworkIngressRule{{
				From:  []phiguardv1alpha1.NetworkPeer{{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: "198.51.100.0/24"}}},
				Ports: []phiguardv1alpha1.NetworkPort{tcpPort(intstr.FromInt32(8443))},
			}}},
		want: join(sameWorkload, dns, toRecords("ext-c", "TCP/8443")),
	}, {
		name: "a named port the destination does not have allows nothing",
		spec: phiguardv1alpha1.NetworkIsolationSpec{AllowSameWorkload: off, AllowDNS: off,
			Egress: []phiguardv1alpha1.NetworkEgressRule{{
				To:    []phiguardv1alpha1.NetworkPeer{{PodSelector: selector("app", "web")}},
				Ports: []phiguardv1alpha1.NetworkPort{tcpPort(intstr.FromString("metrics"))},
			}}},
		want: nil,
	}}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			np := generated(t, tc.spec)
			g.Expect(np.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress))
			g.Expect(connections([]networkingv1.NetworkPolicy{np})).To(ConsistOf(tc.want))
		})
	}

	t.Run("without the policy everything is open (the evaluator is not vacuous)", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(connections(nil)).To(ContainElements(join(conn("web", records[0]), conn(records[1], "ext-b"))))
	})
}
