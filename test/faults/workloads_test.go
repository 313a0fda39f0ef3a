//go:build e2e

package faults

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// variant is the spec a workload is created with.
type variant int

const (
	// The first (0) leaves every safeguard to the built-in defaults.
	_ variant = iota
	// declaredIngress lets the frontend in on 8443.
	declaredIngress
	// ownSchedule backs up on a schedule of its own.
	ownSchedule
	variants
)

// change is what happens to a workload once it is under way.
type change int

const (
	// unchanged workloads keep their spec.
	unchanged change = iota
	// rescheduled workloads move their backup and declare an egress: both
	// the Schedule and the NetworkPolicy are updated.
	rescheduled
	// audited workloads turn network isolation to Audit: their
	// NetworkPolicy is removed.
	audited
	// deleted workloads are deleted: their Schedule is removed by the
	// finalizer, their NetworkPolicy by garbage collection.
	deleted
)

func (c change) String() string {
	return [...]string{"unchanged", "rescheduled", "audited", "deleted"}[c]
}

// The schedules a workload's Velero Schedule must end with.
const (
	defaultSchedule     = "0 2 * * *" // BackupScheduling's built-in default
	ownScheduleCron     = "15 1 * * *"
	rescheduledCron     = "30 4 * * *"
	declaredEgressCIDR  = "203.0.113.0/24"
	ledger              = "ledger" // the labelled Deployment of every namespace
	generatedLedgerName = "deploy-" + ledger
)

// shape is everything a workload's result depends on: two workloads of one
// shape, in two namespaces, must end with the same status.
type shape struct {
	pods    int
	variant variant
	change  change
	// generated is true for the PHIWorkload generated for the labelled Deployment.
	generated bool
}

func (s shape) String() string {
	if s.generated {
		return "generated"
	}
	return fmt.Sprintf("p%d-v%d-%s", s.pods, s.variant, s.change)
}

// plan is one PHIWorkload of the spec (created by the test, or generated
// for a labelled Deployment), with its pods, and what happens to it.
type plan struct {
	namespace, name string
	shape
}

// flakyPlans are the workloads of the faulted namespaces, spread over pod
// counts, variants and changes: half unchanged, a fifth rescheduled, a fifth
// audited, a tenth deleted.
func flakyPlans(namespaces, perNamespace int) []plan {
	out := make([]plan, 0, namespaces*perNamespace)
	for n := range namespaces {
		for i := range perNamespace {
			c := unchanged
			switch i % 10 {
			case 1, 6:
				c = rescheduled
			case 3, 8:
				c = audited
			case 5:
				c = deleted
			}
			out = append(out, plan{namespace: fmt.Sprintf("flaky-%d", n), name: fmt.Sprintf("records-%02d", i),
				shape: shape{pods: 1 + i%2, variant: variant(i % int(variants)), change: c}})
		}
	}
	return out
}

// steadyPlans are one workload per shape of plans that stays, in the
// namespace whose requests are never faulted: the control.
func steadyPlans(plans []plan) []plan {
	seen := map[shape]bool{}
	var out []plan
	for _, p := range plans {
		if p.change == deleted || seen[p.shape] {
			continue
		}
		seen[p.shape] = true
		out = append(out, plan{namespace: steadyNamespace, name: "records-" + p.String(), shape: p.shape})
	}
	return out
}

func (p plan) selector() map[string]string { return map[string]string{"app": p.name} }

// pods are the plan's pods, created before its workload (so the audit
// sidecar is never injected: the result does not depend on how soon the
// webhook sees the workload).
func (p plan) podObjects() []*corev1.Pod {
	out := make([]*corev1.Pod, 0, p.pods)
	for i := range p.pods {
		out = append(out, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: p.namespace, Name: fmt.Sprintf("%s-%d", p.name, i), Labels: p.selector()},
			Spec: corev1.PodSpec{
				AutomountServiceAccountToken: ptr.To(false),
				Containers:                   []corev1.Container{{Name: "app", Image: "registry.example/records:1"}},
			},
		})
	}
	return out
}

// workload is the plan's PHIWorkload as created.
func (p plan) workload() *phiguardv1alpha1.PHIWorkload {
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: p.namespace, Name: p.name},
		Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: p.selector()}},
	}
	switch p.variant {
	case declaredIngress:
		w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{Ingress: []phiguardv1alpha1.NetworkIngressRule{{
			From:  []phiguardv1alpha1.NetworkPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "frontend"}}}},
			Ports: []phiguardv1alpha1.NetworkPort{{Protocol: corev1.ProtocolTCP, Port: ptr.To(intstr.FromInt32(8443))}},
		}}}
	case ownSchedule:
		w.Spec.Backup = &phiguardv1alpha1.BackupSpec{Schedule: ownScheduleCron}
	}
	return w
}

// apply makes the plan's change to w (rescheduled or audited).
func (p plan) apply(w *phiguardv1alpha1.PHIWorkload) {
	if w.Spec.NetworkIsolation == nil {
		w.Spec.NetworkIsolation = &phiguardv1alpha1.NetworkIsolationSpec{}
	}
	switch p.change {
	case rescheduled:
		if w.Spec.Backup == nil {
			w.Spec.Backup = &phiguardv1alpha1.BackupSpec{}
		}
		w.Spec.Backup.Schedule = rescheduledCron
		w.Spec.NetworkIsolation.Egress = append(w.Spec.NetworkIsolation.Egress, phiguardv1alpha1.NetworkEgressRule{
			To:    []phiguardv1alpha1.NetworkPeer{{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: declaredEgressCIDR}}},
			Ports: []phiguardv1alpha1.NetworkPort{{Protocol: corev1.ProtocolTCP, Port: ptr.To(intstr.FromInt32(443))}},
		})
	case audited:
		w.Spec.NetworkIsolation.Mode = phiguardv1alpha1.ModeAudit
	}
}

// make makes the plan's change: deletes the workload, or patches its spec.
func (p plan) make(ctx context.Context) error {
	key := types.NamespacedName{Namespace: p.namespace, Name: p.name}
	switch p.change {
	case unchanged:
		return nil
	case deleted:
		if err := k8s.Delete(ctx, &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: p.namespace, Name: p.name}}); err != nil {
			return fmt.Errorf("deleting PHIWorkload %s: %w", key, err)
		}
		return nil
	}
	w := &phiguardv1alpha1.PHIWorkload{}
	if err := k8s.Get(ctx, key, w); err != nil {
		return fmt.Errorf("reading PHIWorkload %s: %w", key, err)
	}
	before := w.DeepCopy()
	p.apply(w)
	// A merge patch without the resourceVersion: it cannot conflict with
	// the manager's writes (it writes only the finalizer and the status).
	if err := k8s.Patch(ctx, w, client.MergeFrom(before)); err != nil {
		return fmt.Errorf("changing PHIWorkload %s (%s): %w", key, p.change, err)
	}
	return nil
}

// isolated says whether the workload keeps a NetworkPolicy in the end.
func (p plan) isolated() bool { return p.change != audited }

// schedule is the cron its Velero Schedule must end with.
func (p plan) schedule() string {
	switch {
	case p.change == rescheduled:
		return rescheduledCron
	case p.variant == ownSchedule && !p.generated:
		return ownScheduleCron
	}
	return defaultSchedule
}

// ledgerPlan is the workload generated for a namespace's labelled Deployment.
func ledgerPlan(namespace string) plan {
	return plan{namespace: namespace, name: generatedLedgerName, shape: shape{generated: true}}
}

// ledgerDeployment is a Deployment labelled as handling ePHI: the label
// controller generates its PHIWorkload. envtest runs no Deployment
// controller, so it has no pods.
func ledgerDeployment(namespace string) *appsv1.Deployment {
	l := map[string]string{"app": ledger}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: ledger,
			Labels: map[string]string{phiguardv1alpha1.EPHILabel: phiguardv1alpha1.EPHILabelValue}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: l},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: l},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/ledger:1"}}},
			},
		},
	}
}
