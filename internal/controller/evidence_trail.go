package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/evidence"
)

// EvidenceHealth gathers what the evidence writers say about their sink,
// for the PHIPolicy's EvidenceSinkDegraded condition.
type EvidenceHealth struct {
	mu sync.Mutex
	// standing, when set, is a condition that holds whatever the writers
	// say: an ephemeral directory, or no evidence at all.
	standing *metav1.Condition
	degraded map[string]string // shard -> why, for the shards that are
	changed  chan event.GenericEvent
}

// NewEvidenceHealth returns the health of a trail; standingReason, when not
// empty, is a reason the condition is True whatever happens (with its
// message).
func NewEvidenceHealth(standingReason, standingMessage string) *EvidenceHealth {
	h := &EvidenceHealth{degraded: map[string]string{}, changed: make(chan event.GenericEvent, 1)}
	if standingReason != "" {
		h.standing = &metav1.Condition{Type: phiguardv1alpha1.EvidenceSinkDegradedCondition, Status: metav1.ConditionTrue,
			Reason: standingReason, Message: standingMessage}
	}
	return h
}

// Reporter returns the OnHealth callback of a shard's writer.
func (h *EvidenceHealth) Reporter(shard string) func(degraded bool, message string) {
	return func(degraded bool, message string) {
		h.mu.Lock()
		if degraded {
			h.degraded[shard] = message
		} else {
			delete(h.degraded, shard)
		}
		h.mu.Unlock()
		select {
		case h.changed <- event.GenericEvent{Object: &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName}}}:
		default: // a reconcile is pending already; it reads the latest
		}
	}
}

// Condition is the EvidenceSinkDegraded condition as things stand.
func (h *EvidenceHealth) Condition() metav1.Condition {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.degraded) > 0 {
		why := make([]string, 0, len(h.degraded))
		for shard, msg := range h.degraded {
			why = append(why, shard+": "+msg)
		}
		sort.Strings(why)
		return metav1.Condition{Type: phiguardv1alpha1.EvidenceSinkDegradedCondition, Status: metav1.ConditionTrue,
			Reason: phiguardv1alpha1.ReasonEvidenceSinkUnavailable, Message: strings.Join(why, "; ")}
	}
	if h.standing != nil {
		return *h.standing
	}
	return metav1.Condition{Type: phiguardv1alpha1.EvidenceSinkDegradedCondition, Status: metav1.ConditionFalse,
		Reason: phiguardv1alpha1.ReasonEvidenceStored, Message: "every evidence record taken is being stored"}
}

// EvidenceStatusReconciler writes EvidenceSinkDegraded on the PHIPolicy.
type EvidenceStatusReconciler struct {
	client.Client
	Health *EvidenceHealth
}

// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phipolicies/status,verbs=patch

// Reconcile sets the condition on the default PHIPolicy when it changed.
func (r *EvidenceStatusReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.Name != phiguardv1alpha1.DefaultPolicyName {
		return reconcile.Result{}, nil
	}
	p := &phiguardv1alpha1.PHIPolicy{}
	if err := r.Get(ctx, types.NamespacedName{Name: req.Name}, p); err != nil {
		if apierrors.IsNotFound(err) {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("reading PHIPolicy %s: %w", req.Name, err)
	}
	c := r.Health.Condition()
	c.ObservedGeneration = p.Generation
	patch := client.MergeFrom(p.DeepCopy())
	if !meta.SetStatusCondition(&p.Status.Conditions, c) {
		return reconcile.Result{}, nil
	}
	if err := r.Status().Patch(ctx, p, patch, FieldOwner); err != nil {
		return reconcile.Result{}, fmt.Errorf("patching the status of PHIPolicy %s: %w", p.Name, err)
	}
	logf.FromContext(ctx).Info("evidence sink", "degraded", c.Status, "reason", c.Reason, "message", c.Message)
	return reconcile.Result{}, nil
}

// SetupWithManager watches the PHIPolicy (its creation and spec changes)
// and the writers' reports.
func (r *EvidenceStatusReconciler) SetupWithManager(mgr manager.Manager) error {
	if err := builder.ControllerManagedBy(mgr).Named("evidencestatus").
		For(&phiguardv1alpha1.PHIPolicy{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WatchesRawSource(source.Channel(r.Health.changed, &handler.EnqueueRequestForObject{})).
		Complete(r); err != nil {
		return fmt.Errorf("building the evidence status controller: %w", err)
	}
	return nil
}

// Attestor records, at every interval, an attestation of each PHIWorkload's
// full status, even when nothing changed: the evidence that a safeguard held
// on a given day. It runs on the leader.
type Attestor struct {
	// Reader lists the PHIWorkloads (the manager's cache).
	Reader client.Reader
	// Evidence takes the records.
	Evidence evidence.Recorder
	// Interval is how often (a day); Delay how long after the start the
	// first attestation comes, once the statuses have settled.
	Interval, Delay time.Duration
	// Clock drives the schedule; tests move it.
	Clock clock.WithTicker
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (a *Attestor) NeedLeaderElection() bool { return true }

// Start attests until ctx ends.
func (a *Attestor) Start(ctx context.Context) error {
	first := a.Clock.NewTimer(a.Delay)
	defer first.Stop()
	select {
	case <-ctx.Done():
		return nil
	case <-first.C():
	}
	ticker := a.Clock.NewTicker(a.Interval)
	defer ticker.Stop()
	for {
		if err := a.Attest(ctx); err != nil {
			logf.FromContext(ctx).Error(err, "attestation failed; retried at the next interval")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C():
		}
	}
}

// Attest records one attestation of every PHIWorkload.
func (a *Attestor) Attest(ctx context.Context) error {
	var list phiguardv1alpha1.PHIWorkloadList
	if err := a.Reader.List(ctx, &list); err != nil {
		return fmt.Errorf("listing PHIWorkloads to attest: %w", err)
	}
	for i := range list.Items {
		a.Evidence.Record(Attestation(&list.Items[i]))
	}
	logf.FromContext(ctx).Info("attested", "workloads", len(list.Items))
	return nil
}
