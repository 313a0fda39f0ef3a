package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	securityapi "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// newService stores a ClusterIP Service in ns selecting app=records, one port
// with appProtocol (none when empty).
func newService(t *testing.T, ns, name, appProtocol string) {
	t.Helper()
	port := corev1.ServicePort{Name: "web", Port: 8443, TargetPort: intstr.FromInt32(8443)}
	if appProtocol != "" {
		port.AppProtocol = ptr.To(appProtocol)
	}
	create(t, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "records"}, Ports: []corev1.ServicePort{port}}})
}

// Istio is served (its CRDs are installed in TestMain): Enforce applies a
// STRICT PeerAuthentication owned by the workload, judges the meshed pod
// under it, and a second pass writes nothing.
func TestTransmissionEnforceAppliesStrictPeerAuthenticationAndThenWritesNothing(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: "istio/proxyv2:1.28.0"})
	})
	c, writes := countingClient(t)

	r := TransmissionSecurity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue), r.Message)
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonEncryptedInTransit))
	g.Expect(r.Message).To(HaveSuffix("inside the cluster the 1 selected pods are encrypted: 1 by Istio mTLS STRICT"))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonPeerAuthenticationCreated}))
	g.Expect(writes.N()).To(Equal(int64(1)), "one apply")

	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "phiguard-records"}}
	get(t, pa)
	g.Expect(pa.Spec.GetMtls().GetMode()).To(Equal(securityapi.PeerAuthentication_MutualTLS_STRICT))
	g.Expect(pa.Spec.GetSelector().GetMatchLabels()).To(Equal(map[string]string{"app": "records"}))
	g.Expect(pa.OwnerReferences).To(Equal([]metav1.OwnerReference{{
		APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: "PHIWorkload", Name: "records", UID: w.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
	}}))
	g.Expect(pa.Labels).To(HaveKeyWithValue(phiguardv1alpha1.ManagedByLabel, phiguardv1alpha1.ManagedByValue))
	g.Expect(r.Events[0].Related).To(HaveValue(HaveField("ResourceVersion", pa.ResourceVersion)))

	again := TransmissionSecurity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(again.Err).NotTo(HaveOccurred())
	g.Expect(again.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(again.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(int64(1)), "a steady reconcile makes no write")

	// Someone loosens it: reverted, with a Warning.
	g.Expect(k8s.Patch(t.Context(), pa, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"mtls":{"mode":"PERMISSIVE"}}}`)),
		client.FieldOwner("kubectl-edit"))).To(Succeed())
	r = TransmissionSecurity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonPeerAuthenticationDrifted}))
	g.Expect(r.Events[0].Warning).To(BeTrue())
	get(t, pa)
	g.Expect(pa.Spec.GetMtls().GetMode()).To(Equal(securityapi.PeerAuthentication_MutualTLS_STRICT))

	// Audit deletes phiguard's own, and the pod is PERMISSIVE again.
	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeAudit}
	})
	r = TransmissionSecurity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPeerAuthenticationPermissive))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonPeerAuthenticationRemoved}))
	g.Expect(k8s.Get(t.Context(), client.ObjectKeyFromObject(pa), pa)).NotTo(Succeed())
}

// An Ingress that sends a host to the pods' Service without listing it in
// spec.tls is reported by name; listing it fixes it.
func TestTransmissionReportsAnIngressWithoutTLSForItsHost(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, nil)
	newService(t, ns, "records", "https")
	ing := txIngress("web", "records.clinic.example", "records")
	ing.Namespace = ns
	create(t, &ing)
	c, writes := countingClient(t)

	r := TransmissionSecurity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonIngressWithoutTLS))
	g.Expect(r.Message).To(HavePrefix("Ingress web serves host records.clinic.example (to Service records) without TLS: spec.tls does not list it"))
	g.Expect(r.Message).To(HaveSuffix("list each host in the Ingress's spec.tls with a certificate Secret, and route by host"),
		"the pod is outside Istio's mesh, but its only Service declares TLS")

	ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: []string{"records.clinic.example"}, SecretName: "records-cert"}}
	g.Expect(k8s.Update(t.Context(), &ing)).To(Succeed())
	r = TransmissionSecurity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue), r.Message)
	g.Expect(r.Message).To(Equal("at the edge: 1 Ingress hosts terminate TLS; " +
		"inside the cluster the 1 selected pods are encrypted: 1 by TLS their Services declare on every port (records)"))
	g.Expect(writes.N()).To(Equal(int64(1)), "only phiguard's PeerAuthentication (Istio is served)")
}

// Gateway API is served: an HTTPRoute in another namespace that attaches,
// with no sectionName, to a Gateway with an HTTP listener is reported.
func TestTransmissionReportsARouteOnAPlainListener(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	infra := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "records-0", map[string]string{"app": "records"}, func(p *corev1.Pod) {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "linkerd-proxy", Image: "cr.l5d.io/linkerd/proxy:edge"})
	})
	newService(t, ns, "records", "")
	all := &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromAll)}}
	create(t, &gatewayv1.Gateway{ObjectMeta: metav1.ObjectMeta{Namespace: infra, Name: "public"},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "example", Listeners: []gatewayv1.Listener{
			{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType, AllowedRoutes: all},
			{Name: "https", Port: 443, Protocol: gatewayv1.HTTPSProtocolType, AllowedRoutes: all,
				TLS: &gatewayv1.ListenerTLSConfig{CertificateRefs: []gatewayv1.SecretObjectReference{{Name: "cert"}}}},
		}}})
	route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{{Namespace: ptr.To(gatewayv1.Namespace(infra)), Name: "public"}}},
			Rules: []gatewayv1.HTTPRouteRule{{BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{Name: "records", Port: ptr.To[gatewayv1.PortNumber](8443)}}}}}},
		}}
	create(t, route)
	c, _ := countingClient(t)

	r := TransmissionSecurity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonRouteOnPlainListener))
	g.Expect(r.Message).To(Equal("HTTPRoute " + ns + "/web (to Service records) attaches to listener http (HTTP, port 80) of Gateway " + infra +
		"/public: attach the route to an HTTPS or TLS listener only (parentRef sectionName)"))

	route.Spec.ParentRefs[0].SectionName = ptr.To[gatewayv1.SectionName]("https")
	g.Expect(k8s.Update(t.Context(), route)).To(Succeed())
	r = TransmissionSecurity{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue), r.Message)
	g.Expect(r.Message).To(Equal("at the edge: 1 Gateway API routes attach only to HTTPS or TLS listeners; " +
		"inside the cluster the 1 selected pods are encrypted: 1 by Linkerd's mTLS"))
}
