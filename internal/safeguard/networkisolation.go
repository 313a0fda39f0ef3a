package safeguard

import (
	"cmp"
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
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/netpol"
	"github.com/phiguard/phiguard/internal/ssa"
)

// maxNamed is how many objects a message names before it only counts.
const maxNamed = 10

// NetworkIsolation keeps the selected pods behind a default-deny NetworkPolicy
// (HIPAA §164.312(e)(1) transmission security, §164.312(a)(1) access control).
//
// Enforce applies one NetworkPolicy per workload with both policy types, so
// that only what is declared gets in or out; the pods it selects are isolated
// the moment they exist, without another reconcile. Audit creates nothing.
//
// Both judge each selected pod against every NetworkPolicy that selects it:
// policies add up, so one that admits more than the workload declares (its
// own pods, DNS, its ingress and egress rules) opens the pods whatever
// phiguard's policy says, and the safeguard does not hold (IsolationBypassed).
type NetworkIsolation struct{}

// What NetworkIsolation reads, writes and watches.
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch;delete

// NetworkPolicies are all NetworkPolicies in the workload's namespace, the
// ones phiguard owns and the hand-written ones. Shared: they are judged,
// extracted (ssa.Apply) and deleted, never changed.
var NetworkPolicies = ListIn("NetworkPolicies", Shared, func(l *networkingv1.NetworkPolicyList) []networkingv1.NetworkPolicy { return l.Items })

// Name implements Safeguard.
func (NetworkIsolation) Name() phiguardv1alpha1.SafeguardName {
	return phiguardv1alpha1.NetworkIsolated
}

// Rule implements Safeguard.
func (NetworkIsolation) Rule() Rule {
	// Proposed: §164.308(a)(10), information access management, whose
	// network segmentation specification asks that systems be segmented to
	// limit access to ePHI (see ruleset.go for the sources).
	return Rule{Section: "§164.312(e)(1)", Specification: phiguardv1alpha1.Required,
		ProposedSection: "§164.308(a)(10)",
		Summary:         "ePHI pods are isolated by default-deny NetworkPolicies"}
}

// Defaults implements Safeguard: Enforce, DNS and the workload's own pods allowed.
func (NetworkIsolation) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{
		Mode: phiguardv1alpha1.ModeEnforce, AllowDNS: ptr.To(true), AllowSameWorkload: ptr.To(true),
	}
}

// Inputs implements Reader.
func (NetworkIsolation) Inputs() []Input { return []Input{NetworkPolicies} }

// Watches implements Watcher: a NetworkPolicy change goes to the workloads
// whose judgment it can change (workloadsAffected).
func (NetworkIsolation) Watches() []Watch {
	return []Watch{{Object: &networkingv1.NetworkPolicy{}, Map: workloadsAffected}}
}

// workloadsAffected maps a NetworkPolicy to the workloads whose judgment it
// can change: the one that owns it (an edit or a deletion is healed at once,
// no polling), the one whose policy name it takes (PolicyNameTaken), and every
// one that selects a pod the policy selects, for policies add up; another
// workload's phiguard policy counts too, where selectors overlap. An update
// maps both the old and the new object, so a pod a policy stops selecting is
// re-judged as well. A pod that comes or changes labels brings its workloads
// back through the pod watch.
func workloadsAffected(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
	var reqs []reconcile.Request
	add := func(name string) {
		req := reconcile.Request{NamespacedName: client.ObjectKey{Namespace: obj.GetNamespace(), Name: name}}
		if !slices.Contains(reqs, req) {
			reqs = append(reqs, req)
		}
	}
	if owner := metav1.GetControllerOf(obj); owner != nil && owner.APIVersion == phiguardv1alpha1.GroupVersion.String() {
		for _, req := range w.Controller(ctx, obj) { // its PHIWorkload
			add(req.Name)
		}
	} else if name, ok := strings.CutPrefix(obj.GetName(), NetworkPolicyName("")); ok {
		add(name)
	}
	np, ok := obj.(*networkingv1.NetworkPolicy)
	if !ok {
		return reqs
	}
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		return reqs // the apiserver stores no invalid selector
	}
	var pods corev1.PodList
	if err := w.Reader.List(ctx, &pods, client.InNamespace(np.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		// A map function cannot return an error: judge the whole namespace again.
		logf.FromContext(ctx).Error(err, "listing pods", "namespace", np.Namespace)
		return w.In(ctx, np.Namespace)
	}
	if len(pods.Items) == 0 {
		return reqs
	}
	var workloads phiguardv1alpha1.PHIWorkloadList
	if err := w.Reader.List(ctx, &workloads, client.InNamespace(np.Namespace)); err != nil {
		logf.FromContext(ctx).Error(err, "listing PHIWorkloads", "namespace", np.Namespace)
		return reqs
	}
	for i := range workloads.Items {
		wsel, err := metav1.LabelSelectorAsSelector(&workloads.Items[i].Spec.Selector)
		if err != nil {
			continue // an invalid selector is reported on the workload itself
		}
		if slices.ContainsFunc(pods.Items, func(p corev1.Pod) bool { return wsel.Matches(labels.Set(p.Labels)) }) {
			add(workloads.Items[i].Name)
		}
	}
	return reqs
}

// Reconcile implements Safeguard. With no pod selected there is nothing to
// judge: a result that holds is Unknown (NoPodsSelected), though Enforce
// still keeps the policy for the pods to come.
func (n NetworkIsolation) Reconcile(ctx context.Context, s *Scope) Result {
	return NoPods(s, n.reconcile(ctx, s))
}

func (n NetworkIsolation) reconcile(ctx context.Context, s *Scope) Result {
	desired := DesiredNetworkPolicy(s.Workload, s.Settings.NetworkIsolation)
	// What the workload declares is what phiguard's policy allows.
	declared, err := ssa.Typed[networkingv1.NetworkPolicy](desired)
	if err != nil {
		return Result{Err: fmt.Errorf("NetworkPolicy %s: %w", ptr.Deref(desired.Name, ""), err)}
	}
	if s.Mode(n.Name()) == phiguardv1alpha1.ModeEnforce {
		return n.enforce(ctx, s, desired, declared)
	}
	events, err := n.removeOwned(ctx, s)
	if err != nil {
		return Result{Err: err, Events: events}
	}
	// Judged without phiguard's own policy, which was just deleted.
	others := slices.DeleteFunc(slices.Clone(NetworkPolicies.Get(s)), func(np networkingv1.NetworkPolicy) bool {
		return metav1.IsControlledBy(&np, s.Workload)
	})
	r := judgeIsolation(s.Pods, others, declared).audit()
	r.Events = events
	return r
}

func (n NetworkIsolation) enforce(ctx context.Context, s *Scope, desired *networkingv1ac.NetworkPolicyApplyConfiguration,
	declared *networkingv1.NetworkPolicy) Result {
	name := NetworkPolicyName(s.Workload.Name)
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
	// Judged with phiguard's policy as it now stands (as declared), and
	// every other policy in the namespace.
	policies := append(slices.DeleteFunc(slices.Clone(NetworkPolicies.Get(s)), func(np networkingv1.NetworkPolicy) bool {
		return metav1.IsControlledBy(&np, s.Workload)
	}), *declared)
	if j := judgeIsolation(s.Pods, policies, declared); len(j.wider) > 0 {
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonIsolationBypassed,
			Message: fmt.Sprintf("NetworkPolicy %s is applied, but %s", name, j.bypassMessage()), Events: events}
	}
	return Result{
		Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonPolicyApplied,
		Message: fmt.Sprintf("NetworkPolicy %s isolates the %d selected pods in both directions (and any created later), and no other NetworkPolicy opens them wider; allowed: %s",
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

// isolationJudgement is how the selected pods stand against the
// NetworkPolicies that select them.
type isolationJudgement struct {
	// pods is how many pods were judged.
	pods int
	// open names the pods some direction of which no policy isolates, as
	// "records-0 (ingress and egress open)", sorted.
	open []string
	// wider are the policies that admit more than the workload declares,
	// the one opening the widest flow first.
	wider []bypass
}

// bypass is one policy that admits more than the workload declares.
type bypass struct {
	// policy is the policy's namespace/name.
	policy string
	// dir and flow are the widest flow it opens beyond the declared rules.
	dir  networkingv1.PolicyType
	flow netpol.Flow
	// pods are the pods it opens so, sorted.
	pods []string
}

// judgeIsolation judges each pod against policies, the NetworkPolicies of
// its namespace: in each direction, the pod must be isolated (some policy
// selects it), and every rule of every policy that selects it must admit no
// more than the rules of declared, phiguard's policy as the workload's
// effective settings make it (netpol.Uncovered: what cannot be proved
// covered counts as wider).
func judgeIsolation(pods []corev1.Pod, policies []networkingv1.NetworkPolicy, declared *networkingv1.NetworkPolicy) isolationJudgement {
	j := isolationJudgement{pods: len(pods)}
	ingress := netpol.Rules(declared, networkingv1.PolicyTypeIngress)
	egress := netpol.Rules(declared, networkingv1.PolicyTypeEgress)
	byPolicy := map[string]*bypass{}
	sorted := slices.Clone(pods)
	slices.SortFunc(sorted, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for i := range sorted {
		pod := &sorted[i]
		ev := netpol.Evaluate(pod, policies)
		var dirs []string
		if !ev.Ingress.Isolated {
			dirs = append(dirs, "ingress")
		}
		if !ev.Egress.Isolated {
			dirs = append(dirs, "egress")
		}
		if len(dirs) > 0 {
			j.open = append(j.open, fmt.Sprintf("%s (%s open)", pod.Name, strings.Join(dirs, " and ")))
		}
		// Named ports of ingress rules are the pod's own; those of egress
		// rules belong to whatever the pod reaches.
		widen(byPolicy, pod.Name, networkingv1.PolicyTypeIngress, ev.Ingress, ingress, pod)
		widen(byPolicy, pod.Name, networkingv1.PolicyTypeEgress, ev.Egress, egress, nil)
	}
	for _, b := range byPolicy {
		j.wider = append(j.wider, *b)
	}
	slices.SortFunc(j.wider, func(a, b bypass) int {
		return cmp.Or(cmp.Compare(b.flow.Breadth(), a.flow.Breadth()), strings.Compare(a.policy, b.policy))
	})
	return j
}

// widen records, for each rule of a direction that admits more than the
// declared rules, its policy's widest such flow and the pod.
func widen(byPolicy map[string]*bypass, pod string, dir networkingv1.PolicyType, d netpol.Direction, declared []netpol.Rule, dst *corev1.Pod) {
	if !d.Isolated {
		return
	}
	for _, r := range d.Rules {
		for _, f := range netpol.Uncovered(r, declared, dst) {
			b := byPolicy[r.Policy]
			switch {
			case b == nil:
				b = &bypass{policy: r.Policy, dir: dir, flow: f}
				byPolicy[r.Policy] = b
			case f.Breadth() > b.flow.Breadth():
				b.dir, b.flow = dir, f
			}
			if !slices.Contains(b.pods, pod) {
				b.pods = append(b.pods, pod)
			}
		}
	}
}

// audit is the Audit result: every pod isolated both ways, and no policy
// wider than declared.
func (j isolationJudgement) audit() Result {
	switch {
	case len(j.open) > 0:
		msg := fmt.Sprintf("%d of %d selected pods are not isolated: %s; set networkIsolation.mode to Enforce or add default-deny NetworkPolicies",
			len(j.open), j.pods, strings.Join(named(j.open), ", "))
		if len(j.wider) > 0 {
			msg += "; and " + j.bypassMessage()
		}
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonPodsNotIsolated, Message: msg}
	case len(j.wider) > 0:
		return Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonIsolationBypassed, Message: j.bypassMessage()}
	default:
		return Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonPodsIsolated,
			Message: fmt.Sprintf("all %d selected pods are isolated in both directions by NetworkPolicies, which open them no wider than networkIsolation declares", j.pods)}
	}
}

// bypassMessage names the policy that opens the widest flow beyond what is
// declared, the flow, the pods, and the other policies that widen them.
func (j isolationJudgement) bypassMessage() string {
	first := j.wider[0]
	msg := fmt.Sprintf("NetworkPolicy %s opens %s for %d of %d selected pods (%s), wider than networkIsolation declares",
		first.policy, first.flow.Describe(first.dir), len(first.pods), j.pods, strings.Join(named(first.pods), ", "))
	if len(j.wider) == 1 {
		return msg + "; NetworkPolicies add up, so narrow or remove it, or declare what it opens in networkIsolation"
	}
	others := make([]string, 0, len(j.wider)-1)
	for _, b := range j.wider[1:] {
		others = append(others, b.policy)
	}
	return msg + fmt.Sprintf("; so do NetworkPolicies %s; NetworkPolicies add up, so narrow or remove them, or declare what they open in networkIsolation",
		strings.Join(named(others), ", "))
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
