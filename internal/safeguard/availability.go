package safeguard

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/ssa"
)

// Availability reports whether the selected pods survive the loss of one of
// them (HIPAA §164.308(a)(7)(ii)(C), emergency mode operation, Required):
//
//   - each pod belongs to a replicated owner (a Deployment through its
//     ReplicaSet, a StatefulSet, or a ReplicaSet of its own) that runs at least
//     availability.minReplicas replicas; when a HorizontalPodAutoscaler
//     targets the owner, its minReplicas is what counts, as it may scale down
//     to it. A bare pod, a Job's, a DaemonSet's or another controller's is a
//     finding (NoReplicatedOwner): a DaemonSet's pods are tied to their nodes
//     (one per node, none moved when a node goes, skipped by `kubectl drain`,
//     so no PodDisruptionBudget protects them) and it has no replica count to
//     hold against minReplicas;
//   - a PodDisruptionBudget covers every selected pod, and no pod is matched
//     by two (the eviction API refuses to evict such a pod at all);
//   - each owner's pods are spread: on at least two nodes, or its pod template
//     declares a topologySpreadConstraint or a podAntiAffinity (required or
//     preferred) over hostnames or zones that selects its own pods. Pods not
//     yet scheduled are judged from what the template declares; with nothing
//     declared and fewer than two nodes seen, the result is Unknown.
//
// Enforce keeps a PodDisruptionBudget (maxUnavailable: 1, the workload's
// selector) for the workload, unless a budget phiguard does not own already
// covers some selected pod: a second budget would make those pods impossible
// to evict, so phiguard then generates none and removes the one it made. It
// never scales the user's workloads. Audit reports only; a budget phiguard
// generated earlier in Enforce is removed, as NetworkIsolation removes its
// policy. At admission it only warns (availability_admission.go): a
// Deployment or StatefulSet whose template a workload covers, created or
// updated with fewer replicas than minReplicas or no declared spread.
type Availability struct{}

// What Availability reads and writes.
// +kubebuilder:rbac:groups=apps,resources=replicasets;deployments;statefulsets,verbs=get;list;watch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete

// The owners of pods, their autoscalers and the disruption budgets in the
// workload's namespace, read from the cache. Shared: they are judged, and
// phiguard's own budget extracted (ssa.Apply) and deleted, never changed.
var (
	ReplicaSets  = ListIn("ReplicaSets", Shared, func(l *appsv1.ReplicaSetList) []appsv1.ReplicaSet { return l.Items })
	Deployments  = ListIn("Deployments", Shared, func(l *appsv1.DeploymentList) []appsv1.Deployment { return l.Items })
	StatefulSets = ListIn("StatefulSets", Shared, func(l *appsv1.StatefulSetList) []appsv1.StatefulSet { return l.Items })
	Autoscalers  = ListIn("HorizontalPodAutoscalers", Shared, func(l *autoscalingv2.HorizontalPodAutoscalerList) []autoscalingv2.HorizontalPodAutoscaler {
		return l.Items
	})
	DisruptionBudgets = ListIn("PodDisruptionBudgets", Shared, func(l *policyv1.PodDisruptionBudgetList) []policyv1.PodDisruptionBudget { return l.Items })
)

// Name implements Safeguard.
func (Availability) Name() phiguardv1alpha1.SafeguardName { return phiguardv1alpha1.Available }

// Rule implements Safeguard.
func (Availability) Rule() Rule {
	// Proposed: §164.308(a)(13), contingency plan (restore critical systems
	// and data within 72 hours of their loss).
	return Rule{Section: "§164.308(a)(7)(ii)(C)", Specification: phiguardv1alpha1.Required,
		ProposedSection: "§164.308(a)(13)",
		Summary:         "ePHI workloads keep running through the loss of a pod"}
}

// Defaults implements Safeguard: Audit, at least two replicas.
func (Availability) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.Availability = &phiguardv1alpha1.AvailabilitySpec{Mode: phiguardv1alpha1.ModeAudit, MinReplicas: ptr.To[int32](2)}
}

// Inputs implements Reader.
func (Availability) Inputs() []Input {
	return []Input{ReplicaSets, Deployments, StatefulSets, Autoscalers, DisruptionBudgets}
}

// Watches implements Watcher. Only spec changes (a new generation), creations
// and deletions count: the status of these kinds changes all the time and
// says nothing the judgment reads. An owner maps to the workloads selecting
// its pod template's labels; an autoscaler or a budget, few in a namespace,
// to every workload of it. A pod being scheduled (spec.nodeName set) changes
// no label, so the controller's own pod watch misses it: it is watched here.
func (Availability) Watches() []Watch {
	generation := []predicate.Predicate{predicate.GenerationChangedPredicate{}}
	inNamespace := func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
		return w.In(ctx, obj.GetNamespace())
	}
	return []Watch{
		{Object: &appsv1.Deployment{}, Map: selectingTemplate, Predicates: generation},
		{Object: &appsv1.StatefulSet{}, Map: selectingTemplate, Predicates: generation},
		{Object: &appsv1.ReplicaSet{}, Map: selectingTemplate, Predicates: generation},
		{Object: &autoscalingv2.HorizontalPodAutoscaler{}, Map: inNamespace, Predicates: generation},
		{Object: &policyv1.PodDisruptionBudget{}, Map: inNamespace, Predicates: generation},
		{Object: &corev1.Pod{}, Predicates: []predicate.Predicate{podScheduled}, Map: func(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
			return w.Selecting(ctx, obj.GetNamespace(), obj.GetLabels())
		}},
	}
}

// selectingTemplate maps a Deployment, StatefulSet or ReplicaSet to the
// workloads whose selector matches its pod template's labels.
func selectingTemplate(ctx context.Context, w Workloads, obj client.Object) []reconcile.Request {
	var tmpl *corev1.PodTemplateSpec
	switch o := obj.(type) {
	case *appsv1.Deployment:
		tmpl = &o.Spec.Template
	case *appsv1.StatefulSet:
		tmpl = &o.Spec.Template
	case *appsv1.ReplicaSet:
		tmpl = &o.Spec.Template
	default:
		return w.In(ctx, obj.GetNamespace())
	}
	return w.Selecting(ctx, obj.GetNamespace(), tmpl.Labels)
}

// podScheduled passes the updates of a pod that set or change its node.
var podScheduled = predicate.Funcs{
	CreateFunc:  func(event.CreateEvent) bool { return false },
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, oldOK := e.ObjectOld.(*corev1.Pod)
		pod, newOK := e.ObjectNew.(*corev1.Pod)
		return oldOK && newOK && old.Spec.NodeName != pod.Spec.NodeName
	},
}

// DisruptionBudgetName is the name of the PodDisruptionBudget phiguard keeps
// for a workload, the name of its other owned objects.
func DisruptionBudgetName(workload string) string {
	return NetworkPolicyName(workload)
}

// DesiredDisruptionBudget is the PodDisruptionBudget phiguard keeps in
// Enforce: at most one selected pod voluntarily disrupted at a time. With
// maxUnavailable rather than minAvailable, a workload of one replica can still
// be drained.
func DesiredDisruptionBudget(w *phiguardv1alpha1.PHIWorkload) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	return policyv1ac.PodDisruptionBudget(DisruptionBudgetName(w.Name), w.Namespace).
		WithLabels(ownedLabels(w)).
		WithOwnerReferences(controllerReference(w)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMaxUnavailable(intstr.FromInt32(1)).
			WithSelector(ssa.LabelSelector(&w.Spec.Selector)))
}

// Reconcile implements Safeguard. With no pod selected a result that holds
// is Unknown (NoPodsSelected); Enforce still keeps the budget for the pods to come.
func (a Availability) Reconcile(ctx context.Context, s *Scope) Result {
	return NoPods(s, a.reconcile(ctx, s))
}

func (a Availability) reconcile(ctx context.Context, s *Scope) Result {
	var own, others []policyv1.PodDisruptionBudget
	for _, pdb := range DisruptionBudgets.Get(s) {
		if metav1.IsControlledBy(&pdb, s.Workload) {
			own = append(own, pdb)
		} else {
			others = append(others, pdb)
		}
	}
	in := availabilityInputs{
		ReplicaSets: ReplicaSets.Get(s), Deployments: Deployments.Get(s), StatefulSets: StatefulSets.Get(s),
		Autoscalers: Autoscalers.Get(s), MinReplicas: minReplicasOf(&s.Settings),
		Budgets: others,
	}
	enforce := s.Mode(a.Name()) == phiguardv1alpha1.ModeEnforce
	budget, nameTaken, events, err := a.keepBudget(ctx, s, enforce, own, others)
	if err != nil {
		return Result{Err: err, Events: events}
	}
	if budget != nil {
		in.Budgets = append(in.Budgets, *budget)
	}
	r := judgeAvailability(s.Pods, in).result(enforce, nameTaken)
	r.Events = events
	return r
}

// keepBudget does what the mode asks of phiguard's own budget: in Enforce,
// apply it when no other budget covers a selected pod (returning it as the
// apiserver holds it, or nameTaken when a budget phiguard does not own holds
// its name), remove it otherwise; in Audit, remove it.
func (a Availability) keepBudget(ctx context.Context, s *Scope, enforce bool, own, others []policyv1.PodDisruptionBudget) (
	budget *policyv1.PodDisruptionBudget, nameTaken string, events []Event, err error) {
	covering := budgetsCovering(s.Pods, yieldTo(s.Workload, own, others))
	switch {
	case enforce && len(covering) == 0:
		applied, written, err := a.ensureBudget(ctx, s)
		if err != nil {
			return nil, "", nil, err
		}
		if written != nil {
			events = append(events, *written)
		}
		if applied == nil {
			nameTaken = DisruptionBudgetName(s.Workload.Name)
		}
		return applied, nameTaken, events, nil
	case enforce:
		events, err = removeBudgets(ctx, s.Client, own, fmt.Sprintf(
			"PodDisruptionBudget %s covers selected pods, and a pod matched by two budgets cannot be evicted at all",
			strings.Join(named(covering), ", ")))
	default:
		events, err = removeBudgets(ctx, s.Client, own, fmt.Sprintf("availability.mode is %s", s.Mode(a.Name())))
	}
	return nil, "", events, err
}

// ensureBudget applies phiguard's budget unless the fields phiguard owns on
// it already hold what it wants, and returns the budget as the apiserver
// holds it, with the Event of a write. Nil (and no error) when a budget of
// its name exists that phiguard does not own: it is left alone.
func (a Availability) ensureBudget(ctx context.Context, s *Scope) (*policyv1.PodDisruptionBudget, *Event, error) {
	name := DisruptionBudgetName(s.Workload.Name)
	existing := byName(DisruptionBudgets.Get(s), name)
	if existing != nil && !metav1.IsControlledBy(existing, s.Workload) {
		return nil, nil, nil
	}
	desired := DesiredDisruptionBudget(s.Workload)
	changed, err := ssa.Apply(ctx, s.Client, existing, desired, ssa.Generated(policyv1ac.ExtractPodDisruptionBudget))
	if err != nil {
		return nil, nil, err
	}
	if !changed {
		return existing, nil, nil
	}
	// Apply decoded the stored object into desired: that is what now covers the pods.
	stored, err := ssa.Typed[policyv1.PodDisruptionBudget](desired)
	if err != nil {
		return nil, nil, fmt.Errorf("PodDisruptionBudget %s: %w", ptr.Deref(desired.Name, ""), err)
	}
	written := &Event{Reason: phiguardv1alpha1.ReasonDisruptionBudgetCreated,
		Message: fmt.Sprintf("created PodDisruptionBudget %s (maxUnavailable: 1) for the selected pods", name)}
	switch editors := specEditors(existing); {
	case existing != nil && len(editors) > 0:
		written = &Event{Warning: true, Reason: phiguardv1alpha1.ReasonDisruptionBudgetUpdated,
			Message: fmt.Sprintf("reverted changes that %s made to PodDisruptionBudget %s (maxUnavailable: 1, the workload's selector)",
				strings.Join(editors, ", "), name)}
	case existing != nil:
		written.Reason = phiguardv1alpha1.ReasonDisruptionBudgetUpdated
		written.Message = fmt.Sprintf("updated PodDisruptionBudget %s to follow the workload's selector", name)
	}
	written.Related = reference(policyv1.SchemeGroupVersion.String(), "PodDisruptionBudget", stored)
	return stored, written, nil
}

// specEditors names the field managers other than phiguard that own fields
// of the budget's spec: someone edited what phiguard keeps.
func specEditors(pdb *policyv1.PodDisruptionBudget) []string {
	if pdb == nil {
		return nil
	}
	var out []string
	for _, mf := range pdb.ManagedFields {
		if mf.Manager != ssa.FieldManager && mf.FieldsV1 != nil && strings.Contains(mf.FieldsV1.GetRawString(), `"f:spec"`) &&
			!slices.Contains(out, mf.Manager) {
			out = append(out, mf.Manager)
		}
	}
	return out
}

// yieldTo returns the budgets that keep phiguard from generating its own:
// all of others, but when phiguard's budget for the workload exists, not the
// budgets phiguard generated for another workload under a later name. Two
// workloads selecting the same pods would otherwise each see the other's
// budget, each remove its own, and each generate it again: the budget of the
// first name stays, and the other workload removes its own.
func yieldTo(w *phiguardv1alpha1.PHIWorkload, own, others []policyv1.PodDisruptionBudget) []policyv1.PodDisruptionBudget {
	mine := byName(own, DisruptionBudgetName(w.Name))
	if mine == nil {
		return others
	}
	return slices.DeleteFunc(slices.Clone(others), func(pdb policyv1.PodDisruptionBudget) bool {
		owner := metav1.GetControllerOf(&pdb)
		return owner != nil && owner.Kind == kindPHIWorkload && owner.APIVersion == phiguardv1alpha1.GroupVersion.String() &&
			pdb.Name > mine.Name
	})
}

// removeBudgets deletes the budgets phiguard generated for the workload, each
// with an Event saying why.
func removeBudgets(ctx context.Context, c client.Client, own []policyv1.PodDisruptionBudget, why string) ([]Event, error) {
	var events []Event
	for i := range own {
		pdb := &own[i]
		if err := c.Delete(ctx, pdb, client.Preconditions{UID: &pdb.UID}); err != nil && !apierrors.IsNotFound(err) {
			return events, fmt.Errorf("removing PodDisruptionBudget %s: %w", pdb.Name, err)
		}
		events = append(events, Event{Reason: phiguardv1alpha1.ReasonDisruptionBudgetRemoved,
			Message: fmt.Sprintf("removed PodDisruptionBudget %s, which phiguard generated: %s", pdb.Name, why),
			Related: reference(policyv1.SchemeGroupVersion.String(), "PodDisruptionBudget", pdb)})
	}
	return events, nil
}

// budgetsCovering names the budgets that match at least one of the pods, sorted.
func budgetsCovering(pods []corev1.Pod, budgets []policyv1.PodDisruptionBudget) []string {
	var out []string
	for i := range pods {
		for _, name := range budgetsOf(&pods[i], budgets) {
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	slices.Sort(out)
	return out
}

// budgetsOf names the budgets whose selector matches the pod, as the
// disruption controller and the eviction API match them in policy/v1: an
// empty selector matches every pod of the namespace, a missing one none.
func budgetsOf(pod *corev1.Pod, budgets []policyv1.PodDisruptionBudget) []string {
	var out []string
	for i := range budgets {
		pdb := &budgets[i]
		if pdb.Namespace != pod.Namespace || pdb.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
		if err != nil {
			continue // the apiserver stores no invalid selector
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, pdb.Name)
		}
	}
	return out
}

// availabilityInputs are what the judgment reads besides the pods, all of
// the workload's namespace.
type availabilityInputs struct {
	ReplicaSets  []appsv1.ReplicaSet
	Deployments  []appsv1.Deployment
	StatefulSets []appsv1.StatefulSet
	Autoscalers  []autoscalingv2.HorizontalPodAutoscaler
	// Budgets are the PodDisruptionBudgets that count: every budget of the
	// namespace phiguard does not own for this workload, and phiguard's own
	// only as the apiserver holds it.
	Budgets []policyv1.PodDisruptionBudget
	// MinReplicas is availability.minReplicas.
	MinReplicas int32
}

// replicatedOwner is a Deployment, StatefulSet or ReplicaSet some selected
// pods belong to.
type replicatedOwner struct {
	kind, name string
	// replicas is what it is sure to run: spec.replicas, or the least
	// minReplicas of the autoscalers targeting it.
	replicas int32
	// autoscaler names the autoscaler replicas comes from; "" for spec.replicas.
	autoscaler string
	template   *corev1.PodTemplateSpec
	pods       []*corev1.Pod
}

func (o *replicatedOwner) String() string { return o.kind + " " + o.name }

// tooFew says whether the owner is sure to run fewer than minReplicas.
func (o *replicatedOwner) tooFew(minReplicas int32) bool { return o.replicas < minReplicas }

// minReplicasOf is the effective availability.minReplicas (2, the built-in
// default, when unset).
func minReplicasOf(s *phiguardv1alpha1.SafeguardSettings) int32 {
	if s.Availability == nil {
		return 2
	}
	return ptr.Deref(s.Availability.MinReplicas, 2)
}

// describeReplicas is "Deployment api (3 replicas)" or "Deployment api (at
// least 1 replica, the minReplicas of HorizontalPodAutoscaler api)".
func (o *replicatedOwner) describeReplicas() string {
	if o.autoscaler != "" {
		return fmt.Sprintf("%s (at least %s, the minReplicas of HorizontalPodAutoscaler %s)", o, replicasOf(o.replicas), o.autoscaler)
	}
	return fmt.Sprintf("%s (%s)", o, replicasOf(o.replicas))
}

func replicasOf(n int32) string {
	if n == 1 {
		return "1 replica"
	}
	return fmt.Sprintf("%d replicas", n)
}

// availabilityJudgement is how the selected pods stand; each list holds one
// entry per offending object, as the message names it, sorted.
type availabilityJudgement struct {
	pods        int
	minReplicas int32
	// owners are the replicated owners found, sorted by kind and name.
	owners []*replicatedOwner
	// noOwner are the pods with no replicated owner: "records-0 (no owner)".
	noOwner []string
	// ownerMissing are the pods whose owner is not in the cluster (yet).
	ownerMissing []string
	// tooFew are the owners running fewer than minReplicas.
	tooFew []string
	// uncovered are the pods no budget covers; covering the budgets that
	// cover some pod.
	uncovered, covering []string
	// overlapping are the pods two or more budgets match: "records-0 (a, b)".
	overlapping []string
	// oneNode are the owners all of whose pods run on one node, with nothing
	// declared to spread them; unscheduled those whose pods are not all
	// scheduled, seen on fewer than two nodes, with nothing declared.
	oneNode, unscheduled []string
	// spread says how each spread owner is spread.
	spread []string
}

// judgeAvailability judges the pods: their owners and replicas, their
// budgets, their spread over nodes.
func judgeAvailability(pods []corev1.Pod, in availabilityInputs) availabilityJudgement {
	j := availabilityJudgement{pods: len(pods), minReplicas: in.MinReplicas}
	sorted := slices.Clone(pods)
	slices.SortFunc(sorted, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	owners := map[string]*replicatedOwner{}
	for i := range sorted {
		pod := &sorted[i]
		switch budgets := budgetsOf(pod, in.Budgets); {
		case len(budgets) == 0:
			j.uncovered = append(j.uncovered, pod.Name)
		case len(budgets) > 1:
			j.overlapping = append(j.overlapping, fmt.Sprintf("%s (%s)", pod.Name, strings.Join(budgets, ", ")))
		}
		owner, problem, missing := ownerOf(pod, in)
		switch {
		case missing:
			j.ownerMissing = append(j.ownerMissing, fmt.Sprintf("%s (%s)", pod.Name, problem))
		case owner == nil:
			j.noOwner = append(j.noOwner, fmt.Sprintf("%s (%s)", pod.Name, problem))
		default:
			key := owner.String()
			if owners[key] == nil {
				owners[key] = owner
				j.owners = append(j.owners, owner)
			}
			owners[key].pods = append(owners[key].pods, pod)
		}
	}
	j.covering = budgetsCovering(pods, in.Budgets)
	slices.SortFunc(j.owners, func(a, b *replicatedOwner) int {
		return cmp.Or(strings.Compare(a.kind, b.kind), strings.Compare(a.name, b.name))
	})
	for _, o := range j.owners {
		if o.tooFew(in.MinReplicas) {
			j.tooFew = append(j.tooFew, o.describeReplicas())
		}
		j.judgeSpread(o)
	}
	return j
}

// judgeSpread files an owner as spread, on one node, or not yet known. What
// the scheduler did wins over what the template declares: a declared spread
// counts only while fewer than two of the owner's pods are scheduled, since
// the scheduler applies it only when it places a pod (pods replaced one by one
// can end up together on one node all the same).
func (j *availabilityJudgement) judgeSpread(o *replicatedOwner) {
	var nodes, pending []string
	scheduled := 0
	for _, p := range o.pods {
		switch {
		case p.Spec.NodeName == "":
			pending = append(pending, p.Name)
			continue
		case !slices.Contains(nodes, p.Spec.NodeName):
			nodes = append(nodes, p.Spec.NodeName)
		}
		scheduled++
	}
	slices.Sort(nodes)
	declared := declaredSpread(o.template)
	switch {
	case len(nodes) >= 2:
		j.spread = append(j.spread, fmt.Sprintf("%s runs on nodes %s", o, strings.Join(named(nodes), ", ")))
	case declared != "" && scheduled >= 2:
		j.oneNode = append(j.oneNode, fmt.Sprintf("%s (all %d scheduled pods on node %s, although it declares %s, which the scheduler applies only when it places a pod: delete one of them to have it placed again)",
			o, scheduled, nodes[0], declared))
	case declared != "":
		j.spread = append(j.spread, fmt.Sprintf("%s declares %s", o, declared))
	case len(pending) > 0:
		j.unscheduled = append(j.unscheduled, fmt.Sprintf("%s (pods %s not scheduled yet)", o, strings.Join(named(pending), ", ")))
	default:
		j.oneNode = append(j.oneNode, fmt.Sprintf("%s (all %d selected pods on node %s)", o, len(o.pods), nodes[0]))
	}
}

// spreadKeys are the topology keys whose spread survives the loss of a node.
var spreadKeys = []string{corev1.LabelHostname, corev1.LabelTopologyZone}

// declaredSpread says what in the template spreads its pods over nodes or
// zones: a topologySpreadConstraint, or a podAntiAffinity term (required or
// preferred), on kubernetes.io/hostname or topology.kubernetes.io/zone whose
// label selector matches the template's own labels. "" when nothing does.
func declaredSpread(tmpl *corev1.PodTemplateSpec) string {
	own := labels.Set(tmpl.Labels)
	matchesOwn := func(s *metav1.LabelSelector) bool {
		sel, err := metav1.LabelSelectorAsSelector(s)
		return s != nil && err == nil && sel.Matches(own)
	}
	for _, c := range tmpl.Spec.TopologySpreadConstraints {
		if slices.Contains(spreadKeys, c.TopologyKey) && matchesOwn(c.LabelSelector) {
			return "a topologySpreadConstraint on " + c.TopologyKey
		}
	}
	aff := tmpl.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil {
		return ""
	}
	for _, t := range aff.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		if slices.Contains(spreadKeys, t.TopologyKey) && matchesOwn(t.LabelSelector) {
			return "a required podAntiAffinity on " + t.TopologyKey
		}
	}
	for _, w := range aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
		if slices.Contains(spreadKeys, w.PodAffinityTerm.TopologyKey) && matchesOwn(w.PodAffinityTerm.LabelSelector) {
			return "a preferred podAntiAffinity on " + w.PodAffinityTerm.TopologyKey
		}
	}
	return ""
}

// ownerOf finds the replicated owner of a pod: the Deployment of its
// ReplicaSet, the ReplicaSet when nothing controls it, or its StatefulSet.
// Otherwise problem says what the pod has instead ("no owner", "owned by
// DaemonSet agent"), and missing whether it is an owner phiguard cannot find.
func ownerOf(pod *corev1.Pod, in availabilityInputs) (owner *replicatedOwner, problem string, missing bool) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return nil, "no owner", false
	}
	gv, _ := schema.ParseGroupVersion(ref.APIVersion)
	if gv.Group != appsv1.GroupName {
		return nil, fmt.Sprintf("owned by %s %s", ref.Kind, ref.Name), false
	}
	switch ref.Kind {
	case kindStatefulSet:
		sts := byName(in.StatefulSets, ref.Name)
		if sts == nil || sts.UID != ref.UID {
			return nil, "its StatefulSet " + ref.Name + " is not found", true
		}
		return newOwner(kindStatefulSet, sts.Name, sts.Spec.Replicas, &sts.Spec.Template, in.Autoscalers), "", false
	case kindReplicaSet:
		rs := byName(in.ReplicaSets, ref.Name)
		if rs == nil || rs.UID != ref.UID {
			return nil, "its ReplicaSet " + ref.Name + " is not found", true
		}
		rsRef := metav1.GetControllerOf(rs)
		if rsRef == nil {
			return newOwner(kindReplicaSet, rs.Name, rs.Spec.Replicas, &rs.Spec.Template, in.Autoscalers), "", false
		}
		if rsGV, _ := schema.ParseGroupVersion(rsRef.APIVersion); rsRef.Kind != kindDeployment || rsGV.Group != appsv1.GroupName {
			return nil, fmt.Sprintf("its ReplicaSet %s is controlled by %s %s, which phiguard does not judge", rs.Name, rsRef.Kind, rsRef.Name), false
		}
		dep := byName(in.Deployments, rsRef.Name)
		if dep == nil || dep.UID != rsRef.UID {
			return nil, fmt.Sprintf("the Deployment %s of its ReplicaSet %s is not found", rsRef.Name, rs.Name), true
		}
		return newOwner(kindDeployment, dep.Name, dep.Spec.Replicas, &dep.Spec.Template, in.Autoscalers), "", false
	default:
		return nil, fmt.Sprintf("owned by %s %s", ref.Kind, ref.Name), false
	}
}

// newOwner is an owner with what it is sure to run: spec.replicas (1 when
// unset, as the apiserver defaults it), or, when autoscalers target it, the
// least of their minReplicas (1 when unset).
func newOwner(kind, name string, replicas *int32, tmpl *corev1.PodTemplateSpec, hpas []autoscalingv2.HorizontalPodAutoscaler) *replicatedOwner {
	o := &replicatedOwner{kind: kind, name: name, replicas: ptr.Deref(replicas, 1), template: tmpl}
	for i := range hpas {
		ref := hpas[i].Spec.ScaleTargetRef
		gv, _ := schema.ParseGroupVersion(ref.APIVersion)
		if ref.Kind != kind || ref.Name != name || gv.Group != appsv1.GroupName {
			continue
		}
		if least := ptr.Deref(hpas[i].Spec.MinReplicas, 1); o.autoscaler == "" || least < o.replicas {
			o.replicas, o.autoscaler = least, hpas[i].Name
		}
	}
	return o
}

// result turns the judgment into the condition: False naming every finding
// when something fails, the worst's reason first; Unknown when nothing fails
// but something cannot be judged yet; True otherwise. nameTaken is the name
// of phiguard's budget when a budget phiguard does not own holds it (Enforce).
func (j availabilityJudgement) result(enforce bool, nameTaken string) Result {
	var problems []string
	reason := ""
	add := func(r, msg string) {
		reason = cmp.Or(reason, r)
		problems = append(problems, msg)
	}
	if len(j.noOwner) > 0 {
		add(phiguardv1alpha1.ReasonNoReplicatedOwner, fmt.Sprintf(
			"%d of %d selected pods belong to no Deployment or StatefulSet, so nothing replaces them when they are lost: %s; run them from a Deployment or StatefulSet of at least %s",
			len(j.noOwner), j.pods, strings.Join(named(j.noOwner), ", "), replicasOf(j.minReplicas)))
	}
	if len(j.tooFew) > 0 {
		add(phiguardv1alpha1.ReasonTooFewReplicas, fmt.Sprintf(
			"%s below availability.minReplicas %d: %s; raise spec.replicas (or the HorizontalPodAutoscaler's minReplicas) to at least %d",
			pluralOwners(len(j.tooFew), "runs", "run"), j.minReplicas, strings.Join(named(j.tooFew), ", "), j.minReplicas))
	}
	if nameTaken != "" {
		add(phiguardv1alpha1.ReasonDisruptionBudgetNameTaken, fmt.Sprintf(
			"PodDisruptionBudget %s exists, is not phiguard's and covers none of the selected pods; rename or delete it so that phiguard can generate its budget",
			nameTaken))
	} else if len(j.uncovered) > 0 {
		add(phiguardv1alpha1.ReasonNoDisruptionBudget, j.uncoveredMessage(enforce))
	}
	if len(j.overlapping) > 0 {
		add(phiguardv1alpha1.ReasonOverlappingDisruptionBudgets, fmt.Sprintf(
			"%d of %d selected pods are matched by more than one PodDisruptionBudget, and the eviction API refuses to evict such a pod at all (a node drain stalls): %s; keep one budget per pod",
			len(j.overlapping), j.pods, strings.Join(named(j.overlapping), ", ")))
	}
	if len(j.oneNode) > 0 {
		add(phiguardv1alpha1.ReasonPodsOnOneNode, fmt.Sprintf(
			"%s every selected pod on one node, so losing that node loses them all: %s; spread them with a topologySpreadConstraint or a podAntiAffinity on %s in the pod template",
			pluralOwners(len(j.oneNode), "runs", "run"), strings.Join(named(j.oneNode), ", "), corev1.LabelHostname))
	}
	failing := reason != ""
	if len(j.ownerMissing) > 0 {
		if !failing {
			reason = phiguardv1alpha1.ReasonOwnerNotFound
		}
		problems = append(problems, fmt.Sprintf("the owners of %d selected pods are not found, so their replicas cannot be judged: %s",
			len(j.ownerMissing), strings.Join(named(j.ownerMissing), ", ")))
	}
	if len(j.unscheduled) > 0 {
		if reason == "" {
			reason = phiguardv1alpha1.ReasonPodsNotScheduled
		}
		problems = append(problems, fmt.Sprintf(
			"the spread of %s cannot be judged yet: their pods are seen on fewer than two nodes, some are not scheduled, and their pod templates declare no spread: %s",
			pluralOwners(len(j.unscheduled), "", ""), strings.Join(named(j.unscheduled), ", ")))
	}
	switch {
	case failing:
		return Result{Status: metav1.ConditionFalse, Reason: reason, Message: strings.Join(problems, "; ")}
	case reason != "":
		return Result{Status: metav1.ConditionUnknown, Reason: reason, Message: strings.Join(problems, "; ")}
	}
	owners := make([]string, 0, len(j.owners))
	for _, o := range j.owners {
		owners = append(owners, o.describeReplicas())
	}
	return Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonRedundant, Message: fmt.Sprintf(
		"the %d selected pods belong to %s, each at least availability.minReplicas %d; PodDisruptionBudgets cover every pod, one each (%s); spread: %s",
		j.pods, strings.Join(named(owners), ", "), j.minReplicas, strings.Join(named(j.covering), ", "), strings.Join(named(j.spread), "; "))}
}

func (j availabilityJudgement) uncoveredMessage(enforce bool) string {
	msg := fmt.Sprintf("%d of %d selected pods are covered by no PodDisruptionBudget, so a node drain may evict them all at once: %s",
		len(j.uncovered), j.pods, strings.Join(named(j.uncovered), ", "))
	switch {
	case len(j.covering) > 0 && enforce:
		return msg + fmt.Sprintf("; PodDisruptionBudget %s covers the others, so phiguard generates none (a pod matched by two budgets cannot be evicted at all): widen it to cover these pods",
			strings.Join(named(j.covering), ", "))
	case len(j.covering) > 0:
		return msg + fmt.Sprintf("; PodDisruptionBudget %s covers the others: widen it to cover these pods", strings.Join(named(j.covering), ", "))
	case enforce:
		return msg + "; phiguard's budget does not exist yet"
	default:
		return msg + "; add a PodDisruptionBudget (maxUnavailable: 1) selecting them, or set availability.mode to Enforce for phiguard to generate one"
	}
}

// pluralOwners is "1 owner runs" or "2 owners run".
func pluralOwners(n int, one, many string) string {
	if n == 1 {
		return strings.TrimSpace("1 owner " + one)
	}
	return strings.TrimSpace(fmt.Sprintf("%d owners %s", n, many))
}
