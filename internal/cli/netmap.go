package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/phiguard/phiguard/internal/netpol"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// The network map of ePHI flows: for each PHIWorkload's selected pods, what
// the NetworkPolicies in force admit in and out, evaluated by internal/netpol
// (the evaluator NetworkIsolated judges with: the union of every policy that
// selects a pod). Each rule's peers become nodes: the PHIWorkload that
// selects a peer pod, or its pods grouped by namespace and app label, whole
// namespaces, address blocks, anywhere; a selector no pod matches now stays
// a node of its own. An edge is what one side's rules admit: the
// destination's ingress rules or the source's egress rules. The other side's
// policies may narrow it further; the map does not intersect them.

// Kinds of network map nodes.
const (
	// NodeWorkload is a PHIWorkload: the pods it selects.
	NodeWorkload = "PHIWorkload"
	// NodePods are pods no PHIWorkload selects, grouped by namespace and app label.
	NodePods = "Pods"
	// NodeNamespace is every pod of a namespace ("*": of every namespace).
	NodeNamespace = "Namespace"
	// NodeSelector is a peer selector that matches no pod (or namespace) now.
	NodeSelector = "Selector"
	// NodeCIDR is an ipBlock: addresses, with exceptions.
	NodeCIDR = "CIDR"
	// NodeAnywhere is any address, in the cluster or not.
	NodeAnywhere = "Anywhere"
)

// anyPort is the port of a rule that lists none: every port of every protocol.
const anyPort = "any"

// NetworkMap is the graph of the flows the NetworkPolicies in force admit to
// and from ePHI pods. Nodes are sorted by ID, edges by From, To and Direction.
type NetworkMap struct {
	Nodes []NetworkNode `json:"nodes"`
	Edges []NetworkEdge `json:"edges"`
}

// NetworkNode is one end of a flow.
type NetworkNode struct {
	// ID is stable: "phiworkload:clinic/records", "pods:billing/billing-api",
	// "namespace:billing", "cidr:10.0.0.0/8", "anywhere".
	ID string `json:"id"`
	// Kind is one of the Node* constants.
	Kind string `json:"kind"`
	// Label says what the node is, in words.
	Label string `json:"label"`
}

// NetworkEdge is a flow one side's NetworkPolicies admit.
type NetworkEdge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Direction is Ingress when the destination's ingress rules admit the
	// flow, Egress when the source's egress rules do.
	Direction networkingv1.PolicyType `json:"direction"`
	// Ports are the destination ports: "TCP/8443", "TCP/https" (a named
	// port), "TCP/8000-8100", "TCP/any", or "any".
	Ports []string `json:"ports"`
	// Policies are the NetworkPolicies (namespace/name) whose rules admit it.
	Policies []string `json:"policies,omitempty"`
	// NotIsolated is true when some of the workload's pods are selected by no
	// policy for this direction: any traffic passes.
	NotIsolated bool `json:"notIsolated,omitempty"`
}

// netMapper builds a NetworkMap, reading namespaces and peer pods through the
// cached reader.
type netMapper struct {
	reader     client.Reader
	nodes      map[string]NetworkNode
	edges      map[edgeKey]*NetworkEdge
	namespaces []corev1.Namespace // read once, when a peer selects namespaces by label
	nsRead     bool
}

type edgeKey struct {
	from, to string
	dir      networkingv1.PolicyType
}

// buildNetworkMap maps the flows of the workloads' selected pods.
func buildNetworkMap(ctx context.Context, r client.Reader, workloads []*ephiWorkload) (NetworkMap, error) {
	m := &netMapper{reader: r, nodes: map[string]NetworkNode{}, edges: map[edgeKey]*NetworkEdge{}}
	for _, w := range workloads {
		self := m.workloadNode(w.Namespace, w.Name)
		if w.scope == nil {
			continue
		}
		policies := safeguard.NetworkPolicies.Get(w.scope)
		for i := range w.scope.Pods {
			eval := netpol.Evaluate(&w.scope.Pods[i], policies)
			if err := m.direction(ctx, self, eval.Ingress, networkingv1.PolicyTypeIngress); err != nil {
				return NetworkMap{}, err
			}
			if err := m.direction(ctx, self, eval.Egress, networkingv1.PolicyTypeEgress); err != nil {
				return NetworkMap{}, err
			}
		}
	}
	return m.result(), nil
}

// direction adds the edges of what one direction admits for a pod of the
// workload whose node is self.
func (m *netMapper) direction(ctx context.Context, self string, d netpol.Direction, dir networkingv1.PolicyType) error {
	if !d.Isolated {
		m.edge(self, m.node(NodeAnywhere, "anywhere", "anywhere"), dir, []string{anyPort}, "")
		return nil
	}
	for _, rule := range d.Rules {
		ports := rulePorts(rule.Ports)
		peers := []*networkingv1.NetworkPolicyPeer{nil}
		if len(rule.Peers) > 0 {
			peers = peers[:0]
			for i := range rule.Peers {
				peers = append(peers, &rule.Peers[i])
			}
		}
		for _, peer := range peers {
			ids, err := m.resolve(ctx, rule.Namespace, peer)
			if err != nil {
				return err
			}
			for _, id := range ids {
				m.edge(self, id, dir, ports, rule.Policy)
			}
		}
	}
	return nil
}

// edge records a flow between the workload's node and a peer's.
func (m *netMapper) edge(self, peer string, dir networkingv1.PolicyType, ports []string, policy string) {
	k := edgeKey{from: peer, to: self, dir: dir}
	if dir == networkingv1.PolicyTypeEgress {
		k.from, k.to = self, peer
	}
	e := m.edges[k]
	if e == nil {
		e = &NetworkEdge{From: k.from, To: k.to, Direction: dir}
		m.edges[k] = e
	}
	e.Ports = append(e.Ports, ports...)
	if policy == "" {
		e.NotIsolated = true
	} else {
		e.Policies = append(e.Policies, policy)
	}
}

// resolve returns the nodes of the pods a peer of a rule (of a policy in
// namespace ns) admits; nil is every peer.
func (m *netMapper) resolve(ctx context.Context, ns string, peer *networkingv1.NetworkPolicyPeer) ([]string, error) {
	switch {
	case peer == nil:
		return []string{m.node(NodeAnywhere, "anywhere", "anywhere")}, nil
	case peer.IPBlock != nil:
		desc := netpol.DescribePeer(peer, ns)
		return []string{m.node(NodeCIDR, "cidr:"+desc, desc)}, nil
	}
	anyPod := peer.PodSelector == nil || emptySelector(peer.PodSelector)
	if anyPod && peer.NamespaceSelector != nil && emptySelector(peer.NamespaceSelector) {
		return []string{m.node(NodeNamespace, "namespace:*", "every namespace (any pod)")}, nil
	}
	namespaces, err := m.peerNamespaces(ctx, ns, peer)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, pns := range namespaces {
		if anyPod {
			ids = append(ids, m.node(NodeNamespace, "namespace:"+pns, "namespace "+pns+" (any pod)"))
			continue
		}
		found, err := m.peerPods(ctx, ns, peer, pns)
		if err != nil {
			return nil, err
		}
		ids = append(ids, found...)
	}
	if len(ids) == 0 {
		desc := netpol.DescribePeer(peer, ns)
		ids = append(ids, m.node(NodeSelector, "selector:"+desc, desc+" (none now)"))
	}
	return sortedUnique(ids), nil
}

// peerNamespaces are the namespaces a selector peer of a rule in namespace
// ns admits pods of: ns without a namespaceSelector, otherwise those whose
// labels it matches (read once).
func (m *netMapper) peerNamespaces(ctx context.Context, ns string, peer *networkingv1.NetworkPolicyPeer) ([]string, error) {
	if peer.NamespaceSelector == nil {
		return []string{ns}, nil
	}
	if !m.nsRead {
		var list corev1.NamespaceList
		if err := m.reader.List(ctx, &list); err != nil {
			return nil, fmt.Errorf("listing namespaces for the network map: %w", err)
		}
		m.namespaces, m.nsRead = list.Items, true
	}
	nsOnly := netpol.Rule{Namespace: ns, Peers: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: peer.NamespaceSelector}}}
	var out []string
	for i := range m.namespaces {
		n := &m.namespaces[i]
		if nsOnly.Admits(netpol.Endpoint{Namespace: n.Name, NamespaceLabels: n.Labels}, nil, "", 0) {
			out = append(out, n.Name)
		}
	}
	slices.Sort(out)
	return out, nil
}

// peerPods are the nodes of the pods of namespace pns that a selector peer
// (of a rule in namespace ns) admits: the PHIWorkload selecting each, or
// its namespace and app label.
func (m *netMapper) peerPods(ctx context.Context, ns string, peer *networkingv1.NetworkPolicyPeer, pns string) ([]string, error) {
	var pods corev1.PodList
	if err := m.reader.List(ctx, &pods, client.InNamespace(pns)); err != nil {
		return nil, fmt.Errorf("listing pods of %s for the network map: %w", pns, err)
	}
	var nsLabels map[string]string
	if i := slices.IndexFunc(m.namespaces, func(n corev1.Namespace) bool { return n.Name == pns }); i >= 0 {
		nsLabels = m.namespaces[i].Labels
	}
	rule := netpol.Rule{Namespace: ns, Peers: []networkingv1.NetworkPolicyPeer{*peer}}
	var ids []string
	for i := range pods.Items {
		p := &pods.Items[i]
		if !p.DeletionTimestamp.IsZero() ||
			!rule.Admits(netpol.Endpoint{Namespace: pns, NamespaceLabels: nsLabels, Labels: p.Labels}, nil, "", 0) {
			continue
		}
		if reqs := (safeguard.Workloads{Reader: m.reader}).Selecting(ctx, pns, p.Labels); len(reqs) > 0 {
			names := make([]string, 0, len(reqs))
			for _, r := range reqs {
				names = append(names, r.Name)
			}
			ids = append(ids, m.workloadNode(pns, slices.Min(names)))
			continue
		}
		app := podApp(p)
		ids = append(ids, m.node(NodePods, "pods:"+pns+"/"+app, "pods "+pns+"/"+app))
	}
	return ids, nil
}

// podApp names the application a pod belongs to, by the usual labels; the
// pod's name when it has none.
func podApp(p *corev1.Pod) string {
	for _, l := range []string{"app.kubernetes.io/name", "app", "k8s-app"} {
		if v := p.Labels[l]; v != "" {
			return v
		}
	}
	return p.Name
}

func (m *netMapper) workloadNode(ns, name string) string {
	return m.node(NodeWorkload, "phiworkload:"+ns+"/"+name, "PHIWorkload "+ns+"/"+name)
}

// node records a node and returns its ID.
func (m *netMapper) node(kind, id, label string) string {
	if _, ok := m.nodes[id]; !ok {
		m.nodes[id] = NetworkNode{ID: id, Kind: kind, Label: label}
	}
	return id
}

func (m *netMapper) result() NetworkMap {
	out := NetworkMap{Nodes: []NetworkNode{}, Edges: []NetworkEdge{}}
	for _, id := range sortedMapKeys(m.nodes) {
		out.Nodes = append(out.Nodes, m.nodes[id])
	}
	for _, e := range m.edges {
		e.Ports = sortedUnique(e.Ports)
		if slices.Contains(e.Ports, anyPort) {
			e.Ports = []string{anyPort}
		}
		e.Policies = sortedUnique(e.Policies)
		out.Edges = append(out.Edges, *e)
	}
	slices.SortFunc(out.Edges, func(a, b NetworkEdge) int {
		return cmp.Or(cmp.Compare(a.From, b.From), cmp.Compare(a.To, b.To), cmp.Compare(a.Direction, b.Direction))
	})
	return out
}

// rulePorts names a rule's ports; a rule without ports admits any.
func rulePorts(ports []networkingv1.NetworkPolicyPort) []string {
	if len(ports) == 0 {
		return []string{anyPort}
	}
	out := make([]string, 0, len(ports))
	for i := range ports {
		p := &ports[i]
		proto := corev1.ProtocolTCP // the API's default
		if p.Protocol != nil && *p.Protocol != "" {
			proto = *p.Protocol
		}
		switch {
		case p.Port == nil:
			out = append(out, string(proto)+"/any")
		case p.EndPort != nil:
			out = append(out, fmt.Sprintf("%s/%d-%d", proto, p.Port.IntVal, *p.EndPort))
		default:
			out = append(out, string(proto)+"/"+p.Port.String())
		}
	}
	return out
}

// emptySelector says whether a selector matches everything.
func emptySelector(s *metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

// edgeLabel is what a diagram writes on an edge.
func edgeLabel(e *NetworkEdge) string {
	label := strings.Join(e.Ports, ", ")
	if e.NotIsolated {
		label += " (not isolated)"
	}
	return label
}

// Diagram formats of the network map.
const (
	DiagramMermaid = "mermaid"
	DiagramDOT     = "dot"
)

// writeMermaid writes the map as a Mermaid flowchart: PHIWorkloads as
// rectangles, pods, namespaces and selectors rounded, addresses as
// parallelograms; solid arrows for ingress, dotted for egress.
func writeMermaid(out io.Writer, nm *NetworkMap) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	b.WriteString("  %% allowed ePHI flows: solid arrows are admitted by the destination's ingress rules, dotted ones by the source's egress rules\n")
	ids := map[string]string{}
	for i, n := range nm.Nodes {
		id := fmt.Sprintf("n%d", i+1)
		ids[n.ID] = id
		label := mermaidText.Replace(n.Label)
		switch n.Kind {
		case NodeWorkload:
			fmt.Fprintf(&b, "  %s[\"%s\"]\n", id, label)
		case NodeCIDR, NodeAnywhere:
			fmt.Fprintf(&b, "  %s[/\"%s\"/]\n", id, label)
		default:
			fmt.Fprintf(&b, "  %s(\"%s\")\n", id, label)
		}
	}
	for i := range nm.Edges {
		e := &nm.Edges[i]
		arrow := "-->"
		if e.Direction == networkingv1.PolicyTypeEgress {
			arrow = "-.->"
		}
		fmt.Fprintf(&b, "  %s %s|\"%s\"| %s\n", ids[e.From], arrow, mermaidText.Replace(edgeLabel(e)), ids[e.To])
	}
	if _, err := io.WriteString(out, b.String()); err != nil {
		return fmt.Errorf("writing the Mermaid map: %w", err)
	}
	return nil
}

// mermaidText keeps a label inside its quotes.
var mermaidText = strings.NewReplacer(`"`, "#quot;", "\n", " ")

// writeDOT writes the map as a Graphviz digraph: PHIWorkloads as boxes,
// pods as ellipses, namespaces as folders, selectors as notes, addresses as
// parallelograms; solid edges for ingress, dashed for egress.
func writeDOT(out io.Writer, nm *NetworkMap) error {
	shapes := map[string]string{NodeWorkload: "box", NodePods: "ellipse", NodeNamespace: "folder",
		NodeSelector: "note", NodeCIDR: "parallelogram", NodeAnywhere: "parallelogram"}
	var b strings.Builder
	b.WriteString("digraph ephi_flows {\n  rankdir=LR;\n")
	b.WriteString("  // allowed ePHI flows: solid edges are admitted by the destination's ingress rules, dashed ones by the source's egress rules\n")
	for _, n := range nm.Nodes {
		fmt.Fprintf(&b, "  %s [label=%s, shape=%s];\n", dotQuote(n.ID), dotQuote(n.Label), cmp.Or(shapes[n.Kind], "ellipse"))
	}
	for i := range nm.Edges {
		e := &nm.Edges[i]
		style := ""
		if e.Direction == networkingv1.PolicyTypeEgress {
			style = ", style=dashed"
		}
		fmt.Fprintf(&b, "  %s -> %s [label=%s%s];\n", dotQuote(e.From), dotQuote(e.To), dotQuote(edgeLabel(e)), style)
	}
	b.WriteString("}\n")
	if _, err := io.WriteString(out, b.String()); err != nil {
		return fmt.Errorf("writing the Graphviz map: %w", err)
	}
	return nil
}

// dotQuote writes s as a DOT quoted string.
func dotQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
