//go:build e2e

package faults

import (
	"context"
	"fmt"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// expectControl checks the results the control's workloads ended with
// against what their plans call for, so that "ends as the control does" means
// something: a NetworkPolicy that holds where one is kept, none in Audit, a
// Schedule that has not backed up yet, pods that predate their workload and
// so have no audit sidecar.
func expectControl(ctx context.Context, plans map[types.NamespacedName]plan, control map[shape]types.NamespacedName) {
	GinkgoHelper()
	for s, key := range control {
		p := plans[key]
		w := &phiguardv1alpha1.PHIWorkload{}
		Expect(k8s.Get(ctx, key, w)).To(Succeed())
		Expect(w.Status.MatchedPods).To(BeEquivalentTo(p.pods), "%s: matched pods", s)
		isolation, audit := condition(w, phiguardv1alpha1.NetworkIsolated), condition(w, phiguardv1alpha1.AuditLogging)
		backup := condition(w, phiguardv1alpha1.BackupScheduled)
		Expect(backup).To(Equal(result(metav1.ConditionUnknown, phiguardv1alpha1.ReasonAwaitingFirstBackup)), "%s: BackupScheduled", s)
		switch {
		case p.generated:
			Expect(isolation).To(Equal(result(metav1.ConditionUnknown, phiguardv1alpha1.ReasonNoPodsSelected)), "%s: NetworkIsolated", s)
			Expect(audit).To(Equal(result(metav1.ConditionUnknown, phiguardv1alpha1.ReasonNoPodsSelected)), "%s: AuditLogging", s)
			continue
		case p.isolated():
			Expect(isolation).To(Equal(result(metav1.ConditionTrue, phiguardv1alpha1.ReasonPolicyApplied)), "%s: NetworkIsolated", s)
		default:
			Expect(isolation).To(Equal(result(metav1.ConditionFalse, phiguardv1alpha1.ReasonPodsNotIsolated)), "%s: NetworkIsolated", s)
		}
		Expect(audit).To(Equal(result(metav1.ConditionFalse, phiguardv1alpha1.ReasonPodsWithoutSidecar)), "%s: AuditLogging", s)
	}
}

// condition is "<status> <reason>" of one of the workload's conditions.
func condition(w *phiguardv1alpha1.PHIWorkload, name phiguardv1alpha1.SafeguardName) string {
	c := meta.FindStatusCondition(w.Status.Conditions, string(name))
	if c == nil {
		return "absent"
	}
	return result(c.Status, c.Reason)
}

// result is "<status> <reason>", as condition reports it.
func result(status metav1.ConditionStatus, reason string) string {
	return string(status) + " " + reason
}

// maxEventsPerWorkload bounds the Events about one faulted workload. Without
// faults a workload here has one to three: its first evaluation, and for a
// change the action and the result it changed. A reconcile that a fault
// stops after an Event was recorded records it again on the retry, so a few
// more are expected; a storm (an Event on every retry of a loop that never
// settles, or Events written again and again) is not.
const maxEventsPerWorkload = 12

// expectEvents checks the Events about each workload: at most
// maxEventsPerWorkload, and every summary of a first evaluation sums up one
// that took place, with a result for each safeguard.
func expectEvents(events map[types.NamespacedName][]eventsv1.Event, plans map[types.NamespacedName]plan,
	control map[shape]types.NamespacedName, safeguards int) {
	GinkgoHelper()
	var flaky, steady []int
	evaluated := fmt.Sprintf("of %d safeguards hold", safeguards)
	for key, p := range plans {
		n := len(events[key])
		switch {
		case key.Namespace == steadyNamespace:
			steady = append(steady, n)
		case p.change != deleted:
			flaky = append(flaky, n)
		}
		Expect(n).To(BeNumerically("<=", maxEventsPerWorkload), "Events about %s (%s; its control has %d): %v",
			key, p.shape, len(events[control[p.shape]]), notes(events[key]))
		for _, e := range events[key] {
			if e.Reason == phiguardv1alpha1.ReasonEvaluated {
				Expect(e.Note).To(ContainSubstring(evaluated), "%s: an Evaluated Event sums up an evaluation", key)
			}
		}
	}
	slices.Sort(flaky)
	slices.Sort(steady)
	_, _ = fmt.Fprintf(GinkgoWriter, "Events per workload: faulted %v, control %v\n", flaky, steady)
}

// notes are an Event list as "<reason>: <note>", for a failure message.
func notes(events []eventsv1.Event) []string {
	out := make([]string, 0, len(events))
	for _, e := range events {
		out = append(out, e.Reason+": "+e.Note)
	}
	return out
}
