package safeguard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/ssa"
)

// TransmissionSecurity reports whether traffic to the selected pods is
// encrypted in transit (HIPAA §164.312(e)(1), §164.312(e)(2)(ii), Addressable),
// at the edge and inside the cluster.
//
// At the edge, every way in from outside that reaches a Service selecting the
// pods must terminate TLS: an Ingress must list each such host in spec.tls;
// an HTTPRoute or GRPCRoute must attach only to HTTPS or TLS listeners of its
// Gateways; a LoadBalancer or NodePort Service (or one with externalIPs) must
// declare TLS on every port (tlsAppProtocols). TLSRoutes attach only to TLS
// listeners by definition and are not read; TCPRoutes and UDPRoutes are not
// judged.
//
// Inside the cluster each pod must be encrypted: in Istio's mesh (a sidecar,
// or ambient) under a PeerAuthentication in mode STRICT, in Linkerd's (whose
// mTLS is on for every meshed TCP connection), or, without a mesh, behind
// Services that declare TLS on every port. Enforce applies a STRICT
// PeerAuthentication for the workload while Istio is served; other modes
// delete it. Nothing else is changed: the edge can only be reported.
type TransmissionSecurity struct{}

// What TransmissionSecurity reads and writes.
// +kubebuilder:rbac:groups=networking.k8s.io,resources=ingresses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=services;namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=gateways;httproutes;grpcroutes,verbs=get;list;watch
// +kubebuilder:rbac:groups=security.istio.io,resources=peerauthentications,verbs=get;list;watch;create;patch;delete

// kindService is a Service's kind, as admission requests and Gateway API
// backend and parent references spell it.
const kindService = "Service"

// istioRootNamespace is Istio's default root namespace, where a
// PeerAuthentication without a selector applies to the whole mesh.
const istioRootNamespace = "istio-system"

// The inputs of TransmissionSecurity. Ingresses, Services and routes are only
// judged: Shared.
var (
	// Ingresses are the Ingresses in the workload's namespace.
	Ingresses = ListIn("Ingresses", Shared, func(l *networkingv1.IngressList) []networkingv1.Ingress { return l.Items })
	// Services are the Services in the workload's namespace.
	Services = ListIn("Services", Shared, func(l *corev1.ServiceList) []corev1.Service { return l.Items })
	// WorkloadNamespace is the workload's Namespace (its labels); nil if it is
	// gone. One Get, which Sharing does not change: Copied.
	WorkloadNamespace = &InputOf[*corev1.Namespace]{Name: "the workload's Namespace", Sharing: Copied, Read: readWorkloadNamespace}
	// GatewayRoutes are the Gateway API routes to Services in the workload's
	// namespace and their Gateways; nil while Gateway API is not served.
	GatewayRoutes = &InputOf[*Routes]{Name: "Gateway API routes", API: optionalapi.GatewayAPI, Sharing: Shared, Read: readRoutes}
	// PeerAuthentications are Istio's PeerAuthentications in the workload's
	// namespace and in Istio's root namespace; nil while Istio is not served.
	// Copied: Istio's lists hold pointers, so an item would be the cache's
	// object itself, and enforce encodes phiguard's stored one through
	// protobuf reflection, which records its message info in the message (a
	// write). They are few: those of two namespaces.
	PeerAuthentications = &InputOf[[]*securityv1.PeerAuthentication]{Name: "PeerAuthentications", API: optionalapi.Istio,
		Sharing: Copied, Read: readPeerAuthentications}
)

// Routes are the HTTPRoutes and GRPCRoutes, in any namespace, whose
// backendRefs name a Service in the workload's namespace, with the Gateways
// they name as parents.
type Routes struct {
	Routes []Route
	// Gateways are the parent Gateways by namespace/name; one that does not
	// exist is absent (a route attached to nothing carries no traffic).
	Gateways map[types.NamespacedName]*gatewayv1.Gateway
}

// Route is an HTTPRoute or GRPCRoute, reduced to what the judgment needs.
type Route struct {
	Kind       string
	Namespace  string
	Name       string
	ParentRefs []gatewayv1.ParentReference
	// Backends are the Services its rules send to, by namespace/name.
	Backends []types.NamespacedName
}

// Name implements Safeguard.
func (TransmissionSecurity) Name() phiguardv1alpha1.SafeguardName {
	return phiguardv1alpha1.TransmissionSecure
}

// Rule implements Safeguard.
func (TransmissionSecurity) Rule() Rule {
	// Proposed: §164.312(g), transmission security; the encryption in transit
	// it checks is also asked by §164.312(b)(2).
	return Rule{Section: "§164.312(e)(2)(ii)", Specification: phiguardv1alpha1.Addressable,
		ProposedSection: "§164.312(g)",
		Summary:         "traffic to ePHI pods is encrypted in transit"}
}

// Defaults implements Safeguard: Enforce.
func (TransmissionSecurity) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeEnforce}
}

// AddToScheme implements SchemeAdder: Gateway API's and Istio's typed kinds.
func (TransmissionSecurity) AddToScheme(s *runtime.Scheme) error {
	if err := gatewayv1.Install(s); err != nil {
		return fmt.Errorf("adding Gateway API's kinds: %w", err)
	}
	if err := securityv1.AddToScheme(s); err != nil {
		return fmt.Errorf("adding Istio's security kinds: %w", err)
	}
	return nil
}

// Inputs implements Reader.
func (TransmissionSecurity) Inputs() []Input {
	return []Input{Ingresses, Services, WorkloadNamespace, GatewayRoutes, PeerAuthentications}
}

// Watches implements Watcher. Ingresses, Services and PeerAuthentications
// re-judge the workloads of their namespace (a mesh-wide PeerAuthentication,
// every workload); a route, the workloads of the namespaces it sends to; a
// Gateway, every workload (routes anywhere may attach to it); a Namespace's
// labels (ambient mode), its workloads. Status-only writes are ignored.
func (TransmissionSecurity) Watches() []Watch {
	inNamespace := func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
		return w.In(ctx, obj.GetNamespace())
	}
	spec := []predicate.Predicate{predicate.GenerationChangedPredicate{}}
	return []Watch{
		{Object: &networkingv1.Ingress{}, Map: inNamespace, Predicates: spec},
		{Object: &corev1.Service{}, Map: inNamespace},
		{Object: &corev1.Namespace{}, Predicates: []predicate.Predicate{predicate.LabelChangedPredicate{}},
			Map: func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
				return w.In(ctx, obj.GetName())
			}},
		{Object: &gatewayv1.HTTPRoute{}, API: optionalapi.GatewayAPI, Map: workloadsOfRoute, Predicates: spec},
		{Object: &gatewayv1.GRPCRoute{}, API: optionalapi.GatewayAPI, Map: workloadsOfRoute, Predicates: spec},
		{Object: &gatewayv1.Gateway{}, API: optionalapi.GatewayAPI, Predicates: spec,
			Map: func(ctx context.Context, w Workloads, _ client.Object) []reconcile.Request { return w.In(ctx, "") }},
		{Object: &securityv1.PeerAuthentication{}, API: optionalapi.Istio, Predicates: spec,
			Map: func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
				if obj.GetNamespace() == istioRootNamespace {
					return w.In(ctx, "")
				}
				return w.In(ctx, obj.GetNamespace())
			}},
	}
}

// workloadsOfRoute maps a route to the workloads of each namespace it sends to.
func workloadsOfRoute(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
	r, ok := routeOf(obj)
	if !ok {
		return nil
	}
	var out []reconcile.Request
	var seen []string
	for _, b := range r.Backends {
		if !slices.Contains(seen, b.Namespace) {
			seen = append(seen, b.Namespace)
			out = append(out, w.In(ctx, b.Namespace)...)
		}
	}
	return out
}

func readWorkloadNamespace(ctx context.Context, r client.Reader, s *Scope) (*corev1.Namespace, error) {
	var ns corev1.Namespace
	if err := r.Get(ctx, types.NamespacedName{Name: s.Workload.Namespace}, &ns); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading namespace %s: %w", s.Workload.Namespace, err)
	}
	return &ns, nil
}

// readRoutes lists routes in every namespace (a route elsewhere reaches the
// workload's Services through a ReferenceGrant, which is not read: such a
// route counts as if granted) and reads the Gateways they name.
func readRoutes(ctx context.Context, r client.Reader, s *Scope) (*Routes, error) {
	var httpRoutes gatewayv1.HTTPRouteList
	if err := r.List(ctx, &httpRoutes); err != nil {
		return nil, fmt.Errorf("listing HTTPRoutes: %w", err)
	}
	var grpcRoutes gatewayv1.GRPCRouteList
	if err := r.List(ctx, &grpcRoutes); err != nil {
		return nil, fmt.Errorf("listing GRPCRoutes: %w", err)
	}
	objs := make([]client.Object, 0, len(httpRoutes.Items)+len(grpcRoutes.Items))
	for i := range httpRoutes.Items {
		objs = append(objs, &httpRoutes.Items[i])
	}
	for i := range grpcRoutes.Items {
		objs = append(objs, &grpcRoutes.Items[i])
	}
	out := &Routes{Gateways: map[types.NamespacedName]*gatewayv1.Gateway{}}
	for _, obj := range objs {
		route, _ := routeOf(obj)
		if !slices.ContainsFunc(route.Backends, func(b types.NamespacedName) bool { return b.Namespace == s.Workload.Namespace }) {
			continue
		}
		out.Routes = append(out.Routes, route)
		for _, p := range route.ParentRefs {
			key, ok := gatewayKey(route, p)
			if !ok {
				continue
			}
			if _, seen := out.Gateways[key]; seen {
				continue
			}
			var gw gatewayv1.Gateway
			switch err := r.Get(ctx, key, &gw); {
			case apierrors.IsNotFound(err):
				out.Gateways[key] = nil
			case err != nil:
				return nil, fmt.Errorf("reading Gateway %s: %w", key, err)
			default:
				out.Gateways[key] = &gw
			}
		}
	}
	for k, gw := range out.Gateways {
		if gw == nil {
			delete(out.Gateways, k)
		}
	}
	return out, nil
}

// routeOf reduces an HTTPRoute or GRPCRoute to a Route.
func routeOf(obj client.Object) (Route, bool) {
	r := Route{Namespace: obj.GetNamespace(), Name: obj.GetName()}
	var refs []gatewayv1.BackendObjectReference
	switch o := obj.(type) {
	case *gatewayv1.HTTPRoute:
		r.Kind, r.ParentRefs = "HTTPRoute", o.Spec.ParentRefs
		for _, rule := range o.Spec.Rules {
			for _, b := range rule.BackendRefs {
				refs = append(refs, b.BackendObjectReference)
			}
		}
	case *gatewayv1.GRPCRoute:
		r.Kind, r.ParentRefs = "GRPCRoute", o.Spec.ParentRefs
		for _, rule := range o.Spec.Rules {
			for _, b := range rule.BackendRefs {
				refs = append(refs, b.BackendObjectReference)
			}
		}
	default:
		return r, false
	}
	for _, b := range refs {
		if ptr.Deref(b.Group, "") != "" || ptr.Deref(b.Kind, kindService) != kindService {
			continue // not a Service
		}
		key := types.NamespacedName{Namespace: string(ptr.Deref(b.Namespace, gatewayv1.Namespace(r.Namespace))), Name: string(b.Name)}
		if !slices.Contains(r.Backends, key) {
			r.Backends = append(r.Backends, key)
		}
	}
	return r, true
}

// gatewayKey is the Gateway a parentRef names, or false for another kind of parent.
func gatewayKey(r Route, p gatewayv1.ParentReference) (types.NamespacedName, bool) {
	if ptr.Deref(p.Group, gatewayv1.GroupName) != gatewayv1.GroupName || ptr.Deref(p.Kind, "Gateway") != "Gateway" {
		return types.NamespacedName{}, false
	}
	return types.NamespacedName{Namespace: string(ptr.Deref(p.Namespace, gatewayv1.Namespace(r.Namespace))), Name: string(p.Name)}, true
}

func readPeerAuthentications(ctx context.Context, r client.Reader, s *Scope) ([]*securityv1.PeerAuthentication, error) {
	var out []*securityv1.PeerAuthentication
	for _, ns := range []string{s.Workload.Namespace, istioRootNamespace} {
		if ns == istioRootNamespace && s.Workload.Namespace == istioRootNamespace {
			break
		}
		var list securityv1.PeerAuthenticationList
		if err := r.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing PeerAuthentications in %s: %w", ns, err)
		}
		out = append(out, list.Items...)
	}
	return out, nil
}

// PeerAuthenticationName is the name of phiguard's PeerAuthentication for a workload.
func PeerAuthenticationName(w *phiguardv1alpha1.PHIWorkload) string {
	return "phiguard-" + w.Name
}

// Reconcile implements Safeguard.
func (t TransmissionSecurity) Reconcile(ctx context.Context, s *Scope) Result {
	for _, api := range []*optionalapi.API{optionalapi.GatewayAPI, optionalapi.Istio} {
		if s.API(api) == optionalapi.Pending {
			r, _ := APINotServed(s, api)
			return r
		}
	}
	f := transmissionFacts{
		namespace: s.Workload.Namespace, pods: s.Pods, services: Services.Get(s), ingresses: Ingresses.Get(s),
		routes: GatewayRoutes.Get(s), istio: s.API(optionalapi.Istio) == optionalapi.Served,
		peerAuthentications: PeerAuthentications.Get(s),
	}
	if ns := WorkloadNamespace.Get(s); ns != nil {
		f.namespaceLabels = ns.Labels
	}
	var events []Event
	if f.istio {
		var err error
		if s.Mode(t.Name()) == phiguardv1alpha1.ModeEnforce {
			events, err = t.enforce(ctx, s, &f)
		} else {
			events, err = t.removeOwned(ctx, s, &f)
		}
		if err != nil {
			return Result{Err: err, Events: events}
		}
	}
	r := judgeTransmission(f)
	r.Events = events
	return NoPods(s, r)
}

// enforce applies the workload's STRICT PeerAuthentication when the fields
// phiguard owns differ from it, and puts the applied object in f in place of
// the stored one.
func (t TransmissionSecurity) enforce(ctx context.Context, s *Scope, f *transmissionFacts) ([]Event, error) {
	name := PeerAuthenticationName(s.Workload)
	i := slices.IndexFunc(f.peerAuthentications, func(pa *securityv1.PeerAuthentication) bool {
		return pa.Namespace == s.Workload.Namespace && pa.Name == name
	})
	var existing *securityv1.PeerAuthentication
	if i >= 0 {
		existing = f.peerAuthentications[i]
		if !metav1.IsControlledBy(existing, s.Workload) {
			f.nameTaken = name
			return nil, nil
		}
	}
	sel := s.Workload.Spec.Selector
	if len(sel.MatchLabels) == 0 && len(sel.MatchExpressions) > 0 {
		// A PeerAuthentication selects by labels only; namespace-wide would
		// reach pods the workload does not select.
		f.note = "phiguard applies no PeerAuthentication: one selects by matchLabels only, and spec.selector has none"
		return nil, nil
	}
	desired := desiredPeerAuthentication(s.Workload)
	var stored client.Object
	if existing != nil {
		u, err := toUnstructured(existing, securityv1.SchemeGroupVersion.WithKind("PeerAuthentication"))
		if err != nil {
			return nil, err
		}
		stored = u
	}
	changed, err := ssa.Apply(ctx, s.Client, stored, client.ApplyConfigurationFromUnstructured(desired), ssa.Unstructured)
	if err != nil || !changed {
		return nil, err
	}
	// Apply decoded the stored object into desired: judge that one.
	applied := &securityv1.PeerAuthentication{}
	if err := fromUnstructured(desired, applied); err != nil {
		return nil, err
	}
	if i >= 0 {
		f.peerAuthentications = slices.Clone(f.peerAuthentications)
		f.peerAuthentications[i] = applied
	} else {
		f.peerAuthentications = append(slices.Clone(f.peerAuthentications), applied)
	}
	event := Event{Reason: phiguardv1alpha1.ReasonPeerAuthenticationCreated,
		Message: fmt.Sprintf("created PeerAuthentication %s (mtls STRICT) for the selected pods", name)}
	if existing != nil {
		event = Event{Reason: phiguardv1alpha1.ReasonPeerAuthenticationUpdated, Message: "updated PeerAuthentication " + name + " to follow the spec"}
		if others := otherManagers(existing.ManagedFields); len(others) > 0 {
			event = Event{Warning: true, Reason: phiguardv1alpha1.ReasonPeerAuthenticationDrifted,
				Message: fmt.Sprintf("reverted changes that %s made to PeerAuthentication %s", strings.Join(others, ", "), name)}
		}
	}
	event.Related = reference(securityv1.SchemeGroupVersion.String(), "PeerAuthentication", applied)
	return []Event{event}, nil
}

// removeOwned deletes the PeerAuthentications this workload controls (the
// mode left Enforce) and takes them out of f.
func (t TransmissionSecurity) removeOwned(ctx context.Context, s *Scope, f *transmissionFacts) ([]Event, error) {
	var events []Event
	var kept []*securityv1.PeerAuthentication
	for _, pa := range f.peerAuthentications {
		if !metav1.IsControlledBy(pa, s.Workload) {
			kept = append(kept, pa)
			continue
		}
		if err := s.Client.Delete(ctx, pa, client.Preconditions{UID: &pa.UID}); err != nil && !apierrors.IsNotFound(err) {
			return events, fmt.Errorf("removing PeerAuthentication %s: %w", pa.Name, err)
		}
		events = append(events, Event{Reason: phiguardv1alpha1.ReasonPeerAuthenticationRemoved,
			Message: fmt.Sprintf("removed PeerAuthentication %s: mTLS STRICT is no longer enforced (mode %s)", pa.Name, s.Mode(t.Name())),
			Related: reference(securityv1.SchemeGroupVersion.String(), "PeerAuthentication", pa)})
	}
	f.peerAuthentications = kept
	return events, nil
}

// desiredPeerAuthentication is phiguard's PeerAuthentication for a workload:
// mtls STRICT for the pods its matchLabels select (the whole namespace for an
// empty selector), owned by the workload. Unstructured, as Istio's apply
// configurations have no Extract function for ssa.Apply to compare with.
func desiredPeerAuthentication(w *phiguardv1alpha1.PHIWorkload) *unstructured.Unstructured {
	spec := map[string]any{"mtls": map[string]any{"mode": "STRICT"}}
	if len(w.Spec.Selector.MatchLabels) > 0 {
		labels := map[string]any{}
		for k, v := range w.Spec.Selector.MatchLabels {
			labels[k] = v
		}
		spec["selector"] = map[string]any{"matchLabels": labels}
	}
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetGroupVersionKind(securityv1.SchemeGroupVersion.WithKind("PeerAuthentication"))
	u.SetNamespace(w.Namespace)
	u.SetName(PeerAuthenticationName(w))
	u.SetLabels(ownedLabels(w))
	u.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: phiguardv1alpha1.GroupVersion.String(), Kind: kindPHIWorkload,
		Name: w.Name, UID: w.UID, Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}})
	return u
}

// toUnstructured encodes a typed object as the apiserver would (Istio's
// specs are protobuf messages with their own JSON encoding).
func toUnstructured(obj client.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(data, &u.Object); err != nil {
		return nil, fmt.Errorf("decoding %s %s: %w", gvk.Kind, obj.GetName(), err)
	}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

func fromUnstructured(u *unstructured.Unstructured, out client.Object) error {
	data, err := u.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encoding %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding %s %s: %w", u.GetKind(), u.GetName(), err)
	}
	return nil
}

// otherManagers are the field managers other than phiguard that wrote spec.
func otherManagers(fields []metav1.ManagedFieldsEntry) []string {
	var out []string
	for _, mf := range fields {
		if mf.Manager == ssa.FieldManager || mf.FieldsV1 == nil {
			continue
		}
		if strings.Contains(mf.FieldsV1.GetRawString(), `"f:spec"`) && !slices.Contains(out, mf.Manager) {
			out = append(out, mf.Manager)
		}
	}
	return out
}
