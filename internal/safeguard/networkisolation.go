package safeguard

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/ssa"
)

// maxNamed is how many objects a message names before it only counts.
const maxNamed = 10

// NetworkIsolation keeps the selected pods behind a default-deny NetworkPolicy
// (HIPAA §164.312(e)(1) transmission security, §164.312(a)(1) access control).
//
// Enforce applies one NetworkPolicy per workload with both policy types, so
// that only what is declared gets in or out; the pods it selects are isolated
// the moment they exist, without another reconcile. Audit creates nothing and
// judges the pods against the NetworkPolicies in the namespace.
type NetworkIsolation struct{}

// What NetworkIsolation reads, writes and watches.
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete

// NetworkPolicies are all NetworkPolicies in the workload's namespace, the
// ones phiguard owns and the hand-written ones.
var NetworkPolicies = ListIn("NetworkPolicies", func(l *networkingv1.NetworkPolicyList) []networkingv1.NetworkPolicy { return l.Items })

// Name implements Safeguard.
func (NetworkIsolation) Name() phiguardv1alpha1.SafeguardName {
	return phiguardv1alpha1.NetworkIsolated
}

// Rule implements Safeguard.
func (NetworkIsolation) Rule() Rule {
	return Rule{Section: "§164.312(e)(1)", Specification: phiguardv1alpha1.Required,
		Summary: "ePHI pods are isolated by default-deny NetworkPolicies"}
}

// Defaults implements Safeguard: Enforce, DNS and the workload's own pods allowed.
func (NetworkIsolation) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{
		Mode: phiguardv1alpha1.ModeEnforce, AllowDNS: ptr.To(true), AllowSameWorkload: ptr.To(true),
	}
}

// Inputs implements Reader.
func (NetworkIsolation) Inputs() []Input { return []Input{NetworkPolicies} }

// Watches implements Watcher. A change to phiguard's own NetworkPolicy goes to
// its workload (drift is healed at once, no polling); one to a hand-written
// policy can change the isolation of every workload in the namespace.
func (NetworkIsolation) Watches() []Watch {
	return []Watch{{Object: &networkingv1.NetworkPolicy{},
		Map: func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
			return w.Controller(ctx, obj)
		}}}
}

// Reconcile implements Safeguard.
func (n NetworkIsolation) Reconcile(ctx context.Context, s *Scope) Result {
	if s.Mode(n.Name()) == phiguardv1alpha1.ModeEnforce {
		return n.enforce(ctx, s)
	}
	events, err := n.removeOwned(ctx, s)
	if err != nil {
		return Result{Err: err, Events: events}
	}
	// Judged without phiguard's own policy, which was just deleted.
	others := slices.DeleteFunc(slices.Clone(NetworkPolicies.Get(s)), func(np networkingv1.NetworkPolicy) bool {
		return metav1.IsControlledBy(&np, s.Workload)
	})
	r := auditIsolation(s.Pods, others)
	r.Events = events
	return r
}

func (n NetworkIsolation) enforce(ctx context.Context, s *Scope) Result {
	name := NetworkPolicyName(s.Workload.Name)
	desired := DesiredNetworkPolicy(s.Workload, s.Settings.NetworkIsolation)
	existing := byName(NetworkPolicies.Get(s), name)
	if existing != nil && !metav1.IsControlledBy(existing, s.Workload) {
		return Result{
			Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonPolicyNameTaken,
			Message: fmt.Sprintf("NetworkPolicy %s exists and is not phiguard's; rename or delete it so that phiguard can isolate the pods", name),
		}
	}

	var events []Event
	if event, changed, err := n.applyIfChanged(ctx, s, existing, desired); err != nil {
		return Result{Err: err}
	} else if changed {
		events = append(events, event)
	}
	return Result{
		Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonPolicyApplied,
		Message: fmt.Sprintf("NetworkPolicy %s isolates the %d selected pods in both directions (and any created later); allowed: %s",
			name, len(s.Pods), describeAllowed(s.Settings.NetworkIsolation)),
		Events: events,
	}
}

// applyIfChanged applies desired unless the fields phiguard owns on the
// existing policy already equal it (ssa.Apply): a steady reconcile makes no
// write. Someone else's change to a field phiguard owns moves that field out
// of phiguard's managed set, so it shows as a difference and is reverted
// (force).
func (n NetworkIsolation) applyIfChanged(ctx context.Context, s *Scope, existing *networkingv1.NetworkPolicy,
	desired *networkingv1ac.NetworkPolicyApplyConfiguration) (Event, bool, error) {
	name := *desired.Name
	changed, err := ssa.Apply(ctx, s.Client, existing, desired, ssa.Generated(networkingv1ac.ExtractNetworkPolicy))
	if err != nil || !changed {
		return Event{}, false, err
	}
	event := Event{Reason: phiguardv1alpha1.ReasonPolicyCreated, Message: "created NetworkPolicy " + name}
	switch {
	case existing != nil && len(otherSpecManagers(existing)) > 0:
		event = Event{Warning: true, Reason: phiguardv1alpha1.ReasonPolicyDrifted,
			Message: fmt.Sprintf("reverted changes that %s made to NetworkPolicy %s", strings.Join(otherSpecManagers(existing), ", "), name)}
	case existing != nil:
		event = Event{Reason: phiguardv1alpha1.ReasonPolicyUpdated, Message: "updated NetworkPolicy " + name + " to follow the spec"}
	case previouslyApplied(s.Workload):
		event = Event{Warning: true, Reason: phiguardv1alpha1.ReasonPolicyDrifted, Message: "re-created NetworkPolicy " + name + ", which was deleted"}
	}
	// Apply decoded the stored object into desired: refer to that version.
	event.Related = reference(networkingv1.SchemeGroupVersion.String(), "NetworkPolicy", &metav1.ObjectMeta{
		Namespace: *desired.Namespace, Name: name, UID: ptr.Deref(desired.UID, ""), ResourceVersion: ptr.Deref(desired.ResourceVersion, "")})
	return event, true, nil
}

// removeOwned deletes the NetworkPolicies this workload controls: the mode left Enforce.
func (n NetworkIsolation) removeOwned(ctx context.Context, s *Scope) ([]Event, error) {
	var events []Event
	policies := NetworkPolicies.Get(s)
	for i := range policies {
		np := &policies[i]
		if !metav1.IsControlledBy(np, s.Workload) {
			continue
		}
		err := s.Client.Delete(ctx, np, client.Preconditions{UID: &np.UID})
		if err != nil && !apierrors.IsNotFound(err) {
			return events, fmt.Errorf("removing NetworkPolicy %s: %w", np.Name, err)
		}
		events = append(events, Event{Reason: phiguardv1alpha1.ReasonPolicyRemoved,
			Message: fmt.Sprintf("removed NetworkPolicy %s: network isolation is no longer enforced (mode %s)", np.Name, s.Mode(n.Name())),
			Related: reference(networkingv1.SchemeGroupVersion.String(), "NetworkPolicy", np)})
	}
	return events, nil
}

// auditIsolation judges each pod against the NetworkPolicies in its namespace:
// a pod is isolated in a direction only when some policy selects it for that
// direction (then only what some policy allows gets through).
func auditIsolation(pods []corev1.Pod, policies []networkingv1.NetworkPolicy) Result {
	var open []string
	for i := range pods {
		ingress, egress := isolation(&pods[i], policies)
		var dirs []string
		if !ingress {
			dirs = append(dirs, "ingress")
		}
		if !egress {
			dirs = append(dirs, "egress")
		}
		if len(dirs) > 0 {
			open = append(open, fmt.Sprintf("%s (%s open)", pods[i].Name, strings.Join(dirs, " and ")))
		}
	}
	if len(open) == 0 {
		return Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonPodsIsolated,
			Message: fmt.Sprintf("all %d selected pods are isolated in both directions by NetworkPolicies", len(pods))}
	}
	slices.Sort(open)
	return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonPodsNotIsolated,
		Message: fmt.Sprintf("%d of %d selected pods are not isolated: %s; set networkIsolation.mode to Enforce or add default-deny NetworkPolicies",
			len(open), len(pods), strings.Join(named(open), ", "))}
}

// isolation says whether any policy selects the pod for ingress and for egress.
func isolation(pod *corev1.Pod, policies []networkingv1.NetworkPolicy) (ingress, egress bool) {
	for i := range policies {
		np := &policies[i]
		if np.Namespace != pod.Namespace || !np.DeletionTimestamp.IsZero() {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		in, out := policyTypes(np)
		ingress, egress = ingress || in, egress || out
	}
	return ingress, egress
}

// policyTypes applies the API's rule for a policy without policyTypes: it
// always isolates ingress, and egress only when it has egress rules.
func policyTypes(np *networkingv1.NetworkPolicy) (ingress, egress bool) {
	if len(np.Spec.PolicyTypes) == 0 {
		return true, len(np.Spec.Egress) > 0
	}
	return slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress),
		slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
}

// otherSpecManagers names the field managers other than phiguard that own
// fields of the policy's spec: someone edited what phiguard keeps.
func otherSpecManagers(np *networkingv1.NetworkPolicy) []string {
	var out []string
	for _, mf := range np.ManagedFields {
		if mf.Manager == ssa.FieldManager || mf.FieldsV1 == nil {
			continue
		}
		if strings.Contains(mf.FieldsV1.GetRawString(), `"f:spec"`) && !slices.Contains(out, mf.Manager) {
			out = append(out, mf.Manager)
		}
	}
	return out
}

// previouslyApplied says whether phiguard had applied the policy for the
// workload's current generation: a missing policy then was deleted by someone.
func previouslyApplied(w *phiguardv1alpha1.PHIWorkload) bool {
	c := meta.FindStatusCondition(w.Status.Conditions, string(phiguardv1alpha1.NetworkIsolated))
	return c != nil && c.Reason == phiguardv1alpha1.ReasonPolicyApplied && c.ObservedGeneration == w.Generation
}

func describeAllowed(spec *phiguardv1alpha1.NetworkIsolationSpec) string {
	var parts []string
	if spec.AllowSameWorkload == nil || *spec.AllowSameWorkload {
		parts = append(parts, "the workload's own pods")
	}
	if spec.AllowDNS == nil || *spec.AllowDNS {
		parts = append(parts, "DNS")
	}
	if n := len(spec.Ingress); n > 0 {
		parts = append(parts, fmt.Sprintf("%d ingress rule(s)", n))
	}
	if n := len(spec.Egress); n > 0 {
		parts = append(parts, fmt.Sprintf("%d egress rule(s)", n))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
