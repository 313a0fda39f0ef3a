package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
)

var txLabels = map[string]string{"app": "records"}

func txPod(name string, mutate func(*corev1.Pod)) corev1.Pod {
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name, Labels: map[string]string{"app": "records"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	if mutate != nil {
		mutate(&p)
	}
	return p
}

func withContainer(name string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: name}) }
}

// txService is a Service selecting app=records with the given appProtocols, one port each.
func txService(name string, typ corev1.ServiceType, appProtocols ...string) corev1.Service {
	svc := corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: txLabels}}
	for i, ap := range appProtocols {
		port := corev1.ServicePort{Port: int32(8443 + i)}
		if ap != "" {
			port.AppProtocol = ptr.To(ap)
		}
		svc.Spec.Ports = append(svc.Spec.Ports, port)
	}
	return svc
}

func txIngress(name, host, service string, tlsHosts ...string) networkingv1.Ingress {
	ing := networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name},
		Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{{Host: host,
			IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{
				Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix),
				Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: service, Port: networkingv1.ServiceBackendPort{Number: 8443}}},
			}}}},
		}}}}
	if len(tlsHosts) > 0 {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: tlsHosts, SecretName: "cert"}}
	}
	return ing
}

func txGateway(listeners ...gatewayv1.Listener) *gatewayv1.Gateway {
	return &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: "infra", Name: "public"},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "example", Listeners: listeners}}
}

func allNamespaces(l gatewayv1.Listener) gatewayv1.Listener {
	l.AllowedRoutes = &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}}
	return l
}

var (
	httpListener  = allNamespaces(gatewayv1.Listener{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType})
	httpsListener = allNamespaces(gatewayv1.Listener{Name: "https", Port: 443, Protocol: gatewayv1.HTTPSProtocolType})
)

func txRoutes(gw *gatewayv1.Gateway, parents ...gatewayv1.ParentReference) *Routes {
	r := &Routes{Gateways: map[types.NamespacedName]*gatewayv1.Gateway{{Namespace: gw.Namespace, Name: gw.Name}: gw}}
	r.Routes = []Route{{Kind: "HTTPRoute", Namespace: "clinic", Name: "web", ParentRefs: parents,
		Backends: []types.NamespacedName{{Namespace: "clinic", Name: "records"}}}}
	return r
}

func toGateway(section string) gatewayv1.ParentReference {
	p := gatewayv1.ParentReference{Namespace: ptr.To[gatewayv1.Namespace]("infra"), Name: "public"}
	if section != "" {
		p.SectionName = ptr.To(gatewayv1.SectionName(section))
	}
	return p
}

func txPeerAuthentication(ns, name string, selector map[string]string, mode securityapi.PeerAuthentication_MutualTLS_Mode, age time.Duration) *securityv1.PeerAuthentication {
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
		CreationTimestamp: metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(-age))}}
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: mode}
	if selector != nil {
		pa.Spec.Selector = &typeapi.WorkloadSelector{MatchLabels: selector}
	}
	return pa
}

const (
	strict     = securityapi.PeerAuthentication_MutualTLS_STRICT
	permissive = securityapi.PeerAuthentication_MutualTLS_PERMISSIVE
	unset      = securityapi.PeerAuthentication_MutualTLS_UNSET
)

// A TLS-declaring ClusterIP Service: the pods are encrypted without a mesh.
var tlsService = txService("records", corev1.ServiceTypeClusterIP, "https")

func TestJudgeTransmission(t *testing.T) {
	meshed := []corev1.Pod{txPod("records-0", withContainer("istio-proxy"))}
	for _, tc := range []struct {
		name    string
		facts   transmissionFacts
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{
			name:   "no mesh, a ClusterIP Service declaring TLS, nothing at the edge",
			facts:  transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, services: []corev1.Service{tlsService}, routes: &Routes{}},
			status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonEncryptedInTransit,
			message: "at the edge: nothing exposes the pods outside the cluster (no Ingress, Gateway API route, or LoadBalancer, NodePort or externalIPs Service to them); " +
				"inside the cluster the 1 selected pods are encrypted: 1 by TLS their Services declare on every port (records)",
		},
		{
			name: "an Ingress listing its host in spec.tls (a wildcard), Gateway API absent",
			facts: transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, services: []corev1.Service{tlsService},
				ingresses: []networkingv1.Ingress{txIngress("web", "records.clinic.example", "records", "*.clinic.example")}},
			status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonEncryptedInTransit,
			message: "at the edge: 1 Ingress hosts terminate TLS (Gateway API is not installed, so no route can reach them); " +
				"inside the cluster the 1 selected pods are encrypted: 1 by TLS their Services declare on every port (records)",
		},
		{
			name: "an Ingress whose spec.tls does not list the host",
			facts: transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, services: []corev1.Service{tlsService},
				ingresses: []networkingv1.Ingress{txIngress("web", "records.clinic.example", "records", "other.clinic.example"),
					txIngress("unrelated", "other.example", "billing")}},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIngressWithoutTLS,
			message: "Ingress web serves host records.clinic.example (to Service records) without TLS: spec.tls does not list it" +
				": list each host in the Ingress's spec.tls with a certificate Secret, and route by host",
		},
		{
			name: "an Ingress rule without a host",
			facts: transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, services: []corev1.Service{tlsService},
				ingresses: []networkingv1.Ingress{txIngress("web", "", "records", "records.clinic.example")}},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIngressWithoutTLS,
			message: "Ingress web has a rule without a host to Service records, which spec.tls cannot cover" +
				": list each host in the Ingress's spec.tls with a certificate Secret, and route by host",
		},
		{
			name: "a route without sectionName attaches to the Gateway's HTTP listener too",
			facts: transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, services: []corev1.Service{tlsService},
				routes: txRoutes(txGateway(httpListener, httpsListener), toGateway(""))},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonRouteOnPlainListener,
			message: "HTTPRoute clinic/web (to Service records) attaches to listener http (HTTP, port 80) of Gateway infra/public" +
				": attach the route to an HTTPS or TLS listener only (parentRef sectionName)",
		},
		{
			name: "a route attached by sectionName to the HTTPS listener only",
			facts: transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, services: []corev1.Service{tlsService},
				routes: txRoutes(txGateway(httpListener, httpsListener), toGateway("https"))},
			status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonEncryptedInTransit,
			message: "at the edge: 1 Gateway API routes attach only to HTTPS or TLS listeners; " +
				"inside the cluster the 1 selected pods are encrypted: 1 by TLS their Services declare on every port (records)",
		},
		{
			name: "an HTTP listener that allows routes of its own namespace only does not take the route",
			facts: transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, services: []corev1.Service{tlsService},
				routes: txRoutes(txGateway(gatewayv1.Listener{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType}, httpsListener), toGateway(""))},
			status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonEncryptedInTransit,
			message: "at the edge: 1 Gateway API routes attach only to HTTPS or TLS listeners; " +
				"inside the cluster the 1 selected pods are encrypted: 1 by TLS their Services declare on every port (records)",
		},
		{
			name: "a route to a ListenerSet cannot be judged",
			facts: transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, services: []corev1.Service{tlsService},
				routes: txRoutes(txGateway(httpsListener), gatewayv1.ParentReference{Kind: ptr.To[gatewayv1.Kind]("ListenerSet"), Name: "extra"})},
			status: metav1.ConditionUnknown, reason: phiguardv1alpha1.ReasonRouteParentNotJudged,
			message: "HTTPRoute clinic/web (to Service records) attaches to ListenerSet extra, which phiguard does not read",
		},
		{
			name: "a LoadBalancer Service with a port not declared TLS (h2c is not TLS)",
			facts: transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)},
				services: []corev1.Service{tlsService, txService("records-lb", corev1.ServiceTypeLoadBalancer, "https", "kubernetes.io/h2c")}},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonServiceExposedWithoutTLS,
			message: "Service records-lb (LoadBalancer) exposes port 8444 (appProtocol kubernetes.io/h2c)" +
				": serve TLS on each port and declare it with appProtocol (https, tls, kubernetes.io/wss), or expose the pods through a TLS-terminating Ingress or Gateway instead; " +
				"no service mesh encrypts the traffic of pods records-0 (Istio is not installed, no linkerd-proxy) and their Services do not declare TLS on every port " +
				"(Service records-lb port 8444 (appProtocol kubernetes.io/h2c)); install a mesh with mTLS (Istio with a STRICT PeerAuthentication, or Linkerd), or serve TLS and declare it with appProtocol (https, tls, kubernetes.io/wss). " +
				"If the traffic is protected another way, an Addressable decision (transmissionSecurity.mode Off with a documented decision) is the honest answer",
		},
		{
			name:   "no mesh, a Service without TLS",
			facts:  transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, services: []corev1.Service{txService("records", corev1.ServiceTypeClusterIP, "")}},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonNoInClusterEncryption,
			message: "no service mesh encrypts the traffic of pods records-0 (Istio is not installed, no linkerd-proxy) and their Services do not declare TLS on every port " +
				"(Service records port 8443 (appProtocol unset)); install a mesh with mTLS (Istio with a STRICT PeerAuthentication, or Linkerd), or serve TLS and declare it with appProtocol (https, tls, kubernetes.io/wss). " +
				"If the traffic is protected another way, an Addressable decision (transmissionSecurity.mode Off with a documented decision) is the honest answer",
		},
		{
			name:   "Linkerd-injected pods are encrypted",
			facts:  transmissionFacts{pods: []corev1.Pod{txPod("records-0", withContainer("linkerd-proxy")), txPod("records-1", func(p *corev1.Pod) { p.Annotations = map[string]string{"linkerd.io/proxy-version": "edge-25.1.1"} })}},
			status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonEncryptedInTransit,
			message: "at the edge: nothing exposes the pods outside the cluster (no Ingress, Gateway API route, or LoadBalancer, NodePort or externalIPs Service to them) " +
				"(Gateway API is not installed, so no route can reach them); inside the cluster the 2 selected pods are encrypted: 2 by Linkerd's mTLS",
		},
		{
			name: "Istio: a namespace-wide STRICT PeerAuthentication",
			facts: transmissionFacts{pods: meshed, istio: true, routes: &Routes{},
				peerAuthentications: []*securityv1.PeerAuthentication{txPeerAuthentication("clinic", "default", nil, strict, 0)}},
			status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonEncryptedInTransit,
			message: "at the edge: nothing exposes the pods outside the cluster (no Ingress, Gateway API route, or LoadBalancer, NodePort or externalIPs Service to them); " +
				"inside the cluster the 1 selected pods are encrypted: 1 by Istio mTLS STRICT",
		},
		{
			name: "Istio: mesh-wide STRICT, ambient namespace",
			facts: transmissionFacts{pods: []corev1.Pod{txPod("records-0", nil)}, istio: true, routes: &Routes{},
				namespaceLabels:     map[string]string{"istio.io/dataplane-mode": "ambient"},
				peerAuthentications: []*securityv1.PeerAuthentication{txPeerAuthentication("istio-system", "default", nil, strict, 0)}},
			status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonEncryptedInTransit,
			message: "at the edge: nothing exposes the pods outside the cluster (no Ingress, Gateway API route, or LoadBalancer, NodePort or externalIPs Service to them); " +
				"inside the cluster the 1 selected pods are encrypted: 1 by Istio mTLS STRICT",
		},
		{
			name:   "Istio: no PeerAuthentication means PERMISSIVE",
			facts:  transmissionFacts{pods: meshed, istio: true, routes: &Routes{}},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonPeerAuthenticationPermissive,
			message: "pods not under Istio mTLS STRICT: records-0 (no PeerAuthentication covers it and Istio's default is PERMISSIVE); " +
				"apply a PeerAuthentication with mtls.mode STRICT for them (transmissionSecurity.mode Enforce does) and remove PERMISSIVE or DISABLE overrides",
		},
		{
			name: "Istio: the oldest workload PeerAuthentication wins over a newer STRICT one; UNSET inherits",
			facts: transmissionFacts{pods: meshed, istio: true, routes: &Routes{}, peerAuthentications: []*securityv1.PeerAuthentication{
				txPeerAuthentication("clinic", "phiguard-records", txLabels, strict, 0),
				txPeerAuthentication("clinic", "legacy", txLabels, unset, time.Hour),
				txPeerAuthentication("clinic", "default", nil, permissive, 2*time.Hour),
				txPeerAuthentication("istio-system", "default", nil, strict, 3*time.Hour),
			}},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonPeerAuthenticationPermissive,
			message: "pods not under Istio mTLS STRICT: records-0 (PERMISSIVE by PeerAuthentication clinic/default); " +
				"apply a PeerAuthentication with mtls.mode STRICT for them (transmissionSecurity.mode Enforce does) and remove PERMISSIVE or DISABLE overrides",
		},
		{
			name: "Istio: a port-level PERMISSIVE override",
			facts: transmissionFacts{pods: meshed, istio: true, routes: &Routes{}, peerAuthentications: []*securityv1.PeerAuthentication{
				func() *securityv1.PeerAuthentication {
					pa := txPeerAuthentication("clinic", "phiguard-records", txLabels, strict, 0)
					pa.Spec.PortLevelMtls = map[uint32]*securityapi.PeerAuthentication_MutualTLS{8080: {Mode: permissive}}
					return pa
				}(),
			}},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonPeerAuthenticationPermissive,
			message: "pods not under Istio mTLS STRICT: records-0 (port 8080 PERMISSIVE by PeerAuthentication clinic/phiguard-records); " +
				"apply a PeerAuthentication with mtls.mode STRICT for them (transmissionSecurity.mode Enforce does) and remove PERMISSIVE or DISABLE overrides",
		},
		{
			name: "Istio installed, a pod outside the mesh; an ambient opt-out counts as outside",
			facts: transmissionFacts{istio: true, routes: &Routes{}, namespaceLabels: map[string]string{"istio.io/dataplane-mode": "ambient"},
				pods:                []corev1.Pod{txPod("records-0", func(p *corev1.Pod) { p.Labels["istio.io/dataplane-mode"] = "none" })},
				peerAuthentications: []*securityv1.PeerAuthentication{txPeerAuthentication("clinic", "default", nil, strict, 0)}},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonPodsOutsideMesh,
			message: "pods outside the mesh: records-0 (no istio-proxy sidecar, not ambient, no linkerd-proxy) and no Service selects them; " +
				"inject Istio's sidecar (label the namespace istio-injection=enabled and restart them) or enrol them in ambient mode (istio.io/dataplane-mode=ambient)",
		},
		{
			name: "someone else's PeerAuthentication has phiguard's name",
			facts: transmissionFacts{pods: meshed, istio: true, routes: &Routes{}, nameTaken: "phiguard-records",
				peerAuthentications: []*securityv1.PeerAuthentication{txPeerAuthentication("clinic", "default", nil, strict, 0)}},
			status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonPeerAuthenticationNameTaken,
			message: "PeerAuthentication phiguard-records exists and is not phiguard's, so phiguard applies none: rename or delete it",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			tc.facts.namespace = "clinic"
			r := judgeTransmission(tc.facts)
			g.Expect(r.Status).To(Equal(tc.status))
			g.Expect(r.Reason).To(Equal(tc.reason))
			g.Expect(r.Message).To(Equal(tc.message))
		})
	}
}

func TestHostCovers(t *testing.T) {
	g := NewWithT(t)
	g.Expect(hostCovers("a.example.com", "a.example.com")).To(BeTrue())
	g.Expect(hostCovers("*.example.com", "a.example.com")).To(BeTrue())
	g.Expect(hostCovers("*.example.com", "a.b.example.com")).To(BeFalse(), "a wildcard covers one label")
	g.Expect(hostCovers("*.example.com", "example.com")).To(BeFalse())
	g.Expect(hostCovers("b.example.com", "a.example.com")).To(BeFalse())
}

// transmissionScope is a hand-built scope of a workload in Audit mode, with
// the optional APIs in the given states and nothing read.
func transmissionScope(gateway, istio optionalapi.State, pods ...corev1.Pod) *Scope {
	s := &Scope{Workload: &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: txLabels}}}, Pods: pods}
	s.Settings.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeAudit}
	s.SetAPI(optionalapi.GatewayAPI, gateway)
	s.SetAPI(optionalapi.Istio, istio)
	return s
}

// Neither optional API installed: the edge is Ingresses and Services, and
// without a mesh the pods need Services that declare TLS.
func TestTransmissionWithoutGatewayAPIOrIstio(t *testing.T) {
	g := NewWithT(t)
	s := transmissionScope(optionalapi.NotInstalled, optionalapi.NotInstalled, txPod("records-0", withContainer("istio-proxy")))
	Services.Set(s, []corev1.Service{txService("records", corev1.ServiceTypeClusterIP, "http")})
	r := TransmissionSecurity{}.Reconcile(t.Context(), s)
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonNoInClusterEncryption), "an Istio sidecar without Istio's API cannot be judged as mTLS")

	Services.Set(s, []corev1.Service{tlsService})
	r = TransmissionSecurity{}.Reconcile(t.Context(), s)
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Message).To(ContainSubstring("(Gateway API is not installed, so no route can reach them)"))
}

func TestTransmissionWhileAnAPIIsPending(t *testing.T) {
	g := NewWithT(t)
	r := TransmissionSecurity{}.Reconcile(t.Context(), transmissionScope(optionalapi.Pending, optionalapi.NotInstalled, txPod("records-0", nil)))
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonGatewayAPINotInstalled))
	g.Expect(r.RequeueAfter).To(Equal(2 * time.Second))

	r = TransmissionSecurity{}.Reconcile(t.Context(), transmissionScope(optionalapi.Served, optionalapi.Pending, txPod("records-0", nil)))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonIstioNotInstalled))
}

func TestTransmissionWithNoPodsIsUnknown(t *testing.T) {
	g := NewWithT(t)
	r := TransmissionSecurity{}.Reconcile(t.Context(), transmissionScope(optionalapi.NotInstalled, optionalapi.NotInstalled))
	g.Expect(r.Status).To(Equal(metav1.ConditionUnknown))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonNoPodsSelected))
}
