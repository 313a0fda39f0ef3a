//go:build e2e

package faults

import (
	"context"
	"fmt"
	"slices"

	kyvernopolicyreport "github.com/kyverno/kyverno/api/policyreport/v1alpha2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/policyreport"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// verdict is what a workload's status says, without what names it or moves
// with time: two workloads of one shape in two namespaces have the same.
type verdict struct {
	Compliance  phiguardv1alpha1.Compliance
	Score       string
	MatchedPods int32
	// Conditions are "<type>=<status> (<reason>)", sorted.
	Conditions []string
	// Safeguards are "<name> <mode> from <source>: <status> (<reason>)", sorted.
	Safeguards []string
}

func verdictOf(w *phiguardv1alpha1.PHIWorkload) verdict {
	v := verdict{Compliance: w.Status.Compliance, Score: w.Status.Score, MatchedPods: w.Status.MatchedPods}
	for _, c := range w.Status.Conditions {
		v.Conditions = append(v.Conditions, fmt.Sprintf("%s=%s (%s)", c.Type, c.Status, c.Reason))
	}
	for _, s := range w.Status.Safeguards {
		v.Safeguards = append(v.Safeguards, fmt.Sprintf("%s %s from %s: %s (%s)", s.Name, s.Mode, s.ModeSource, s.Status, s.Reason))
	}
	slices.Sort(v.Conditions)
	slices.Sort(v.Safeguards)
	return v
}

// world is everything the convergence check reads, listed once per check:
// in the namespaces of the spec, every object of the kinds phiguard makes
// (the test makes none of them), and every Schedule that backs one up.
type world struct {
	workloads  map[types.NamespacedName]*phiguardv1alpha1.PHIWorkload
	policies   []networkingv1.NetworkPolicy
	schedules  []velerov1.Schedule
	reports    []kyvernopolicyreport.PolicyReport
	clusterRep []kyvernopolicyreport.ClusterPolicyReport
}

func read(ctx context.Context, g Gomega, namespaces []string) *world {
	w := &world{workloads: map[types.NamespacedName]*phiguardv1alpha1.PHIWorkload{}}
	for _, ns := range namespaces {
		var list phiguardv1alpha1.PHIWorkloadList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		for i := range list.Items {
			w.workloads[client.ObjectKeyFromObject(&list.Items[i])] = &list.Items[i]
		}
		var nps networkingv1.NetworkPolicyList
		g.Expect(k8s.List(ctx, &nps, client.InNamespace(ns))).To(Succeed())
		w.policies = append(w.policies, nps.Items...)
		w.reports = append(w.reports, listReports[kyvernopolicyreport.PolicyReport](ctx, g, policyreport.WGPolicy.Namespaced, ns)...)
	}
	var schedules velerov1.ScheduleList
	g.Expect(k8s.List(ctx, &schedules, client.InNamespace("velero"))).To(Succeed())
	for _, s := range schedules.Items {
		if slices.ContainsFunc(s.Spec.Template.IncludedNamespaces, func(ns string) bool { return slices.Contains(namespaces, ns) }) {
			w.schedules = append(w.schedules, s)
		}
	}
	w.clusterRep = listReports[kyvernopolicyreport.ClusterPolicyReport](ctx, g, policyreport.WGPolicy.Cluster, "")
	return w
}

// listReports lists a report kind (the manager writes them unstructured) as
// its typed form.
func listReports[T any](ctx context.Context, g Gomega, kind, namespace string) []T {
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(policyreport.WGPolicy.GVK(kind + "List"))
	g.Expect(k8s.List(ctx, list, client.InNamespace(namespace))).To(Succeed())
	out := make([]T, len(list.Items))
	for i := range list.Items {
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(list.Items[i].Object, &out[i])).To(Succeed())
	}
	return out
}

// expectSettled checks that the status describes the current generation,
// with every safeguard's result, and no failure to finish.
func expectSettled(g Gomega, w *phiguardv1alpha1.PHIWorkload, safeguards []phiguardv1alpha1.SafeguardName) {
	key := client.ObjectKeyFromObject(w).String()
	g.Expect(w.DeletionTimestamp).To(BeNil(), "%s is not being deleted", key)
	g.Expect(w.Status.ObservedGeneration).To(Equal(w.Generation), "%s: observedGeneration", key)
	g.Expect(w.Status.Safeguards).To(HaveLen(len(safeguards)), "%s: every safeguard reported", key)
	for _, name := range safeguards {
		g.Expect(meta.FindStatusCondition(w.Status.Conditions, string(name))).NotTo(BeNil(), "%s: condition %s", key, name)
	}
	ready := meta.FindStatusCondition(w.Status.Conditions, phiguardv1alpha1.ReadyCondition)
	g.Expect(ready).NotTo(BeNil(), "%s: Ready", key)
	g.Expect(ready.Reason).NotTo(BeElementOf(phiguardv1alpha1.ReasonReadFailed, phiguardv1alpha1.ReasonFinalizerFailed,
		phiguardv1alpha1.ReasonFinalizationFailed), "%s: Ready says the last reconcile could not finish: %s", key, ready.Message)
	g.Expect(meta.IsStatusConditionTrue(w.Status.Conditions, phiguardv1alpha1.ReconcilingCondition)).To(BeFalse(), "%s: Reconciling", key)
}

// expectChildren checks that each workload keeps exactly the NetworkPolicy
// and Schedule its plan says, with the spec it says, and that nothing is
// left without a living workload.
func expectChildren(g Gomega, w *world, plans map[types.NamespacedName]plan, control map[shape]types.NamespacedName) {
	policies := map[types.NamespacedName][]networkingv1.NetworkPolicy{}
	for _, np := range w.policies {
		owner := types.NamespacedName{Namespace: np.Namespace, Name: np.Labels[phiguardv1alpha1.WorkloadLabel]}
		live, ok := w.workloads[owner]
		g.Expect(ok).To(BeTrue(), "NetworkPolicy %s/%s: its workload %q is gone (an orphan)", np.Namespace, np.Name, owner)
		g.Expect(np.Labels).To(HaveKeyWithValue(phiguardv1alpha1.ManagedByLabel, phiguardv1alpha1.ManagedByValue))
		ref := metav1.GetControllerOf(&np)
		g.Expect(ref).NotTo(BeNil(), "NetworkPolicy %s/%s has a controller", np.Namespace, np.Name)
		g.Expect(ref.UID).To(Equal(live.UID), "NetworkPolicy %s/%s is owned by the living %s", np.Namespace, np.Name, owner)
		g.Expect(np.Name).To(Equal("phiguard-" + owner.Name))
		policies[owner] = append(policies[owner], np)
	}
	scheduleOwners := map[string]*phiguardv1alpha1.PHIWorkload{}
	for _, live := range w.workloads {
		scheduleOwners[safeguard.ScheduleName(live)] = live
	}
	schedules := map[types.NamespacedName][]velerov1.Schedule{}
	for _, s := range w.schedules {
		live, ok := scheduleOwners[s.Name]
		g.Expect(ok).To(BeTrue(), "Schedule %s: no living workload keeps it (an orphan)", s.Name)
		for k, v := range safeguard.ScheduleLabels(live) {
			g.Expect(s.Labels).To(HaveKeyWithValue(k, v), "Schedule %s is labelled for its workload", s.Name)
		}
		key := client.ObjectKeyFromObject(live)
		schedules[key] = append(schedules[key], s)
	}
	for key, p := range plans {
		_, live := w.workloads[key]
		g.Expect(live).To(Equal(p.change != deleted), "%s (%s) exists", key, p.change)
		if !live {
			continue // a Schedule or NetworkPolicy of it would be an orphan, above
		}
		g.Expect(schedules[key]).To(HaveLen(1), "%s: exactly one Schedule", key)
		g.Expect(schedules[key][0].Spec.Schedule).To(Equal(p.schedule()), "%s: the Schedule follows the spec", key)
		if !p.isolated() {
			g.Expect(policies[key]).To(BeEmpty(), "%s is in Audit: no NetworkPolicy", key)
			continue
		}
		g.Expect(policies[key]).To(HaveLen(1), "%s: exactly one NetworkPolicy", key)
		np := policies[key][0]
		ctl := policies[control[p.shape]]
		g.Expect(ctl).To(HaveLen(1), "the control of %s has its NetworkPolicy", p.shape)
		g.Expect(ruleCounts(np)).To(Equal(ruleCounts(ctl[0])), "%s: the NetworkPolicy has the control's rules", key)
		if p.change == rescheduled {
			g.Expect(np.Spec.Egress).To(ContainElement(HaveField("To", ContainElement(
				HaveField("IPBlock.CIDR", declaredEgressCIDR)))), "%s: the declared egress", key)
		}
		if p.variant == declaredIngress && !p.generated {
			g.Expect(np.Spec.Ingress).To(ContainElement(HaveField("From", ContainElement(
				HaveField("PodSelector.MatchLabels", HaveKeyWithValue("app", "frontend"))))), "%s: the declared ingress", key)
		}
	}
}

// ruleCounts says which policy types a NetworkPolicy has, and how many
// peers and ports each of its rules: what two workloads of one shape share.
func ruleCounts(np networkingv1.NetworkPolicy) string {
	out := fmt.Sprint(np.Spec.PolicyTypes)
	for _, r := range np.Spec.Ingress {
		out += fmt.Sprintf(" in:%d/%d", len(r.From), len(r.Ports))
	}
	for _, r := range np.Spec.Egress {
		out += fmt.Sprintf(" out:%d/%d", len(r.To), len(r.Ports))
	}
	return out
}

// expectReports checks that each namespace has one PolicyReport with a
// result per live workload and safeguard, as its status says, and that the
// cluster report has one result per live workload.
func expectReports(g Gomega, w *world, namespaces []string) {
	byNamespace := map[string][]*phiguardv1alpha1.PHIWorkload{}
	for _, wl := range w.workloads {
		byNamespace[wl.Namespace] = append(byNamespace[wl.Namespace], wl)
	}
	reports := map[string][]kyvernopolicyreport.PolicyReport{}
	for _, r := range w.reports {
		reports[r.Namespace] = append(reports[r.Namespace], r)
	}
	var wantCluster []string
	for _, ns := range namespaces {
		g.Expect(reports[ns]).To(HaveLen(1), "namespace %s: one PolicyReport", ns)
		var want, have []string
		for _, wl := range byNamespace[ns] {
			for _, r := range policyreport.WorkloadResults(wl) {
				want = append(want, r.Resource.Name+" "+r.Rule+"="+r.Outcome)
			}
			c := policyreport.ComplianceResult(wl)
			wantCluster = append(wantCluster, ns+"/"+c.Resource.Name+"="+c.Outcome)
		}
		for _, r := range reports[ns][0].Results {
			for _, res := range r.Resources {
				have = append(have, res.Name+" "+r.Rule+"="+string(r.Result))
			}
		}
		g.Expect(have).To(ConsistOf(want), "namespace %s: the PolicyReport follows the statuses", ns)
	}
	g.Expect(w.clusterRep).To(HaveLen(1), "one ClusterPolicyReport")
	var haveCluster []string
	for _, r := range w.clusterRep[0].Results {
		for _, res := range r.Resources {
			if slices.Contains(namespaces, res.Namespace) {
				haveCluster = append(haveCluster, res.Namespace+"/"+res.Name+"="+string(r.Result))
			}
		}
	}
	g.Expect(haveCluster).To(ConsistOf(wantCluster), "the ClusterPolicyReport follows the statuses")
}

// expectComplianceMetrics checks that the manager's compliance series (its
// own registry: every series is this spec's) are exactly the live
// workloads' statuses.
func expectComplianceMetrics(g Gomega, reg *prometheus.Registry, w *world) {
	var want, have []string
	for key, wl := range w.workloads {
		for _, s := range wl.Status.Safeguards {
			want = append(want, fmt.Sprintf("%s %s=%s", key, s.Name, s.Status))
		}
	}
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range families {
		if f.GetName() != "phiguard_safeguard_status" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetGauge().GetValue() != 1 {
				continue
			}
			l := labelMap(m.GetLabel())
			key := types.NamespacedName{Namespace: l["namespace"], Name: l["workload"]}
			have = append(have, fmt.Sprintf("%s %s=%s", key, l["safeguard"], l["status"]))
		}
	}
	g.Expect(have).To(ConsistOf(want), "phiguard_safeguard_status follows the statuses, and forgets deleted workloads")
}

// eventsByWorkload lists the Events about each PHIWorkload of the namespaces.
func eventsByWorkload(ctx context.Context, g Gomega, namespaces []string) map[types.NamespacedName][]eventsv1.Event {
	out := map[types.NamespacedName][]eventsv1.Event{}
	for _, ns := range namespaces {
		var list eventsv1.EventList
		g.Expect(k8s.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		for _, e := range list.Items {
			if e.Regarding.Kind == "PHIWorkload" {
				key := types.NamespacedName{Namespace: ns, Name: e.Regarding.Name}
				out[key] = append(out[key], e)
			}
		}
	}
	return out
}

// counter sums the series of a counter in controller-runtime's registry
// (where controller-runtime and client-go register theirs) whose labels
// include want.
func counter(g Gomega, name string, want map[string]string) float64 {
	families, err := crmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	total := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			l := labelMap(m.GetLabel())
			match := true
			for k, v := range want {
				match = match && l[k] == v
			}
			if match {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func labelMap[L interface {
	GetName() string
	GetValue() string
}](labels []L) map[string]string {
	out := make(map[string]string, len(labels))
	for _, l := range labels {
		out[l.GetName()] = l.GetValue()
	}
	return out
}
