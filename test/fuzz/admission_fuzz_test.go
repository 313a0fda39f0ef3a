package fuzz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/meta/testrestmapper"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/phiguard/phiguard/internal/manifests"
	"github.com/phiguard/phiguard/internal/metrics"
	"github.com/phiguard/phiguard/internal/safeguard"
	phiwebhook "github.com/phiguard/phiguard/internal/webhook"
)

// webhookManifests are the webhook configurations `make manifests`
// generates from the +kubebuilder:webhook markers.
const webhookManifests = "../../config/webhook/manifests.yaml"

// FuzzAdmission sends every admission webhook phiguard serves arbitrary
// objects, as the apiserver would: an AdmissionReview POSTed to the
// manager's webhook server, built as in production (webhook.Setup on a real
// manager and webhook server, counting decisions as the manager does), which
// decides from a fake cache of a little cluster (world_test.go). Which
// webhook, resource and operation, which namespace, user, dry run and world
// come from choices; the object (and the stored one of an update or delete)
// from the fuzz bytes, sent as they are or, as the apiserver sends them,
// decoded as their kind and encoded again. Every answer must be:
//   - HTTP 200 with an AdmissionReview whose response has the request's UID,
//     decided without a panic and without reading from the apiserver;
//   - a refusal with a message; no status 500 (the cache never fails here);
//   - from a validating webhook, no patch; from a mutating one, a JSON patch
//     that applies to the object and leaves one of its kind, which the
//     webhook, called again as the apiserver reinvokes it, leaves as it is;
//   - Events only outside dry runs, each one the events API accepts.
func FuzzAdmission(f *testing.F) {
	h, err := newAdmissionHarness()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range admissionSeeds(h.routes) {
		f.Add(seed.choices, seed.object, seed.old)
	}
	f.Fuzz(func(t *testing.T, choices uint32, object, old []byte) {
		h.check(t, newCall(h.routes, choices, object, old))
	})
}

// route is one resource and operation one webhook of the configurations
// receives.
type route struct {
	// webhook is the webhook's name in its configuration.
	webhook  string
	path     string
	mutating bool
	resource schema.GroupVersionResource
	// subresource is empty for the resource itself.
	subresource string
	// kind is the kind of the request's object.
	kind       schema.GroupVersionKind
	namespaced bool
	operation  admissionv1.Operation
}

func (r route) String() string {
	res := r.resource.Resource
	if r.subresource != "" {
		res += "/" + r.subresource
	}
	return fmt.Sprintf("%s %s %s (%s)", r.operation, res, r.path, r.webhook)
}

// connectKinds are the kinds of the objects a CONNECT to a pod's
// subresource carries: its options.
var connectKinds = map[string]string{"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions"}

// loadRoutes reads the webhook configurations and lists each resource and
// operation of each webhook; mapper gives each resource's kind and scope.
func loadRoutes(mapper meta.RESTMapper) ([]route, error) {
	data, err := os.ReadFile(webhookManifests)
	if err != nil {
		return nil, fmt.Errorf("reading the webhook configurations: %w", err)
	}
	objs, err := manifests.Decode(bytes.NewReader(data), webhookManifests)
	if err != nil {
		return nil, err
	}
	t := &routeTable{mapper: mapper}
	for _, u := range objs {
		switch u.GetKind() {
		case "MutatingWebhookConfiguration":
			var c admissionregistrationv1.MutatingWebhookConfiguration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &c); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", u.GetName(), err)
			}
			for _, w := range c.Webhooks {
				if err := t.add(w.Name, true, w.ClientConfig, w.Rules); err != nil {
					return nil, err
				}
			}
		case "ValidatingWebhookConfiguration":
			var c admissionregistrationv1.ValidatingWebhookConfiguration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &c); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", u.GetName(), err)
			}
			for _, w := range c.Webhooks {
				if err := t.add(w.Name, false, w.ClientConfig, w.Rules); err != nil {
					return nil, err
				}
			}
		}
	}
	return t.routes, nil
}

// routeTable collects the routes of the webhook configurations.
type routeTable struct {
	mapper meta.RESTMapper
	routes []route
}

// add lists the routes of one webhook's rules.
func (t *routeTable) add(name string, mutating bool, cc admissionregistrationv1.WebhookClientConfig, rules []admissionregistrationv1.RuleWithOperations) error {
	if cc.Service == nil || cc.Service.Path == nil {
		return fmt.Errorf("webhook %s has no service path", name)
	}
	for _, rule := range rules {
		n := len(t.routes)
		if err := t.addRule(name, *cc.Service.Path, mutating, rule); err != nil {
			return err
		}
		if len(t.routes) == n {
			return fmt.Errorf("webhook %s has a rule that matches no resource the scheme knows: %+v", name, rule)
		}
	}
	return nil
}

// addRule lists the routes of one rule: every combination of its groups,
// versions, resources and operations; only those that exist reach the webhook.
func (t *routeTable) addRule(name, path string, mutating bool, rule admissionregistrationv1.RuleWithOperations) error {
	for _, g := range rule.APIGroups {
		for _, v := range rule.APIVersions {
			for _, res := range rule.Resources {
				for _, op := range rule.Operations {
					r, err := newRoute(t.mapper, name, path, mutating, schema.GroupVersionResource{Group: g, Version: v, Resource: res}, op)
					if meta.IsNoMatchError(err) {
						continue
					}
					if err != nil {
						return err
					}
					t.routes = append(t.routes, r)
				}
			}
		}
	}
	return nil
}

// newRoute resolves one resource of a rule; a wildcard is an error, as the
// harness would not know what to send.
func newRoute(mapper meta.RESTMapper, hook, path string, mutating bool, gvr schema.GroupVersionResource,
	op admissionregistrationv1.OperationType) (route, error) {
	if strings.Contains(gvr.Group+gvr.Version+gvr.Resource, "*") || op == admissionregistrationv1.OperationAll {
		return route{}, fmt.Errorf("webhook %s has a wildcard rule (%s, %s): list what it receives", hook, gvr, op)
	}
	main, sub, _ := strings.Cut(gvr.Resource, "/")
	gvr.Resource = main
	kind, err := mapper.KindFor(gvr)
	if err != nil {
		return route{}, fmt.Errorf("webhook %s: the kind of %s: %w", hook, gvr, err) // wraps a NoMatchError
	}
	if kind.Group != gvr.Group || kind.Version != gvr.Version {
		// The mapper reads an empty group as any group; the apiserver does not.
		return route{}, &meta.NoResourceMatchError{PartialResource: gvr}
	}
	mapping, err := mapper.RESTMapping(kind.GroupKind(), kind.Version)
	if err != nil {
		return route{}, fmt.Errorf("webhook %s: the scope of %s: %w", hook, kind, err)
	}
	if op == admissionregistrationv1.Connect {
		options, ok := connectKinds[sub]
		if !ok {
			return route{}, fmt.Errorf("webhook %s: which options does a CONNECT to %s/%s carry?", hook, main, sub)
		}
		kind = corev1.SchemeGroupVersion.WithKind(options)
	}
	return route{webhook: hook, path: path, mutating: mutating, resource: gvr, subresource: sub, kind: kind,
		namespaced: mapping.Scope.Name() == meta.RESTScopeNameNamespace, operation: admissionv1.Operation(op)}, nil
}

// admissionHarness serves phiguard's webhooks in-process, once per world.
type admissionHarness struct {
	routes []route
	scheme *runtime.Scheme
	codecs serializer.CodecFactory
	worlds []*served
}

// served is the webhook server of one world, and what it records.
type served struct {
	mux    *http.ServeMux
	events *eventLog
	// apiserverCalls counts requests that reached the apiserver the
	// manager's configuration points to: the webhooks must read only the cache.
	apiserverCalls *atomic.Int64
}

var setLoggerOnce sync.Once

func newAdmissionHarness() (*admissionHarness, error) {
	// The handlers log every request; the fuzzer would drown in it.
	setLoggerOnce.Do(func() { logf.SetLogger(logr.Discard()) })
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	routes, err := loadRoutes(testrestmapper.TestOnlyStaticRESTMapper(scheme))
	if err != nil {
		return nil, err
	}
	h := &admissionHarness{routes: routes, scheme: scheme, codecs: serializer.NewCodecFactory(scheme)}
	for _, w := range []world{worldWithPolicy, worldWithoutPolicy} {
		s, err := serve(scheme, w)
		if err != nil {
			return nil, err
		}
		h.worlds = append(h.worlds, s)
	}
	return h, nil
}

// serve registers every webhook as the manager does, on a manager that is
// never started, whose apiserver answers nothing and counts what it is asked.
func serve(scheme *runtime.Scheme, w world) (*served, error) {
	calls := &atomic.Int64{}
	apiserver := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(rw, "the webhooks read the manager's cache, never the apiserver", http.StatusServiceUnavailable)
	}))
	// The server lives as long as the fuzzing process.
	server, err := metrics.CountAdmissions(panicking{webhook.NewServer(webhook.Options{})}, prometheus.NewRegistry())
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(&rest.Config{Host: apiserver.URL}, ctrl.Options{
		Scheme: scheme, Logger: logr.Discard(), WebhookServer: server,
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	reader, err := newWorld(w)
	if err != nil {
		return nil, err
	}
	events := &eventLog{}
	if err := phiwebhook.Setup(mgr, safeguard.AdmissionEnv{Reader: reader, ExemptNamespaces: exemptNamespaces,
		Registry: safeguard.New(safeguard.Options{}), Clock: fixedClock(), Recorder: events}); err != nil {
		return nil, fmt.Errorf("registering the webhooks: %w", err)
	}
	if n := calls.Load(); n > 0 {
		return nil, fmt.Errorf("creating the manager and registering the webhooks made %d requests to the apiserver", n)
	}
	return &served{mux: server.WebhookMux(), events: events, apiserverCalls: calls}, nil
}

// panicking is a webhook server whose admission webhooks let a panic
// through instead of answering 500, so that the fuzzer sees it and its stack.
type panicking struct{ webhook.Server }

// Register implements webhook.Server.
func (s panicking) Register(path string, h http.Handler) {
	if a, ok := h.(*webhook.Admission); ok {
		a.RecoverPanic = ptr.To(false)
	}
	s.Server.Register(path, h)
}

// call is one admission request the fuzzer makes.
type call struct {
	route  route
	world  int
	raw    bool
	dryRun bool
	user   authenticationv1.UserInfo
	// namespace is used when the object names none.
	namespace string
	// pod is the pod a CONNECT is for.
	pod         string
	object, old []byte
}

// Pools the choices pick from.
var (
	namespaces = []string{"clinic", "ward", "open", "sandbox", "kube-system", "phiguard-system", "missing"}
	users      = []authenticationv1.UserInfo{
		{Username: "alice@clinic.example", Groups: []string{"system:authenticated"}},
		{Username: "bob@clinic.example", Groups: []string{"oncall", "system:authenticated"}},
		{Username: "security-officer@clinic.example", Groups: []string{"compliance", "system:authenticated"}},
		{Username: "system:serviceaccount:kube-system:replicaset-controller", Groups: []string{"system:serviceaccounts"}},
	}
	connectPods = []string{"records-0", "portal-0", "other-0", "missing-0"}
)

// newCall reads the choices: bits 0-7 the route, 8 raw bytes, 9 dry run,
// 10 the world, 11-12 the user, 13-15 the namespace, 16-17 the pod.
func newCall(routes []route, choices uint32, object, old []byte) call {
	return call{
		route:     routes[int(choices&0xff)%len(routes)],
		raw:       choices>>8&1 == 1,
		dryRun:    choices>>9&1 == 1,
		world:     int(choices >> 10 & 1),
		user:      users[choices>>11&3],
		namespace: namespaces[int(choices>>13&7)%len(namespaces)],
		pod:       connectPods[choices>>16&3],
		object:    object,
		old:       old,
	}
}

// check makes the call and judges the answer.
func (h *admissionHarness) check(t *testing.T, c call) {
	t.Helper()
	req, ok := h.request(c)
	if !ok {
		return // not a request the apiserver would send
	}
	s := h.worlds[c.world]
	s.events.reset()
	resp := h.post(t, s, c.route, req)
	describe := func() string {
		return fmt.Sprintf("%s, user %s, namespace %q, dry run %t, world %d\nobject: %s\nold: %s",
			c.route, req.UserInfo.Username, req.Namespace, c.dryRun, c.world, req.Object.Raw, req.OldObject.Raw)
	}
	if !resp.Allowed {
		if resp.Result == nil || resp.Result.Message == "" {
			t.Fatalf("refused without a message: %+v\n%s", resp.Result, describe())
		}
		if resp.Result.Code == http.StatusInternalServerError {
			t.Fatalf("answered 500 (%s), though nothing it reads can fail\n%s", resp.Result.Message, describe())
		}
	}
	for _, w := range resp.Warnings {
		if strings.TrimSpace(w) == "" {
			t.Fatalf("answered an empty warning\n%s", describe())
		}
	}
	if err := s.events.check(c.dryRun); err != nil {
		t.Fatalf("%v\n%s", err, describe())
	}
	if len(resp.Patch) == 0 && resp.PatchType == nil {
		return
	}
	if !c.route.mutating {
		t.Fatalf("a validating webhook answered a patch: %s\n%s", resp.Patch, describe())
	}
	patched := h.applyPatch(t, c.route, req.Object.Raw, resp, describe)
	// The apiserver calls a mutating webhook again (reinvocationPolicy
	// IfNeeded) when a later one changed the object: on its own output it
	// must have nothing more to change.
	req.Object.Raw = patched
	s.events.reset()
	again := h.post(t, s, c.route, req)
	if !again.Allowed {
		t.Fatalf("refused its own output (%v)\n%s\npatched: %s", again.Result, describe(), patched)
	}
	if len(again.Patch) > 0 {
		twice := h.applyPatch(t, c.route, patched, again, describe)
		if !jsonEqual(patched, twice) {
			t.Fatalf("changes its own output again: %s\n%s\npatched: %s", again.Patch, describe(), patched)
		}
	}
}

// request builds the AdmissionRequest of a call, as the apiserver would:
// false when it would send none (an object it could not decode).
func (h *admissionHarness) request(c call) (admissionv1.AdmissionRequest, bool) {
	r := c.route
	req := admissionv1.AdmissionRequest{
		UID:       "9b1f3c52-7e0a-4d4b-a6f1-2f8c1d0e5a37",
		Kind:      metav1.GroupVersionKind(r.kind),
		Resource:  metav1.GroupVersionResource(r.resource),
		Operation: r.operation,
		UserInfo:  c.user,
		DryRun:    ptr.To(c.dryRun),
	}
	req.SubResource = r.subresource
	req.RequestKind, req.RequestResource, req.RequestSubResource = &req.Kind, &req.Resource, req.SubResource
	if r.subresource == "ephemeralcontainers" {
		// The object of an update of a pod's ephemeral containers is the pod.
		req.Kind = metav1.GroupVersionKind(corev1.SchemeGroupVersion.WithKind("Pod"))
	}

	object, old := c.object, c.old
	switch r.operation {
	case admissionv1.Create, admissionv1.Connect:
		old = nil
	case admissionv1.Delete:
		object, old = nil, c.object
	case admissionv1.Update:
		if len(old) == 0 {
			old = object
		}
	}
	name, namespace := "", c.namespace
	for _, raw := range [][]byte{old, object} { // the object's name and namespace win
		var m struct {
			Metadata struct{ Name, Namespace string }
		}
		if json.Unmarshal(raw, &m) == nil {
			name = cmpOr(m.Metadata.Name, name)
			namespace = cmpOr(m.Metadata.Namespace, namespace)
		}
	}
	if r.operation == admissionv1.Connect {
		name = c.pod
	}
	var ok bool
	if req.Object.Raw, ok = h.encode(c, req.Kind, object, namespace); !ok {
		return req, false
	}
	if req.OldObject.Raw, ok = h.encode(c, req.Kind, old, namespace); !ok {
		return req, false
	}
	req.Name = name
	switch {
	case !r.namespaced:
		if r.resource.Resource == "namespaces" {
			req.Namespace = name // a namespace's request names it as its own namespace
		}
	default:
		req.Namespace = namespace
	}
	return req, true
}

// encode is an object as the request carries it: its bytes as they are
// (raw calls, when they are JSON), or decoded as its kind, in the request's
// namespace, and encoded again, as the apiserver sends it.
func (h *admissionHarness) encode(c call, kind metav1.GroupVersionKind, data []byte, namespace string) ([]byte, bool) {
	if len(data) == 0 {
		return nil, true
	}
	if c.raw {
		return data, json.Valid(data)
	}
	gvk := schema.GroupVersionKind(kind)
	into, err := h.scheme.New(gvk)
	if err != nil {
		return nil, false
	}
	obj, _, err := h.codecs.UniversalDeserializer().Decode(data, &gvk, into)
	if err != nil || obj != into {
		return nil, false
	}
	if m, err := meta.Accessor(obj); err == nil && c.route.namespaced && m.GetNamespace() == "" {
		m.SetNamespace(namespace)
	}
	obj.GetObjectKind().SetGroupVersionKind(gvk)
	out, err := json.Marshal(obj)
	return out, err == nil
}

// post sends a request to the route's path and returns the response.
func (h *admissionHarness) post(t *testing.T, s *served, r route, req admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	t.Helper()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"}, Request: &req})
	if err != nil {
		t.Fatalf("encoding the AdmissionReview: %v", err)
	}
	httpReq := httptest.NewRequest(http.MethodPost, r.path, bytes.NewReader(body))
	httpReq.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	s.mux.ServeHTTP(rec, httpReq)
	if n := s.apiserverCalls.Load(); n > 0 {
		t.Fatalf("%s made %d requests to the apiserver instead of reading the cache", r, n)
	}
	if rec.Code != http.StatusOK {
		t.Fatalf("%s answered HTTP %d: %s", r, rec.Code, rec.Body)
	}
	var review admissionv1.AdmissionReview
	if err := json.Unmarshal(rec.Body.Bytes(), &review); err != nil {
		t.Fatalf("%s answered what is not an AdmissionReview: %v\n%s", r, err, rec.Body)
	}
	if review.Response == nil || review.Response.UID != req.UID {
		t.Fatalf("%s answered a review without the request's UID %q: %s", r, req.UID, rec.Body)
	}
	return review.Response
}

// applyPatch applies a response's JSON patch to object and checks that the
// result is still an object of the request's kind.
func (h *admissionHarness) applyPatch(t *testing.T, r route, object []byte, resp *admissionv1.AdmissionResponse, describe func() string) []byte {
	t.Helper()
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("answered a patch of type %v, not JSONPatch\n%s", resp.PatchType, describe())
	}
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatalf("answered a patch that is not a JSON patch (%v): %s\n%s", err, resp.Patch, describe())
	}
	patched, err := patch.Apply(object)
	if err != nil {
		t.Fatalf("answered a patch that does not apply (%v): %s\n%s", err, resp.Patch, describe())
	}
	into, err := h.scheme.New(r.kind)
	if err != nil {
		t.Fatalf("no type for %s: %v", r.kind, err)
	}
	if _, _, err := h.codecs.UniversalDeserializer().Decode(patched, ptr.To(r.kind), into); err != nil {
		t.Fatalf("its patch leaves what is not a %s (%v): %s\n%s", r.kind.Kind, err, patched, describe())
	}
	return patched
}

// jsonEqual says whether two JSON documents hold the same value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	return json.Unmarshal(a, &x) == nil && json.Unmarshal(b, &y) == nil && equality.Semantic.DeepEqual(x, y)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// eventLog records the Events the webhooks record, checked per request.
type eventLog struct {
	mu     sync.Mutex
	events []event
}

type event struct {
	regarding, related        runtime.Object
	eventtype, reason, action string
	note                      string
}

// Eventf implements events.EventRecorder.
func (l *eventLog) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, event{regarding, related, eventtype, reason, action, fmt.Sprintf(note, args...)})
}

// AnnotatedEventf implements events.AnnotatedEventRecorder.
func (l *eventLog) AnnotatedEventf(regarding, related runtime.Object, _ map[string]string, eventtype, reason, action, note string, args ...any) {
	l.Eventf(regarding, related, eventtype, reason, action, note, args...)
}

func (l *eventLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = nil
}

// Limits of events.k8s.io/v1 Event fields (the apiserver's validation).
const (
	maxEventNote   = 1024
	maxEventReason = 128
	maxEventAction = 128
)

// eventReason is what the events API accepts as a reason or action: a
// CamelCase word.
var eventReason = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)

// check judges the events recorded since the last reset.
func (l *eventLog) check(dryRun bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if dryRun && len(l.events) > 0 {
		return fmt.Errorf("a dry run recorded %d Events (the first: %s %s)", len(l.events), l.events[0].reason, l.events[0].note)
	}
	for _, e := range l.events {
		switch {
		case e.regarding == nil:
			return fmt.Errorf("an Event about nothing: %+v", e)
		case !slices.Contains([]string{corev1.EventTypeNormal, corev1.EventTypeWarning}, e.eventtype):
			return fmt.Errorf("an Event of type %q", e.eventtype)
		case !eventReason.MatchString(e.reason) || len(e.reason) > maxEventReason:
			return fmt.Errorf("an Event with reason %q", e.reason)
		case !eventReason.MatchString(e.action) || len(e.action) > maxEventAction:
			return fmt.Errorf("an Event with action %q", e.action)
		case len(e.note) > maxEventNote:
			return fmt.Errorf("an Event whose note has %d bytes, more than the %d the events API accepts", len(e.note), maxEventNote)
		}
	}
	return nil
}

// TestAdmissionRoutes keeps the fuzzer honest: it routes to every path the
// webhook configurations name (counted from the file's lines, not by the
// harness's own reading), and each is served.
func TestAdmissionRoutes(t *testing.T) {
	h, err := newAdmissionHarness()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Clean(webhookManifests))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range regexp.MustCompile(`(?m)^\s+path: (\S+)$`).FindAllStringSubmatch(string(data), -1) {
		want = append(want, m[1])
	}
	slices.Sort(want)
	want = slices.Compact(want)
	var got []string
	for _, r := range h.routes {
		got = append(got, r.path)
	}
	slices.Sort(got)
	got = slices.Compact(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("the harness routes to %v; the configurations name %v", got, want)
	}
	for _, path := range want {
		if _, pattern := h.worlds[0].mux.Handler(httptest.NewRequest(http.MethodPost, path, nil)); pattern != path {
			t.Errorf("nothing serves %s (the mux matched %q)", path, pattern)
		}
	}
	t.Logf("%d paths, %d routes", len(want), len(h.routes))
	for _, r := range h.routes {
		if object, _ := seedObjects(r); object == nil {
			t.Logf("no seed object for %s: it is fuzzed from arbitrary bytes only", r)
		}
	}
}
