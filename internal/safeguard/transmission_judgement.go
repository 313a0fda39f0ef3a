package safeguard

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// tlsAppProtocols are the Service port appProtocol values that declare TLS:
// the IANA service names https and tls, and kubernetes.io/wss (WebSocket over
// TLS). Anything else, kubernetes.io/h2c and kubernetes.io/ws included, or
// none, does not.
var tlsAppProtocols = []string{"https", "tls", "kubernetes.io/wss"}

// Mesh markers on pods and namespaces.
const (
	istioProxyContainer  = "istio-proxy"
	istioSidecarStatus   = "sidecar.istio.io/status"
	istioDataplaneMode   = "istio.io/dataplane-mode"
	linkerdProxyContainr = "linkerd-proxy"
	linkerdProxyVersion  = "linkerd.io/proxy-version"
)

// transmissionFacts are what the judgment reads, from the scope.
type transmissionFacts struct {
	namespace       string
	namespaceLabels map[string]string
	pods            []corev1.Pod
	services        []corev1.Service
	ingresses       []networkingv1.Ingress
	// routes is nil while Gateway API is not served: no route can exist.
	routes *Routes
	// istio says whether Istio's PeerAuthentication is served.
	istio               bool
	peerAuthentications []*securityv1.PeerAuthentication
	// nameTaken is the name of phiguard's PeerAuthentication when someone
	// else's object holds it.
	nameTaken string
	// note is said at the end of the message (what Enforce could not do).
	note string
}

// The order in which findings are reported; the condition's reason is the first that holds.
var transmissionReasons = []string{
	phiguardv1alpha1.ReasonIngressWithoutTLS,
	phiguardv1alpha1.ReasonRouteOnPlainListener,
	phiguardv1alpha1.ReasonServiceExposedWithoutTLS,
	phiguardv1alpha1.ReasonPeerAuthenticationNameTaken,
	phiguardv1alpha1.ReasonPeerAuthenticationPermissive,
	phiguardv1alpha1.ReasonPodsOutsideMesh,
	phiguardv1alpha1.ReasonNoInClusterEncryption,
	phiguardv1alpha1.ReasonRouteParentNotJudged,
}

// transmissionJudgement collects findings by reason.
type transmissionJudgement struct {
	f        transmissionFacts
	findings map[string][]string
	// targets are the Services in the namespace that select some pod.
	targets map[string]*corev1.Service
	// edge counts what was checked and holds, for the True message.
	edge []string
	// inside says how the pods are encrypted, for the True message.
	inside map[string][]string
}

func (j *transmissionJudgement) add(reason, text string) {
	j.findings[reason] = append(j.findings[reason], text)
}

// judgeTransmission judges the edge, then each pod inside the cluster.
func judgeTransmission(f transmissionFacts) Result {
	j := newTransmissionJudgement(f)
	j.judgeIngresses()
	j.judgeRoutes()
	j.judgeExposedServices()
	j.judgePods()
	return j.result()
}

// newTransmissionJudgement starts a judgment of f: no finding yet, and the
// Services in f that select some of its pods as targets. The admission
// webhook (transmission_admission.go) runs one step of it on one object.
func newTransmissionJudgement(f transmissionFacts) *transmissionJudgement {
	j := &transmissionJudgement{f: f, findings: map[string][]string{}, targets: map[string]*corev1.Service{}, inside: map[string][]string{}}
	for i := range f.services {
		if svc := &f.services[i]; len(selectedBy(svc, f.pods)) > 0 {
			j.targets[svc.Name] = svc
		}
	}
	return j
}

// selectedBy returns the pods a Service selects (none for a Service without a selector).
func selectedBy(svc *corev1.Service, pods []corev1.Pod) []string {
	if len(svc.Spec.Selector) == 0 {
		return nil
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var out []string
	for i := range pods {
		if sel.Matches(labels.Set(pods[i].Labels)) {
			out = append(out, pods[i].Name)
		}
	}
	return out
}

// judgeIngresses: each host an Ingress sends to a target Service must be in
// its spec.tls; a rule without a host or a default backend to one cannot be.
func (j *transmissionJudgement) judgeIngresses() {
	checked := 0
	for i := range j.f.ingresses {
		ing := &j.f.ingresses[i]
		var tlsHosts []string
		for _, t := range ing.Spec.TLS {
			tlsHosts = append(tlsHosts, t.Hosts...)
		}
		if b := ing.Spec.DefaultBackend; b != nil && b.Service != nil && j.targets[b.Service.Name] != nil {
			j.add(phiguardv1alpha1.ReasonIngressWithoutTLS, fmt.Sprintf(
				"Ingress %s sends any host its rules do not name to Service %s (spec.defaultBackend), over HTTP as well", ing.Name, b.Service.Name))
		}
		var seen []string
		for _, rule := range ing.Spec.Rules {
			svc := ingressRuleTarget(rule, j.targets)
			if svc == "" || slices.Contains(seen, rule.Host) {
				continue
			}
			seen = append(seen, rule.Host)
			switch {
			case rule.Host == "":
				j.add(phiguardv1alpha1.ReasonIngressWithoutTLS, fmt.Sprintf(
					"Ingress %s has a rule without a host to Service %s, which spec.tls cannot cover", ing.Name, svc))
			case !slices.ContainsFunc(tlsHosts, func(h string) bool { return hostCovers(h, rule.Host) }):
				j.add(phiguardv1alpha1.ReasonIngressWithoutTLS, fmt.Sprintf(
					"Ingress %s serves host %s (to Service %s) without TLS: spec.tls does not list it", ing.Name, rule.Host, svc))
			default:
				checked++
			}
		}
	}
	if checked > 0 {
		j.edge = append(j.edge, fmt.Sprintf("%d Ingress hosts terminate TLS", checked))
	}
}

// ingressRuleTarget is the first target Service a rule's paths send to, or "".
func ingressRuleTarget(rule networkingv1.IngressRule, targets map[string]*corev1.Service) string {
	if rule.HTTP == nil {
		return ""
	}
	for _, p := range rule.HTTP.Paths {
		if p.Backend.Service != nil && targets[p.Backend.Service.Name] != nil {
			return p.Backend.Service.Name
		}
	}
	return ""
}

// hostCovers says whether a TLS host (possibly a wildcard, *.example.com)
// covers a rule's host.
func hostCovers(tlsHost, host string) bool {
	if tlsHost == host {
		return true
	}
	suffix, ok := strings.CutPrefix(tlsHost, "*")
	if !ok || !strings.HasSuffix(host, suffix) {
		return false
	}
	label := strings.TrimSuffix(host, suffix)
	return label != "" && !strings.Contains(label, ".") && !strings.HasPrefix(host, "*")
}

// judgeRoutes: each route to a target Service attaches only to HTTPS or TLS
// listeners of its Gateways.
func (j *transmissionJudgement) judgeRoutes() {
	if j.f.routes == nil {
		return
	}
	checked := 0
	for _, r := range j.f.routes.Routes {
		svc := ""
		for _, b := range r.Backends {
			if b.Namespace == j.f.namespace && j.targets[b.Name] != nil {
				svc = b.Name
				break
			}
		}
		if svc == "" {
			continue
		}
		plain, unjudged := j.routeListeners(r)
		switch {
		case len(plain) > 0:
			j.add(phiguardv1alpha1.ReasonRouteOnPlainListener, fmt.Sprintf("%s %s/%s (to Service %s) attaches to %s",
				r.Kind, r.Namespace, r.Name, svc, strings.Join(plain, ", ")))
		case len(unjudged) > 0:
			j.add(phiguardv1alpha1.ReasonRouteParentNotJudged, fmt.Sprintf("%s %s/%s (to Service %s) attaches to %s, which phiguard does not read",
				r.Kind, r.Namespace, r.Name, svc, strings.Join(unjudged, ", ")))
		default:
			checked++
		}
	}
	if checked > 0 {
		j.edge = append(j.edge, fmt.Sprintf("%d Gateway API routes attach only to HTTPS or TLS listeners", checked))
	}
}

// routeListeners returns the listeners a route attaches to that do not
// terminate TLS ("listener http (HTTP, port 80) of Gateway infra/public"), and
// the parents phiguard cannot judge. A Service parent (a mesh route, GAMMA)
// is east-west traffic, judged with the pods.
func (j *transmissionJudgement) routeListeners(r Route) (plain, unjudged []string) {
	for _, p := range r.ParentRefs {
		key, ok := gatewayKey(r, p)
		if !ok {
			if ptr.Deref(p.Group, gatewayv1.GroupName) == "" && ptr.Deref(p.Kind, "") == kindService {
				continue
			}
			unjudged = append(unjudged, fmt.Sprintf("%s %s", ptr.Deref(p.Kind, "Gateway"), p.Name))
			continue
		}
		gw := j.f.routes.Gateways[key]
		if gw == nil {
			continue // no such Gateway: the route carries no traffic through it
		}
		for _, l := range gw.Spec.Listeners {
			if !attaches(r, p, gw, l) {
				continue
			}
			if l.Protocol != gatewayv1.HTTPSProtocolType && l.Protocol != gatewayv1.TLSProtocolType {
				plain = append(plain, fmt.Sprintf("listener %s (%s, port %d) of Gateway %s", l.Name, l.Protocol, l.Port, key))
			}
		}
	}
	return plain, unjudged
}

// attaches says whether a route attaches, through parentRef p, to listener l
// of gw: p's sectionName and port select the listener (none: every one), and
// the listener must allow the route's kind and namespace. A namespace
// selector counts as allowing (phiguard does not read the route namespace's
// labels), and hostnames are not intersected: either may report a route the
// Gateway would refuse, never miss one.
func attaches(r Route, p gatewayv1.ParentReference, gw *gatewayv1.Gateway, l gatewayv1.Listener) bool {
	if p.SectionName != nil && *p.SectionName != l.Name {
		return false
	}
	if p.Port != nil && *p.Port != l.Port {
		return false
	}
	allowed := l.AllowedRoutes
	from := gatewayv1.NamespacesFromSame
	if allowed != nil && allowed.Namespaces != nil && allowed.Namespaces.From != nil {
		from = *allowed.Namespaces.From
	}
	switch from {
	case gatewayv1.NamespacesFromSame:
		if r.Namespace != gw.Namespace {
			return false
		}
	case gatewayv1.NamespacesFromNone:
		return false
	}
	if allowed != nil && len(allowed.Kinds) > 0 {
		return slices.ContainsFunc(allowed.Kinds, func(k gatewayv1.RouteGroupKind) bool {
			return ptr.Deref(k.Group, gatewayv1.GroupName) == gatewayv1.GroupName && string(k.Kind) == r.Kind
		})
	}
	// By default HTTP and HTTPS listeners take HTTPRoutes and GRPCRoutes.
	return l.Protocol == gatewayv1.HTTPProtocolType || l.Protocol == gatewayv1.HTTPSProtocolType
}

// judgeExposedServices: a target Service reachable from outside the cluster
// declares TLS on every port.
func (j *transmissionJudgement) judgeExposedServices() {
	checked := 0
	for _, name := range slices.Sorted(maps.Keys(j.targets)) {
		svc := j.targets[name]
		how := string(svc.Spec.Type)
		switch {
		case svc.Spec.Type == corev1.ServiceTypeLoadBalancer || svc.Spec.Type == corev1.ServiceTypeNodePort:
		case len(svc.Spec.ExternalIPs) > 0:
			how = "externalIPs"
		default:
			continue
		}
		if plain := plainPorts(svc); len(plain) > 0 {
			j.add(phiguardv1alpha1.ReasonServiceExposedWithoutTLS, fmt.Sprintf("Service %s (%s) exposes %s",
				svc.Name, how, strings.Join(plain, ", ")))
			continue
		}
		checked++
	}
	if checked > 0 {
		j.edge = append(j.edge, fmt.Sprintf("%d exposed Services declare TLS on every port", checked))
	}
}

// plainPorts names a Service's ports that do not declare TLS: "port http/80
// (appProtocol unset)".
func plainPorts(svc *corev1.Service) []string {
	var out []string
	for _, p := range svc.Spec.Ports {
		ap := ptr.Deref(p.AppProtocol, "")
		if slices.Contains(tlsAppProtocols, strings.ToLower(ap)) {
			continue
		}
		port := fmt.Sprint(p.Port)
		if p.Name != "" {
			port = p.Name + "/" + port
		}
		out = append(out, fmt.Sprintf("port %s (appProtocol %s)", port, cmp.Or(ap, "unset")))
	}
	return out
}

// judgePods: each pod is in Linkerd, in Istio under STRICT, or behind
// Services that declare TLS on every port.
func (j *transmissionJudgement) judgePods() {
	if j.f.nameTaken != "" {
		j.add(phiguardv1alpha1.ReasonPeerAuthenticationNameTaken, fmt.Sprintf(
			"PeerAuthentication %s exists and is not phiguard's, so phiguard applies none: rename or delete it", j.f.nameTaken))
	}
	var permissive, outside []string
	var plainSvcs []string
	for i := range j.f.pods {
		pod := &j.f.pods[i]
		switch {
		case linkerdInjected(pod):
			j.inside["by Linkerd's mTLS"] = append(j.inside["by Linkerd's mTLS"], pod.Name)
			continue
		case j.f.istio && istioMeshed(pod, j.f.namespaceLabels):
			if why := j.istioProblem(pod); why != "" {
				permissive = append(permissive, fmt.Sprintf("%s (%s)", pod.Name, why))
			}
			continue
		}
		svcs, plain := j.podServices(pod)
		if len(svcs) > 0 && len(plain) == 0 {
			by := "by TLS their Services declare on every port (" + strings.Join(svcs, ", ") + ")"
			j.inside[by] = append(j.inside[by], pod.Name)
			continue
		}
		outside = append(outside, pod.Name)
		for _, p := range plain {
			if !slices.Contains(plainSvcs, p) {
				plainSvcs = append(plainSvcs, p)
			}
		}
	}
	if len(permissive) > 0 {
		j.add(phiguardv1alpha1.ReasonPeerAuthenticationPermissive, fmt.Sprintf(
			"pods not under Istio mTLS STRICT: %s; apply a PeerAuthentication with mtls.mode STRICT for them (transmissionSecurity.mode Enforce does) and remove PERMISSIVE or DISABLE overrides",
			strings.Join(named(permissive), ", ")))
	}
	if len(outside) == 0 {
		return
	}
	services := "no Service selects them"
	if len(plainSvcs) > 0 {
		services = "their Services do not declare TLS on every port (" + strings.Join(named(plainSvcs), ", ") + ")"
	}
	if j.f.istio {
		j.add(phiguardv1alpha1.ReasonPodsOutsideMesh, fmt.Sprintf(
			"pods outside the mesh: %s (no istio-proxy sidecar, not ambient, no linkerd-proxy) and %s; inject Istio's sidecar (label the namespace istio-injection=enabled and restart them) or enrol them in ambient mode (%s=ambient)",
			strings.Join(named(outside), ", "), services, istioDataplaneMode))
		return
	}
	j.add(phiguardv1alpha1.ReasonNoInClusterEncryption, fmt.Sprintf(
		"no service mesh encrypts the traffic of pods %s (Istio is not installed, no linkerd-proxy) and %s; install a mesh with mTLS (Istio with a STRICT PeerAuthentication, or Linkerd), or serve TLS and declare it with appProtocol (%s). If the traffic is protected another way, an Addressable decision (transmissionSecurity.mode Off with a documented decision) is the honest answer",
		strings.Join(named(outside), ", "), services, strings.Join(tlsAppProtocols, ", ")))
}

// podServices names the Services in the namespace that select the pod, and
// their ports that do not declare TLS ("Service records port http/80
// (appProtocol unset)").
func (j *transmissionJudgement) podServices(pod *corev1.Pod) (svcs, plain []string) {
	for _, name := range slices.Sorted(maps.Keys(j.targets)) {
		svc := j.targets[name]
		if !slices.Contains(selectedBy(svc, []corev1.Pod{*pod}), pod.Name) {
			continue
		}
		svcs = append(svcs, svc.Name)
		for _, p := range plainPorts(svc) {
			plain = append(plain, "Service "+svc.Name+" "+p)
		}
	}
	return svcs, plain
}

// istioProblem says why a meshed pod is not under STRICT, or "". Istio's
// precedence: the oldest PeerAuthentication with a selector matching the pod
// in its namespace, then the oldest namespace-wide one, then the oldest
// mesh-wide one in the root namespace, each mode UNSET inheriting from the
// next; with none, PERMISSIVE. Port-level modes of the workload one override
// the mode for their port.
func (j *transmissionJudgement) istioProblem(pod *corev1.Pod) string {
	workload, namespace, mesh := j.peerAuthenticationsOf(pod)
	mode, source := effectiveMTLSMode(mesh, namespace, workload)
	weak := weakPorts(workload)
	if mode != securityapi.PeerAuthentication_MutualTLS_STRICT {
		return strings.Join(append([]string{source}, weak...), ", ")
	}
	if len(weak) > 0 {
		return strings.Join(weak, ", ")
	}
	j.inside["by Istio mTLS STRICT"] = append(j.inside["by Istio mTLS STRICT"], pod.Name)
	return ""
}

// peerAuthenticationsOf returns the PeerAuthentications that apply to a pod,
// each the oldest of its level (nil when none): the workload one whose
// selector matches the pod, the namespace-wide one, and the mesh-wide one
// (the root namespace's namespace-wide one, for a pod in the root namespace).
func (j *transmissionJudgement) peerAuthenticationsOf(pod *corev1.Pod) (workload, namespace, mesh *securityv1.PeerAuthentication) {
	for _, pa := range j.f.peerAuthentications {
		sel := pa.Spec.GetSelector().GetMatchLabels()
		switch {
		case pa.Namespace == pod.Namespace && len(sel) > 0:
			if labels.SelectorFromSet(sel).Matches(labels.Set(pod.Labels)) {
				workload = older(workload, pa)
			}
		case pa.Namespace == pod.Namespace:
			namespace = older(namespace, pa)
		case pa.Namespace == istioRootNamespace:
			mesh = older(mesh, pa)
		}
	}
	if pod.Namespace == istioRootNamespace {
		mesh = namespace
	}
	return workload, namespace, mesh
}

// effectiveMTLSMode is the mode that holds for a pod's ports, given its
// PeerAuthentications from the least to the most specific (nil ones
// skipped): the most specific mode that is not UNSET, or PERMISSIVE, with
// what set it.
func effectiveMTLSMode(fromLeastSpecific ...*securityv1.PeerAuthentication) (securityapi.PeerAuthentication_MutualTLS_Mode, string) {
	mode, source := securityapi.PeerAuthentication_MutualTLS_PERMISSIVE, "no PeerAuthentication covers it and Istio's default is PERMISSIVE"
	for _, pa := range fromLeastSpecific {
		if pa == nil {
			continue
		}
		if m := pa.Spec.GetMtls().GetMode(); m != securityapi.PeerAuthentication_MutualTLS_UNSET {
			mode, source = m, fmt.Sprintf("%s by PeerAuthentication %s/%s", m, pa.Namespace, pa.Name)
		}
	}
	return mode, source
}

// weakPorts names, sorted, the ports a workload PeerAuthentication sets to
// PERMISSIVE or DISABLE; none for a nil one.
func weakPorts(workload *securityv1.PeerAuthentication) []string {
	if workload == nil {
		return nil
	}
	var weak []string
	for port, m := range workload.Spec.GetPortLevelMtls() {
		if m.GetMode() == securityapi.PeerAuthentication_MutualTLS_PERMISSIVE || m.GetMode() == securityapi.PeerAuthentication_MutualTLS_DISABLE {
			weak = append(weak, fmt.Sprintf("port %d %s by PeerAuthentication %s/%s", port, m.GetMode(), workload.Namespace, workload.Name))
		}
	}
	slices.Sort(weak)
	return weak
}

// older returns the older of two PeerAuthentications (Istio's tie-break), by
// creation time then name; a nil one loses.
func older(a, b *securityv1.PeerAuthentication) *securityv1.PeerAuthentication {
	if a == nil {
		return b
	}
	if b.CreationTimestamp.Before(&a.CreationTimestamp) ||
		(b.CreationTimestamp.Equal(&a.CreationTimestamp) && b.Name < a.Name) {
		return b
	}
	return a
}

// istioMeshed says whether a pod is in Istio's data plane: a sidecar (the
// container, or the injector's status annotation) or ambient mode (the pod's
// label, or its namespace's unless the pod opts out).
func istioMeshed(pod *corev1.Pod, nsLabels map[string]string) bool {
	if hasContainer(pod, istioProxyContainer) || pod.Annotations[istioSidecarStatus] != "" {
		return true
	}
	if mode, ok := pod.Labels[istioDataplaneMode]; ok {
		return mode == "ambient"
	}
	return nsLabels[istioDataplaneMode] == "ambient"
}

// linkerdInjected says whether Linkerd's proxy runs in the pod.
func linkerdInjected(pod *corev1.Pod) bool {
	return hasContainer(pod, linkerdProxyContainr) || pod.Annotations[linkerdProxyVersion] != ""
}

// hasContainer looks in containers and init containers (native sidecars).
func hasContainer(pod *corev1.Pod, name string) bool {
	is := func(c corev1.Container) bool { return c.Name == name }
	return slices.ContainsFunc(pod.Spec.Containers, is) || slices.ContainsFunc(pod.Spec.InitContainers, is)
}

// result: False with the first finding's reason and every finding named;
// Unknown when only what phiguard cannot read is left; True otherwise.
func (j *transmissionJudgement) result() Result {
	var status metav1.ConditionStatus
	var reason string
	var parts []string
	for _, r := range transmissionReasons {
		texts := j.findings[r]
		if len(texts) == 0 {
			continue
		}
		if reason == "" {
			reason, status = r, metav1.ConditionFalse
			if r == phiguardv1alpha1.ReasonRouteParentNotJudged {
				status = metav1.ConditionUnknown
			}
		}
		parts = append(parts, strings.Join(named(texts), "; ")+fix(r))
	}
	if reason != "" {
		return Result{Status: status, Reason: reason, Message: j.withNote(strings.Join(parts, "; "))}
	}
	edge := "nothing exposes the pods outside the cluster (no Ingress, Gateway API route, or LoadBalancer, NodePort or externalIPs Service to them)"
	if len(j.edge) > 0 {
		edge = strings.Join(j.edge, ", ")
	}
	if j.f.routes == nil {
		edge += " (Gateway API is not installed, so no route can reach them)"
	}
	var inside []string
	for _, how := range slices.Sorted(maps.Keys(j.inside)) {
		inside = append(inside, fmt.Sprintf("%d %s", len(j.inside[how]), how))
	}
	return Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonEncryptedInTransit,
		Message: j.withNote(fmt.Sprintf("at the edge: %s; inside the cluster the %d selected pods are encrypted: %s",
			edge, len(j.f.pods), strings.Join(inside, ", ")))}
}

func (j *transmissionJudgement) withNote(msg string) string {
	if j.f.note != "" {
		return msg + " (" + j.f.note + ")"
	}
	return msg
}

// fix says what to do about a finding of the edge.
func fix(reason string) string {
	switch reason {
	case phiguardv1alpha1.ReasonIngressWithoutTLS:
		return ": list each host in the Ingress's spec.tls with a certificate Secret, and route by host"
	case phiguardv1alpha1.ReasonRouteOnPlainListener:
		return ": attach the route to an HTTPS or TLS listener only (parentRef sectionName)"
	case phiguardv1alpha1.ReasonServiceExposedWithoutTLS:
		return fmt.Sprintf(": serve TLS on each port and declare it with appProtocol (%s), or expose the pods through a TLS-terminating Ingress or Gateway instead",
			strings.Join(tlsAppProtocols, ", "))
	}
	return ""
}
