package safeguard

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/optionalapi"
)

// Scope is everything one reconcile of a PHIWorkload reads, resolved once
// before any safeguard runs. Safeguards read it and never list the cluster
// themselves; they write only through Client, and only in Enforce mode.
type Scope struct {
	// Workload is the PHIWorkload being reconciled. Safeguards must not modify it.
	Workload *phiguardv1alpha1.PHIWorkload

	// Policy is the PHIPolicy named "default"; nil when none exists.
	Policy *phiguardv1alpha1.PHIPolicy

	// Settings are the effective settings: the workload's own, then the policy's,
	// then the built-in defaults, merged field by field. Every mode is set.
	Settings phiguardv1alpha1.SafeguardSettings

	// ModeSources says where each safeguard's effective mode came from.
	ModeSources map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.SettingSource

	// Selector is the workload's spec.selector, parsed.
	Selector labels.Selector

	// Pods are the pods in the workload's namespace that Selector matches,
	// excluding pods already being deleted, sorted by name. They are the
	// cache's own objects, shared as a Shared input's are: nothing may
	// change anything reachable from them (see Shared).
	Pods []corev1.Pod

	// Now is the time this reconcile evaluates decisions and ages against.
	Now time.Time

	// Client writes what a safeguard acts on (server-side apply, field owner
	// "phiguard", for objects it owns) and reads, from the cache, the single
	// objects it must act on (a pod's owning Deployment). Lists go through the
	// inputs.
	Client client.Client

	// inputs hold what each Input read; see InputOf.Get.
	inputs map[Input]any
	// apis hold the state of each optional API an input needs.
	apis map[*optionalapi.API]optionalapi.State
}

// Mode returns the effective mode of a safeguard.
func (s *Scope) Mode(name phiguardv1alpha1.SafeguardName) phiguardv1alpha1.Mode {
	return s.Settings.Mode(name)
}

// API returns the state of an optional API that some input reads.
func (s *Scope) API(api *optionalapi.API) optionalapi.State {
	return s.apis[api]
}

// SetAPI records the state of an optional API, as the scope builder does:
// for tests that build a Scope by hand.
func (s *Scope) SetAPI(api *optionalapi.API, state optionalapi.State) {
	if s.apis == nil {
		s.apis = map[*optionalapi.API]optionalapi.State{}
	}
	s.apis[api] = state
}

// APIs says whether an optional API is served (optionalapi.Tracker).
type APIs interface {
	State(ctx context.Context, api *optionalapi.API) (optionalapi.State, error)
}

// Env is what building a scope needs from the manager.
type Env struct {
	// Reader reads the policy, the pods and the inputs (the manager's cache).
	Reader client.Reader
	// Client is the scope's Client.
	Client client.Client
	// APIs says whether optional APIs are served.
	APIs APIs
	// ExemptNamespaces are never acted on, whatever the PHIPolicy says
	// (kube-system and phiguard's own namespace).
	ExemptNamespaces []string
}

// Scope resolves everything the registry's safeguards read for a workload. A
// *StalledError means the spec cannot be acted on (the scope returned then
// still holds the effective settings, so that status can report each
// safeguard's mode); other errors are transient.
func (r Registry) Scope(ctx context.Context, env Env, w *phiguardv1alpha1.PHIWorkload, now time.Time) (*Scope, error) {
	s := &Scope{Workload: w, Now: now, Client: env.Client}

	var err error
	if s.Policy, err = DefaultPolicy(ctx, env.Reader); err != nil {
		return nil, err
	}
	if s.Settings, s.ModeSources, err = r.Effective(&w.Spec.SafeguardSettings, s.Policy); err != nil {
		return nil, err
	}
	if Exempt(env.ExemptNamespaces, s.Policy, w.Namespace) {
		return s, Stalled(phiguardv1alpha1.ReasonNamespaceExempt,
			"namespace %s is exempt from phiguard (built-in or PHIPolicy spec.exemptNamespaces); move the workload or remove the exemption",
			w.Namespace)
	}
	if s.Selector, err = metav1.LabelSelectorAsSelector(&w.Spec.Selector); err != nil {
		return s, Stalled(phiguardv1alpha1.ReasonInvalidSelector, "spec.selector is invalid: %v", err)
	}
	if err := s.readPods(ctx, env.Reader); err != nil {
		return s, err
	}
	return s, r.readInputs(ctx, env, s)
}

// readPods lists the selected pods without copies (client.UnsafeDisableDeepCopy):
// no safeguard changes a pod it judges, and the pods are most of what a
// reconcile reads.
func (s *Scope) readPods(ctx context.Context, r client.Reader) error {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(s.Workload.Namespace), client.MatchingLabelsSelector{Selector: s.Selector},
		client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing pods of %s/%s: %w", s.Workload.Namespace, s.Workload.Name, err)
	}
	for i := range pods.Items {
		if pods.Items[i].DeletionTimestamp.IsZero() {
			s.Pods = append(s.Pods, pods.Items[i])
		}
	}
	// A cache lists in no fixed order; messages name pods in this order, and
	// a status must not change because a new manager's cache filled differently.
	slices.SortFunc(s.Pods, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

// readInputs reads each input once; an input of an optional API only while
// the API is served.
func (r Registry) readInputs(ctx context.Context, env Env, s *Scope) error {
	for _, in := range r.Inputs() {
		if api := in.api(); api != nil {
			state, ok := s.apis[api]
			if !ok {
				var err error
				if env.APIs != nil {
					if state, err = env.APIs.State(ctx, api); err != nil {
						return err
					}
				}
				s.SetAPI(api, state)
			}
			if state != optionalapi.Served {
				continue
			}
		}
		v, err := in.read(ctx, env.Reader, s)
		if err != nil {
			return fmt.Errorf("reading %s: %w", in.name(), err)
		}
		if s.inputs == nil {
			s.inputs = map[Input]any{}
		}
		s.inputs[in] = v
	}
	return nil
}

// APINotServed returns the result of a safeguard whose optional API is not
// served, and true; or false when it is. While the API's CRDs exist but are
// not yet served, it asks to look again in two seconds: the CRDs' events may
// all have come before discovery served their kinds, and nothing else would
// bring the workload back.
func APINotServed(s *Scope, api *optionalapi.API) (Result, bool) {
	switch s.API(api) {
	case optionalapi.Served:
		return Result{}, false
	case optionalapi.Pending:
		return Result{Status: metav1.ConditionFalse, Reason: api.NotInstalledReason, RequeueAfter: 2 * time.Second,
			Message: fmt.Sprintf("%s's CRDs are installed but the apiserver does not serve %s yet; phiguard looks again shortly",
				api.Name, api.GroupVersion)}, true
	default:
		return Result{Status: metav1.ConditionFalse, Reason: api.NotInstalledReason,
			Message: fmt.Sprintf("%s is not installed (no %s CRDs): %s; phiguard starts using it as soon as the CRDs appear",
				api.Name, api.GroupVersion, api.Install)}, true
	}
}

// NoPods turns a True result Unknown (NoPodsSelected) when the workload
// selects no pod: a safeguard that judges pods has nothing to judge, and a
// selector with a typo must not look compliant. Enforcement (a NetworkPolicy
// that covers pods created later) still happens; only the verdict changes.
func NoPods(s *Scope, r Result) Result {
	if len(s.Pods) > 0 || r.Status != metav1.ConditionTrue {
		return r
	}
	r.Status, r.Reason = metav1.ConditionUnknown, phiguardv1alpha1.ReasonNoPodsSelected
	r.Message = fmt.Sprintf("spec.selector matches no pod in namespace %s, so there is nothing to judge; check the selector (%s)",
		s.Workload.Namespace, metav1.FormatLabelSelector(&s.Workload.Spec.Selector))
	return r
}
