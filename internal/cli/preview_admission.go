package cli

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	webhookconfig "github.com/phiguard/phiguard/config/webhook"
	"github.com/phiguard/phiguard/internal/manifests"
	"github.com/phiguard/phiguard/internal/safeguard"
	phiwebhook "github.com/phiguard/phiguard/internal/webhook"
)

// Results of a webhook in a preview.
const (
	// AdmissionRefused: the webhook denies the object (or fails to decide,
	// and its failurePolicy is Fail).
	AdmissionRefused = "refused"
	// AdmissionWarned: the webhook admits the object with a warning (or fails
	// to decide, and its failurePolicy is Ignore).
	AdmissionWarned = "warned"
	// AdmissionMutated: the mutating webhook changes the object.
	AdmissionMutated = "mutated"
)

// AdmissionFinding is what one of phiguard's webhooks would answer for one
// object, created as it stands now.
type AdmissionFinding struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Webhook is the webhook's name in phiguard's webhook configurations.
	Webhook string `json:"webhook"`
	// Result is refused, warned or mutated.
	Result string `json:"result"`
	// Message is the denial, the warning, or the changes of a mutation.
	Message string `json:"message"`
}

// webhookRoute is one webhook of phiguard's configurations: its name, where
// it is served and which requests the apiserver sends it.
type webhookRoute struct {
	name          string
	mutating      bool
	path          string
	failurePolicy admissionregistrationv1.FailurePolicyType
	rules         []admissionregistrationv1.RuleWithOperations
}

// webhookRoutes returns phiguard's webhooks as `make manifests` generates
// their configurations: the mutating ones first, then the validating ones,
// in the order the apiserver calls them.
func webhookRoutes() ([]webhookRoute, error) {
	objs, err := manifests.Decode(bytes.NewReader(webhookconfig.Manifests), "phiguard's webhook configurations")
	if err != nil {
		return nil, err
	}
	var mutating, validating []webhookRoute
	for _, u := range objs {
		switch u.GetKind() {
		case "MutatingWebhookConfiguration":
			var c admissionregistrationv1.MutatingWebhookConfiguration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &c); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", u.GetName(), err)
			}
			for _, w := range c.Webhooks {
				mutating = append(mutating, webhookRoute{name: w.Name, mutating: true, path: servicePath(w.ClientConfig),
					failurePolicy: ptr.Deref(w.FailurePolicy, admissionregistrationv1.Fail), rules: w.Rules})
			}
		case "ValidatingWebhookConfiguration":
			var c admissionregistrationv1.ValidatingWebhookConfiguration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &c); err != nil {
				return nil, fmt.Errorf("decoding %s: %w", u.GetName(), err)
			}
			for _, w := range c.Webhooks {
				validating = append(validating, webhookRoute{name: w.Name, path: servicePath(w.ClientConfig),
					failurePolicy: ptr.Deref(w.FailurePolicy, admissionregistrationv1.Fail), rules: w.Rules})
			}
		}
	}
	return append(mutating, validating...), nil
}

func servicePath(c admissionregistrationv1.WebhookClientConfig) string {
	if c.Service == nil {
		return ""
	}
	return ptr.Deref(c.Service.Path, "")
}

// calledFor says whether the apiserver calls the webhook for an operation on
// a resource.
func (r webhookRoute) calledFor(gvr schema.GroupVersionResource, op admissionregistrationv1.OperationType) bool {
	match := func(list []string, v string) bool { return slices.Contains(list, v) || slices.Contains(list, "*") }
	for _, rule := range r.rules {
		if (slices.Contains(rule.Operations, op) || slices.Contains(rule.Operations, admissionregistrationv1.OperationAll)) &&
			match(rule.APIGroups, gvr.Group) && match(rule.APIVersions, gvr.Version) && match(rule.Resources, gvr.Resource) {
			return true
		}
	}
	return false
}

// createdResources returns the resources some webhook judges on CREATE,
// each once, in the order the configurations name them; subresources and
// wildcards aside.
func createdResources(routes []webhookRoute) []schema.GroupVersionResource {
	var out []schema.GroupVersionResource
	for _, r := range routes {
		for _, rule := range r.rules {
			if !slices.Contains(rule.Operations, admissionregistrationv1.Create) {
				continue
			}
			for _, g := range rule.APIGroups {
				for _, v := range rule.APIVersions {
					for _, res := range rule.Resources {
						gvr := schema.GroupVersionResource{Group: g, Version: v, Resource: res}
						if g == "*" || v == "*" || res == "*" || strings.Contains(res, "/") || slices.Contains(out, gvr) {
							continue
						}
						out = append(out, gvr)
					}
				}
			}
		}
	}
	return out
}

// handlerServer is a webhook server that serves nothing: it keeps the
// handlers registered on it, by path, for them to be called in-process.
type handlerServer struct {
	hooks map[string]http.Handler
}

func (s *handlerServer) NeedLeaderElection() bool                { return false }
func (s *handlerServer) Register(path string, hook http.Handler) { s.hooks[path] = hook }
func (s *handlerServer) StartedChecker() healthz.Checker         { return healthz.Ping }
func (s *handlerServer) WebhookMux() *http.ServeMux              { return nil }
func (s *handlerServer) Start(context.Context) error {
	return errors.New("a preview serves no webhook")
}
func (s *handlerServer) handler(path string) (admission.Handler, bool) {
	wh, ok := s.hooks[path].(*admission.Webhook)
	if !ok {
		return nil, false
	}
	// The handlers log through their request's logger; a command line has no log.
	wh.LogConstructor = func(logr.Logger, *admission.Request) logr.Logger { return logr.Discard() }
	return wh, true
}

// admissionPreview calls phiguard's webhooks in-process, as the apiserver
// would call them, with the handlers the manager registers
// (phiwebhook.Setup: every safeguard's, and the PHIWorkload validator).
type admissionPreview struct {
	routes   []webhookRoute
	handlers map[string]admission.Handler
	user     authenticationv1.UserInfo
}

// newAdmissionPreview registers phiguard's webhooks, deciding with env, on a
// manager that is never started.
func newAdmissionPreview(cfg *rest.Config, scheme *runtime.Scheme, env safeguard.AdmissionEnv, user authenticationv1.UserInfo) (*admissionPreview, error) {
	routes, err := webhookRoutes()
	if err != nil {
		return nil, err
	}
	server, err := registerWebhooks(cfg, scheme, env)
	if err != nil {
		return nil, err
	}
	p := &admissionPreview{routes: routes, handlers: map[string]admission.Handler{}, user: user}
	for _, r := range routes {
		h, ok := server.handler(r.path)
		if !ok {
			return nil, fmt.Errorf("webhook %s is configured at %s, where phiguard serves no handler", r.name, r.path)
		}
		p.handlers[r.path] = h
	}
	return p, nil
}

// registerWebhooks registers every webhook the manager serves
// (phiwebhook.Setup), deciding with env, on a manager that is never started,
// and returns the server that holds them.
func registerWebhooks(cfg *rest.Config, scheme *runtime.Scheme, env safeguard.AdmissionEnv) (*handlerServer, error) {
	server := &handlerServer{hooks: map[string]http.Handler{}}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme, Logger: logr.Discard(), WebhookServer: server,
		Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, fmt.Errorf("preparing phiguard's webhooks: %w", err)
	}
	if err := phiwebhook.Setup(mgr, env); err != nil {
		return nil, fmt.Errorf("preparing phiguard's webhooks: %w", err)
	}
	return server, nil
}

// judge calls, for obj (of resource gvr) created or updated (old set) now,
// every webhook the apiserver would call: the mutating ones in order, each
// seeing the object as the ones before left it, then the validating ones on
// the mutated object. It returns each webhook's answer that is not a plain
// admission.
func (p *admissionPreview) judge(ctx context.Context, obj, old *unstructured.Unstructured, gvr schema.GroupVersionResource) ([]AdmissionFinding, error) {
	op := admissionregistrationv1.Create
	if old != nil {
		op = admissionregistrationv1.Update
	}
	raw, err := requestObject(obj)
	if err != nil {
		return nil, err
	}
	req, err := p.request(obj, old, gvr, op)
	if err != nil {
		return nil, err
	}
	var out []AdmissionFinding
	finding := func(r webhookRoute, result, msg string) {
		out = append(out, AdmissionFinding{Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName(),
			Webhook: r.name, Result: result, Message: msg})
	}
	for _, r := range p.routes {
		if !r.calledFor(gvr, op) {
			continue
		}
		req.Object.Raw = raw
		resp := p.handlers[r.path].Handle(ctx, req)
		for _, w := range resp.Warnings {
			finding(r, AdmissionWarned, w)
		}
		switch {
		case !resp.Allowed && resp.Result != nil && resp.Result.Code == http.StatusForbidden:
			finding(r, AdmissionRefused, resp.Result.Message)
		case !resp.Allowed:
			result, msg := undecided(r, resp)
			finding(r, result, msg)
		case r.mutating && len(resp.Patches) > 0:
			if raw, err = applyPatch(raw, resp.Patch); err != nil {
				return nil, fmt.Errorf("applying the changes of webhook %s to %s %s: %w", r.name, obj.GetKind(), obj.GetName(), err)
			}
			finding(r, AdmissionMutated, describePatches(resp))
		}
	}
	return out, nil
}

// request is the admission request, without its object, the apiserver would
// send for obj (of resource gvr) under op, carrying old, when set, as the
// object it updates.
func (p *admissionPreview) request(obj, old *unstructured.Unstructured, gvr schema.GroupVersionResource,
	op admissionregistrationv1.OperationType) (admission.Request, error) {
	kind, resource := metav1.GroupVersionKind(obj.GroupVersionKind()), metav1.GroupVersionResource(gvr)
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:  "preview",
		Kind: kind, Resource: resource, RequestKind: &kind, RequestResource: &resource,
		Name: obj.GetName(), Namespace: obj.GetNamespace(), Operation: admissionv1.Operation(op),
		UserInfo: p.user, DryRun: ptr.To(true),
	}}
	if old != nil {
		var err error
		if req.OldObject.Raw, err = requestObject(old); err != nil {
			return admission.Request{}, err
		}
	}
	return req, nil
}

// undecided is the result and message of a webhook route r that neither
// admitted nor refused, as the apiserver applies its failurePolicy: Ignore
// admits (a warning here), Fail refuses.
func undecided(r webhookRoute, resp admission.Response) (result, msg string) {
	msg = "the webhook could not decide"
	if resp.Result != nil {
		msg += ": " + resp.Result.Message
	}
	if r.failurePolicy == admissionregistrationv1.Ignore {
		return AdmissionWarned, msg + " (failurePolicy Ignore: admitted)"
	}
	return AdmissionRefused, msg + " (failurePolicy Fail: refused)"
}

// requestObject is obj as a create or update request would carry it: without
// the fields the apiserver sets once it stores the object.
func requestObject(obj *unstructured.Unstructured) ([]byte, error) {
	u := &unstructured.Unstructured{Object: withoutServerFields(obj)}
	u.SetGroupVersionKind(obj.GroupVersionKind())
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encoding %s %s: %w", obj.GetKind(), obj.GetName(), err)
	}
	return data, nil
}

// applyPatch applies a mutating webhook's JSON patch (its response's Patch,
// which Handle completes from its Patches) to raw.
func applyPatch(raw, data []byte) ([]byte, error) {
	patch, err := jsonpatch.DecodePatch(data)
	if err != nil {
		return nil, fmt.Errorf("decoding a JSON patch: %w", err)
	}
	out, err := patch.Apply(raw)
	if err != nil {
		return nil, fmt.Errorf("applying a JSON patch: %w", err)
	}
	return out, nil
}

// describePatches says what a mutation changes, one "op path" per operation,
// sorted. Operations on status are left out: a typed handler encodes the
// object it mutated with an empty status, which no create stores.
func describePatches(resp admission.Response) string {
	ops := make([]string, 0, len(resp.Patches))
	for _, p := range resp.Patches {
		if p.Path == "/status" || strings.HasPrefix(p.Path, "/status/") {
			continue
		}
		ops = append(ops, p.Operation+" "+p.Path)
	}
	slices.Sort(ops)
	return strings.Join(slices.Compact(ops), ", ")
}

// judgeNamespace lists every object of ns that some webhook judges on
// CREATE (other than PHIWorkloads) and judges it as if created now.
func (p *admissionPreview) judgeNamespace(ctx context.Context, c client.Client, ns string) ([]AdmissionFinding, error) {
	var out []AdmissionFinding
	for _, gvr := range createdResources(p.routes) {
		gvk, err := c.RESTMapper().KindFor(gvr)
		if meta.IsNoMatchError(err) {
			continue // not served in this cluster: nothing of it to judge
		}
		if err != nil {
			return nil, fmt.Errorf("finding the kind of %s: %w", gvr, err)
		}
		if gvk.GroupKind() == phiWorkloadGVK.GroupKind() {
			continue // the previewed one is judged on its own
		}
		mapping, err := c.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			return nil, fmt.Errorf("finding the scope of %s: %w", gvk.Kind, err)
		}
		if mapping.Scope.Name() != meta.RESTScopeNameNamespace {
			continue
		}
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := c.List(ctx, list, client.InNamespace(ns)); err != nil {
			return nil, fmt.Errorf("listing %s in %s: %w", gvr.Resource, ns, err)
		}
		for i := range list.Items {
			obj := &list.Items[i]
			if !obj.GetDeletionTimestamp().IsZero() {
				continue
			}
			obj.SetGroupVersionKind(gvk)
			found, err := p.judge(ctx, obj, nil, gvr)
			if err != nil {
				return nil, err
			}
			out = append(out, found...)
		}
	}
	slices.SortStableFunc(out, func(a, b AdmissionFinding) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name),
			cmp.Compare(a.Webhook, b.Webhook), cmp.Compare(a.Result, b.Result), cmp.Compare(a.Message, b.Message))
	})
	return out, nil
}
