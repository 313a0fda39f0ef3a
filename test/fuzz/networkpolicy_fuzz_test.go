package fuzz

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kubernetes/pkg/api/legacyscheme"
	"k8s.io/kubernetes/pkg/apis/networking"
	_ "k8s.io/kubernetes/pkg/apis/networking/install" // the apiserver's defaults and conversions of networking.k8s.io
	"k8s.io/kubernetes/pkg/registry/networking/networkpolicy"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/netpol"
	"github.com/phiguard/phiguard/internal/safeguard"
	"github.com/phiguard/phiguard/internal/ssa"
)

// FuzzNetworkPolicy builds a PHIWorkload's selector and networkIsolation
// from the fuzz bytes, keeps those the apiserver would store (the CRD's
// schema and CEL rules) and phiguard's PHIWorkload webhook admits, and checks
// the NetworkPolicy phiguard generates for it (DesiredNetworkPolicy, from
// the effective settings):
//   - the apiserver's own NetworkPolicy validation accepts it, and its
//     defaulting changes nothing (else every reconcile would write);
//   - a pod the workload selects is isolated in both directions (netpol, the
//     evaluator the NetworkIsolated judgment uses);
//   - the policy admits nothing beyond itself (netpol.Uncovered), so that
//     phiguard never finds its own policy a bypass;
//   - each declared allow lets through a peer it names, on its port, and
//     with nothing declared nothing gets through.
func FuzzNetworkPolicy(f *testing.F) {
	crd, err := newCRDValidator("compliance.phiguard.io_phiworkloads.yaml")
	if err != nil {
		f.Fatal(err)
	}
	registry := safeguard.New(safeguard.Options{})
	validator, err := newWorkloadValidator(registry)
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range networkPolicySeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		w := generateWorkload(&consumer{data: data})
		stored, ok := admitWorkload(ctx, t, crd, validator, w)
		if !ok {
			return
		}
		settings, _, err := registry.Effective(&stored.Spec.SafeguardSettings, nil)
		if err != nil {
			t.Fatalf("merging the settings of %s: %v", specJSON(stored), err)
		}
		desired := safeguard.DesiredNetworkPolicy(stored, settings.NetworkIsolation)
		np, err := ssa.Typed[networkingv1.NetworkPolicy](desired)
		if err != nil {
			t.Fatalf("converting the desired NetworkPolicy of %s: %v", specJSON(stored), err)
		}
		checkAPIServerAccepts(t, stored, np)
		checkIsolates(t, stored, settings.NetworkIsolation, np)
	})
}

// checkAPIServerAccepts validates np as the apiserver does a create
// (networking.k8s.io/v1 defaults, conversion, the registry's strategy).
func checkAPIServerAccepts(t *testing.T, w *phiguardv1alpha1.PHIWorkload, np *networkingv1.NetworkPolicy) {
	t.Helper()
	defaulted := np.DeepCopy()
	legacyscheme.Scheme.Default(defaulted)
	if !equality.Semantic.DeepEqual(np, defaulted) {
		t.Errorf("the apiserver's defaults change the NetworkPolicy of %s: a reconcile would write it every time\nbefore: %s\nafter:  %s",
			specJSON(w), asJSON(np.Spec), asJSON(defaulted.Spec))
	}
	var internal networking.NetworkPolicy
	if err := legacyscheme.Scheme.Convert(defaulted, &internal, nil); err != nil {
		t.Fatalf("converting the NetworkPolicy: %v", err)
	}
	if errs := networkpolicy.Strategy.Validate(context.Background(), &internal); len(errs) > 0 {
		t.Fatalf("the apiserver refuses the NetworkPolicy phiguard generates for a valid PHIWorkload: %v\nworkload spec: %s\npolicy spec: %s",
			errs.ToAggregate(), specJSON(w), asJSON(np.Spec))
	}
}

// checkIsolates judges np with the isolation evaluator.
func checkIsolates(t *testing.T, w *phiguardv1alpha1.PHIWorkload, spec *phiguardv1alpha1.NetworkIsolationSpec, np *networkingv1.NetworkPolicy) {
	t.Helper()
	if !equality.Semantic.DeepEqual(np.Spec.PodSelector, w.Spec.Selector) {
		t.Fatalf("the NetworkPolicy selects %s, the workload %s", asJSON(np.Spec.PodSelector), asJSON(w.Spec.Selector))
	}
	podLabels, ok := satisfying(&w.Spec.Selector)
	if !ok {
		return // no pod can match the selector
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.Namespace, Name: "selected", Labels: podLabels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}},
	}
	ev := netpol.Evaluate(pod, []networkingv1.NetworkPolicy{*np})
	if !ev.Ingress.Isolated || !ev.Egress.Isolated {
		t.Fatalf("pod with labels %v is not isolated both ways (ingress %t, egress %t) by the NetworkPolicy of %s",
			podLabels, ev.Ingress.Isolated, ev.Egress.Isolated, specJSON(w))
	}
	checkNotABypass(t, w, np, pod, ev)
	checkClosed(t, w, spec, ev)
	checkDeclaredAllowed(t, w, spec, ev)
}

// checkNotABypass checks that each rule phiguard's own policy admits is
// covered by its declared rules: the policy never counts as a bypass of itself.
func checkNotABypass(t *testing.T, w *phiguardv1alpha1.PHIWorkload, np *networkingv1.NetworkPolicy, pod *corev1.Pod, ev netpol.Pod) {
	t.Helper()
	for dir, d := range map[networkingv1.PolicyType]netpol.Direction{networkingv1.PolicyTypeIngress: ev.Ingress, networkingv1.PolicyTypeEgress: ev.Egress} {
		declared := netpol.Rules(np, dir)
		dst := pod
		if dir == networkingv1.PolicyTypeEgress {
			dst = nil
		}
		for _, r := range d.Rules {
			if wider := netpol.Uncovered(r, declared, dst); len(wider) > 0 {
				t.Fatalf("phiguard's own NetworkPolicy would count as a bypass of itself: %s %s is not covered by its rules\nworkload spec: %s",
					dir, wider[0].Describe(dir), specJSON(w))
			}
		}
	}

}

// checkClosed checks that with nothing declared in a direction, nothing
// from outside the workload gets through.
func checkClosed(t *testing.T, w *phiguardv1alpha1.PHIWorkload, spec *phiguardv1alpha1.NetworkIsolationSpec, ev netpol.Pod) {
	t.Helper()
	outsider := netpol.Endpoint{Namespace: "elsewhere", NamespaceLabels: map[string]string{"unrelated": "x"},
		Labels: map[string]string{"unrelated": "x"}, IP: netip.MustParseAddr("192.0.2.1")}
	if !ptr.Deref(spec.AllowSameWorkload, true) && len(spec.Ingress) == 0 && ev.Ingress.Allows(outsider, nil, corev1.ProtocolTCP, 443) {
		t.Fatalf("with no ingress declared, the NetworkPolicy of %s lets a connection in", specJSON(w))
	}
	if !ptr.Deref(spec.AllowSameWorkload, true) && !ptr.Deref(spec.AllowDNS, true) && len(spec.Egress) == 0 &&
		ev.Egress.Allows(outsider, nil, corev1.ProtocolTCP, 443) {
		t.Fatalf("with no egress declared, the NetworkPolicy of %s lets a connection out", specJSON(w))
	}
}

// checkDeclaredAllowed checks that every declared peer gets through.
func checkDeclaredAllowed(t *testing.T, w *phiguardv1alpha1.PHIWorkload, spec *phiguardv1alpha1.NetworkIsolationSpec, ev netpol.Pod) {
	t.Helper()
	for i, r := range spec.Ingress {
		for j := range r.From {
			checkAllowed(t, w, ev.Ingress, fmt.Sprintf("ingress[%d].from[%d]", i, j), &r.From[j], r.Ports, true)
		}
	}
	for i, r := range spec.Egress {
		for j := range r.To {
			checkAllowed(t, w, ev.Egress, fmt.Sprintf("egress[%d].to[%d]", i, j), &r.To[j], r.Ports, false)
		}
	}
}

// checkAllowed checks that d lets through an endpoint that the declared peer
// names, on the rule's first port (any port when it has none). Peers no
// endpoint can match (contradictory selectors, an ipBlock all excepted) are
// skipped.
func checkAllowed(t *testing.T, w *phiguardv1alpha1.PHIWorkload, d netpol.Direction, field string, p *phiguardv1alpha1.NetworkPeer,
	ports []phiguardv1alpha1.NetworkPort, ingress bool) {
	t.Helper()
	e, ok := endpointOf(p, w.Namespace)
	if !ok {
		return
	}
	protocol, port := corev1.ProtocolTCP, int32(4242)
	var containerPorts []corev1.ContainerPort
	if len(ports) > 0 {
		first := ports[0]
		protocol = first.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP
		}
		switch {
		case first.Port == nil:
		case first.Port.Type == intstr.String:
			containerPorts = []corev1.ContainerPort{{Name: first.Port.StrVal, ContainerPort: 4242, Protocol: protocol}}
		default:
			port = first.Port.IntVal
		}
	}
	if !d.Allows(e, containerPorts, protocol, port) {
		t.Fatalf("networkIsolation.%s is declared, but the NetworkPolicy does not let %+v through on %s/%d (ingress %t)\nworkload spec: %s",
			field, e, protocol, port, ingress, specJSON(w))
	}
}

// endpointOf returns an endpoint the peer admits, if there is one.
func endpointOf(p *phiguardv1alpha1.NetworkPeer, ns string) (netpol.Endpoint, bool) {
	if p.IPBlock != nil {
		prefix, err := netip.ParsePrefix(p.IPBlock.CIDR)
		if err != nil {
			return netpol.Endpoint{}, false
		}
		prefix = prefix.Masked()
		for _, candidate := range []netip.Addr{prefix.Addr(), lastAddr(prefix)} {
			excepted := false
			for _, e := range p.IPBlock.Except {
				if ep, err := netip.ParsePrefix(e); err == nil && ep.Masked().Contains(candidate) {
					excepted = true
				}
			}
			if !excepted {
				return netpol.Endpoint{IP: candidate}, true
			}
		}
		return netpol.Endpoint{}, false
	}
	e := netpol.Endpoint{Namespace: ns, IP: netip.MustParseAddr("10.0.0.9")}
	if p.NamespaceSelector != nil {
		nsLabels, ok := satisfying(p.NamespaceSelector)
		if !ok {
			return netpol.Endpoint{}, false
		}
		// Every namespace carries its name as a label, which the evaluator
		// adds: the peer's namespace must be one the selector matches with it.
		e.Namespace = "peer-namespace"
		if name, set := nsLabels[corev1.LabelMetadataName]; set {
			e.Namespace = name
		}
		nsLabels[corev1.LabelMetadataName] = e.Namespace
		if len(validation.IsDNS1123Label(e.Namespace)) > 0 || !matches(p.NamespaceSelector, nsLabels) {
			return netpol.Endpoint{}, false
		}
		e.NamespaceLabels = nsLabels
	}
	if p.PodSelector != nil {
		podLabels, ok := satisfying(p.PodSelector)
		if !ok {
			return netpol.Endpoint{}, false
		}
		e.Labels = podLabels
	}
	return e, true
}

// matches says whether a valid selector matches a set of labels.
func matches(s *metav1.LabelSelector, set map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && sel.Matches(labels.Set(set))
}

// lastAddr is the highest address of a prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 1 << (7 - i%8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// satisfying returns labels the selector matches, and false when it finds
// none (a contradictory or unparsable selector).
func satisfying(s *metav1.LabelSelector) (map[string]string, bool) {
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		return nil, false
	}
	set := map[string]string{}
	for k, v := range s.MatchLabels {
		set[k] = v
	}
	for _, r := range s.MatchExpressions {
		if _, taken := set[r.Key]; taken {
			continue
		}
		switch r.Operator {
		case metav1.LabelSelectorOpIn:
			set[r.Key] = r.Values[0]
		case metav1.LabelSelectorOpExists:
			set[r.Key] = "present"
		}
	}
	if !sel.Matches(labels.Set(set)) {
		return nil, false
	}
	return set, true
}

// generateWorkload builds a PHIWorkload in namespace clinic from fuzz bytes:
// its selector and its networkIsolation, values drawn from pools of valid
// and invalid ones, for the CRD and the webhook to sort out.
func generateWorkload(c *consumer) *phiguardv1alpha1.PHIWorkload {
	w := &phiguardv1alpha1.PHIWorkload{
		TypeMeta:   metav1.TypeMeta{APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: pick(c, "records", "portal", "a", strings.Repeat("w", 63))},
	}
	if c.intn(8) == 0 {
		w.Spec.NamespaceWide = true
	} else {
		w.Spec.Selector = generateSelector(c)
	}
	spec := &phiguardv1alpha1.NetworkIsolationSpec{
		Mode:              pick(c, phiguardv1alpha1.ModeEnforce, "", phiguardv1alpha1.ModeAudit),
		AllowDNS:          pick(c, nil, ptr.To(true), ptr.To(false)),
		AllowSameWorkload: pick(c, nil, ptr.To(false), ptr.To(true)),
	}
	for range c.intn(4) {
		var r phiguardv1alpha1.NetworkIngressRule
		for range c.intn(4) {
			r.From = append(r.From, generatePeer(c))
		}
		r.Ports = generatePorts(c)
		spec.Ingress = append(spec.Ingress, r)
	}
	for range c.intn(4) {
		var r phiguardv1alpha1.NetworkEgressRule
		for range c.intn(4) {
			r.To = append(r.To, generatePeer(c))
		}
		r.Ports = generatePorts(c)
		spec.Egress = append(spec.Egress, r)
	}
	w.Spec.NetworkIsolation = spec
	return w
}

// Pools of label keys and values: valid ones, and ones the apiserver refuses
// in a selector.
var (
	labelKeys = []string{"app", "tier", "team", corev1.LabelMetadataName, "phiguard.io/ephi", "example.com/role",
		"Bad Key", "", "-app", "a/b/c", strings.Repeat("k", 64), "example.com/", "app.kubernetes.io/name"}
	labelValues = []string{"records", "web", "clinic", "", "true", "bad value", "-x", strings.Repeat("v", 64), "a_b.c", "Records"}
	operators   = []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn,
		metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist, "Bogus", ""}
)

func generateSelector(c *consumer) metav1.LabelSelector {
	var s metav1.LabelSelector
	if n := c.intn(3); n > 0 {
		s.MatchLabels = map[string]string{}
		for range n {
			s.MatchLabels[pick(c, labelKeys...)] = pick(c, labelValues...)
		}
	}
	for range c.intn(3) {
		r := metav1.LabelSelectorRequirement{Key: pick(c, labelKeys...), Operator: pick(c, operators...)}
		for range c.intn(3) {
			r.Values = append(r.Values, pick(c, labelValues...))
		}
		s.MatchExpressions = append(s.MatchExpressions, r)
	}
	return s
}

func generatePeer(c *consumer) phiguardv1alpha1.NetworkPeer {
	selector := func() *metav1.LabelSelector { s := generateSelector(c); return &s }
	switch c.intn(6) {
	case 0:
		return phiguardv1alpha1.NetworkPeer{PodSelector: selector()}
	case 1:
		return phiguardv1alpha1.NetworkPeer{NamespaceSelector: selector()}
	case 2:
		return phiguardv1alpha1.NetworkPeer{PodSelector: selector(), NamespaceSelector: selector()}
	case 3:
		return phiguardv1alpha1.NetworkPeer{IPBlock: generateIPBlock(c)}
	case 4:
		return phiguardv1alpha1.NetworkPeer{IPBlock: generateIPBlock(c), PodSelector: selector()}
	default:
		return phiguardv1alpha1.NetworkPeer{}
	}
}

// Addresses CIDRs are built on, of both families.
var (
	ipv4Bases = []string{"10.0.0.0", "192.168.1.0", "203.0.113.7", "0.0.0.0", "255.255.255.255", "172.16.5.4"}
	ipv6Bases = []string{"2001:db8::", "::", "fd00::1", "2001:db8:1:2::8", "::ffff:10.0.0.0", "fe80::1"}
)

// generateIPBlock draws a CIDR (canonical, with host bits, oddly written,
// or not a CIDR at all) and exceptions, mostly inside it.
func generateIPBlock(c *consumer) *phiguardv1alpha1.IPBlock {
	prefix, text := generateCIDR(c)
	b := &phiguardv1alpha1.IPBlock{CIDR: text}
	for range c.intn(3) {
		if prefix.IsValid() && c.intn(4) != 0 {
			// A subnet of the block, sometimes no smaller than it.
			bits := prefix.Bits() + c.intn(prefix.Addr().BitLen()-prefix.Bits()+1)
			sub, err := prefix.Addr().Prefix(bits)
			if err == nil {
				b.Except = append(b.Except, sub.String())
				continue
			}
		}
		_, other := generateCIDR(c)
		b.Except = append(b.Except, other)
	}
	return b
}

// generateCIDR returns a CIDR's text and, when it is one, its prefix.
func generateCIDR(c *consumer) (netip.Prefix, string) {
	bases := ipv4Bases
	if c.bool() {
		bases = ipv6Bases
	}
	addr := netip.MustParseAddr(pick(c, bases...))
	bits := c.intn(addr.BitLen() + 2)
	switch c.intn(8) {
	case 0:
		return netip.Prefix{}, pick(c, "", "10.0.0.0/", "a.b.c.d/8", " 10.0.0.0/8", "010.0.0.0/8", "10.0.0.1", "2001:DB8::/32", "fe80::1%eth0/64")
	case 1, 2: // as written, host bits and all
		p := netip.PrefixFrom(addr, bits)
		return p, fmt.Sprintf("%s/%d", addr, bits)
	default:
		p, err := addr.Prefix(bits)
		if err != nil {
			return netip.Prefix{}, fmt.Sprintf("%s/%d", addr, bits)
		}
		return p, p.String()
	}
}

// generatePorts makes up to two ports, valid or not.
func generatePorts(c *consumer) []phiguardv1alpha1.NetworkPort {
	n := c.intn(3)
	out := make([]phiguardv1alpha1.NetworkPort, 0, n)
	for range n {
		p := phiguardv1alpha1.NetworkPort{Protocol: pick[corev1.Protocol](c, "", corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP, "ICMP", "tcp")}
		switch c.intn(4) {
		case 0:
		case 1:
			p.Port = ptr.To(intstr.FromString(pick(c, "http", "metrics", "dns-tcp", "a--b", "-http", "http-", "8080", "HTTP", "abcdefghijklmnop", "x", "1a")))
		default:
			p.Port = ptr.To(intstr.FromInt32(pick[int32](c, 1, 22, 53, 80, 443, 8080, 65535, 0, 65536, -1, int32(c.uint16()))))
		}
		if c.intn(3) == 0 {
			port := int32(0)
			if p.Port != nil {
				port = p.Port.IntVal
			}
			p.EndPort = ptr.To(pick(c, port, port+1, port-1, 1024, 65535, 65536, 0))
		}
		out = append(out, p)
	}
	return out
}

// networkPolicySeeds make typical specs, as generateWorkload reads them;
// TestNetworkPolicySeedsAreAdmitted checks that each is admitted.
var networkPolicySeeds = [][]byte{
	// records, namespace-wide, every setting at its default.
	{},
	// records, app=records: ingress from tier=web pods on TCP 8080; egress to
	// 10.0.0.0/8 except 10.0.0.0/16 on TCP 443.
	{0, 1, 1, 0, 0, 0, 0, 0, 0,
		1, 1, 0, 1, 1, 1, 0, 1, 1, 2, 0, 0, 5, 1,
		1, 1, 3, 0, 0, 8, 3, 1, 1, 8, 1, 1, 2, 0, 0, 4, 1},
	// portal, tier=web and app in [records, web], neither DNS nor its own
	// pods: ingress from app=web pods of team=clinic namespaces on the named
	// port http; egress to app=records pods on TCP 80-1024.
	{1, 1, 1, 1, 1, 1, 0, 0, 2, 0, 1, 0, 2, 1,
		1, 1, 2, 1, 0, 1, 0, 1, 2, 2, 0, 1, 1, 1, 0, 1,
		1, 1, 0, 1, 0, 0, 0, 1, 1, 2, 0, 0, 3, 0, 3},
	// records, namespace-wide, egress only to 2001:db8::/32 on UDP 53.
	{0, 0, 0, 2, 1, 0, 1, 1, 3, 1, 0, 32, 3, 0, 1, 2, 2, 0, 0, 2, 1},
}

// TestNetworkPolicySeedsAreAdmitted keeps the seed corpus useful: each seed
// makes a workload the CRD and the webhook admit, so that the checks run.
func TestNetworkPolicySeedsAreAdmitted(t *testing.T) {
	crd, err := newCRDValidator("compliance.phiguard.io_phiworkloads.yaml")
	if err != nil {
		t.Fatal(err)
	}
	validator, err := newWorkloadValidator(safeguard.New(safeguard.Options{}))
	if err != nil {
		t.Fatal(err)
	}
	for i, seed := range networkPolicySeeds {
		w := generateWorkload(&consumer{data: seed})
		if _, ok := admitWorkload(context.Background(), t, crd, validator, w); !ok {
			t.Errorf("seed %d makes a workload that is not admitted: %s", i, specJSON(w))
		}
	}
}
