// Package controller holds phiguard's reconcilers.
package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/evidence"
	"github.com/phiguard/phiguard/internal/metrics"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/safeguard"
	"github.com/phiguard/phiguard/internal/ssa"
)

// FieldOwner is the field manager of every write phiguard makes.
const FieldOwner = client.FieldOwner(ssa.FieldManager)

// PHIWorkloadReconciler keeps a PHIWorkload's safeguards and reports them in
// its status. It names no safeguard: it runs those of its Registry.
type PHIWorkloadReconciler struct {
	client.Client
	// Recorder records an Event for each change of a safeguard's result.
	Recorder recorder.EventRecorder
	// Clock is the time decisions are judged against; tests move it.
	Clock clock.PassiveClock
	// Registry holds the safeguards, evaluated in its order.
	Registry safeguard.Registry
	// ExemptNamespaces are never acted on, whatever the PHIPolicy says
	// (kube-system and phiguard's own namespace).
	ExemptNamespaces []string
	// Concurrency is how many workloads are reconciled at once (at least 1).
	// A PHIPolicy change re-reconciles every workload; its writes, not CPU,
	// bound how fast that settles.
	Concurrency int
	// Metrics, when set, exports each workload's compliance as its status
	// reports it, and forgets a workload once it is gone.
	Metrics *metrics.Compliance
	// Evidence, when set, takes an evidence record for each change of a
	// safeguard's result or of a decision, and each enforcement action.
	Evidence evidence.Recorder

	// apis tracks the optional APIs the safeguards need and starts the
	// watches on their kinds once they are served (SetupWithManager).
	apis *optionalapi.Tracker
}

// CleanupFinalizer holds a PHIWorkload until the safeguards that keep objects
// outside its namespace (the backup Schedule) have removed them.
const CleanupFinalizer = phiguardv1alpha1.CleanupFinalizer

// The controller's own permissions; each safeguard's are next to its code.
// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phiworkloads,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phiworkloads/finalizers,verbs=update
// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phiworkloads/status,verbs=patch
// +kubebuilder:rbac:groups=compliance.phiguard.io,resources=phipolicies,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=apiextensions.k8s.io,resources=customresourcedefinitions,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile loads the workload, resolves its scope once, runs every safeguard
// in order, and, on every path but a finished deletion, summarises the
// outcome into the status with one patch when it changed.
func (r *PHIWorkloadReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	w := &phiguardv1alpha1.PHIWorkload{}
	if err := r.Get(ctx, req.NamespacedName, w); err != nil {
		if apierrors.IsNotFound(err) {
			// Deleted; what it owned goes by garbage collection, and its series
			// go now (a workload without the finalizer is never seen deleting).
			r.Metrics.Forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, fmt.Errorf("reading PHIWorkload %s: %w", req.NamespacedName, err)
	}
	if w.DeletionTimestamp.IsZero() && r.namespaceTerminating(ctx, w.Namespace) {
		// Everything in the namespace is being deleted, this workload with
		// it, and the apiserver refuses anything new there: enforcing would
		// only fail and retry until the workload is gone.
		return ctrl.Result{}, nil
	}
	ev := &evaluation{}
	defer func() { retErr = r.summarise(ctx, w, ev, retErr) }()

	if !w.DeletionTimestamp.IsZero() {
		// Owned objects go by garbage collection; the rest is finalized here.
		if err := r.finalize(ctx, w); err != nil {
			return ctrl.Result{}, failed(phiguardv1alpha1.ReasonFinalizationFailed, err)
		}
		ev.released = true
		return ctrl.Result{}, nil
	}
	if err := r.ensureFinalizer(ctx, w); err != nil {
		return ctrl.Result{}, failed(phiguardv1alpha1.ReasonFinalizerFailed, err)
	}
	scope, err := r.Registry.Scope(ctx, r.env(), w, r.Clock.Now())
	ev.scope = scope
	switch {
	case safeguard.AsStalled(err) != nil:
		return ctrl.Result{}, err
	case err != nil:
		return ctrl.Result{}, failed(phiguardv1alpha1.ReasonReadFailed, err)
	}
	ev.outcomes = r.evaluate(ctx, scope)
	return requeue(ev.outcomes)
}

// namespaceTerminating says whether namespace is being deleted, as the
// manager's cache has it; when it cannot tell, it says no.
func (r *PHIWorkloadReconciler) namespaceTerminating(ctx context.Context, namespace string) bool {
	ns := &corev1.Namespace{}
	if err := r.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return false
	}
	return !ns.DeletionTimestamp.IsZero()
}

func (r *PHIWorkloadReconciler) env() safeguard.Env {
	env := safeguard.Env{Reader: r.Client, Client: r.Client, ExemptNamespaces: r.ExemptNamespaces, APIs: r.apis}
	if r.apis == nil {
		// Reconciling outside a manager, as some tests do: the APIs are
		// discovered all the same, and there are no watches to start.
		env.APIs = optionalapi.NewTracker(r.RESTMapper(), r.Client, nil)
	}
	return env
}

// ensureFinalizer adds CleanupFinalizer when some safeguard keeps objects that
// owner references cannot cover.
func (r *PHIWorkloadReconciler) ensureFinalizer(ctx context.Context, w *phiguardv1alpha1.PHIWorkload) error {
	if len(r.Registry.Finalizers()) == 0 {
		return nil
	}
	return addFinalizer(ctx, r.Client, w, CleanupFinalizer)
}

// finalize lets each Finalizer safeguard remove what it keeps, then releases
// the workload. A failure keeps the finalizer, and the next attempt retries.
func (r *PHIWorkloadReconciler) finalize(ctx context.Context, w *phiguardv1alpha1.PHIWorkload) error {
	if !controllerutil.ContainsFinalizer(w, CleanupFinalizer) {
		return nil
	}
	for _, sg := range r.Registry {
		f, ok := sg.(safeguard.Finalizer)
		if !ok {
			continue
		}
		events, err := f.Finalize(ctx, r.Client, w)
		done := []outcome{{name: sg.Name(), rule: sg.Rule(), result: safeguard.Result{Events: events}}}
		r.recordActions(w, done)
		r.recordActionEvidence(w, done)
		if err != nil {
			return fmt.Errorf("finalizing %s of %s/%s: %w", sg.Name(), w.Namespace, w.Name, err)
		}
	}
	return removeFinalizer(ctx, r.Client, w, CleanupFinalizer)
}

// evaluate runs each safeguard in order, its rule stated under the PHIPolicy's
// ruleset. A safeguard that is Off still runs (to remove what it created), but
// its result is the verdict on its decision. One the workload turns off under
// a ruleset that lets none be off runs in Audit (Effective), and its result is
// that judgement, saying the decision does not count.
func (r *PHIWorkloadReconciler) evaluate(ctx context.Context, s *safeguard.Scope) []outcome {
	ruleset := s.Policy.Ruleset()
	out := make([]outcome, 0, len(r.Registry))
	for _, sg := range r.Registry {
		name := sg.Name()
		mode := s.Mode(name)
		rule := sg.Rule().Under(ruleset)
		res := sg.Reconcile(ctx, s)
		switch {
		case mode == phiguardv1alpha1.ModeOff:
			verdict := safeguard.EvaluateDecision(name, rule, s.Workload.Spec.Decision(name), s.Now)
			verdict.Err = res.Err
			res = verdict
		case safeguard.OffNotRecognised(s.Policy, s.Workload, name):
			res = safeguard.DecisionNotRecognised(name, ruleset, s.Workload.Spec.Decision(name), mode, res)
		}
		out = append(out, outcome{name: name, rule: rule, mode: mode, source: s.ModeSources[name], result: res})
	}
	return out
}

// notEvaluated reports every safeguard as Unknown for a spec that cannot be
// acted on, so that no earlier result stays on display as if it were current.
func (r *PHIWorkloadReconciler) notEvaluated(s *safeguard.Scope, stalled *safeguard.StalledError) []outcome {
	ruleset := s.Policy.Ruleset()
	out := make([]outcome, 0, len(r.Registry))
	for _, sg := range r.Registry {
		name := sg.Name()
		out = append(out, outcome{name: name, rule: sg.Rule().Under(ruleset), mode: s.Mode(name), source: s.ModeSources[name], result: safeguard.Result{
			Status: metav1.ConditionUnknown, Reason: stalled.Reason,
			Message: "not evaluated: " + stalled.Error(),
		}})
	}
	return out
}

// evaluation is what one reconcile found, for the deferred summary.
type evaluation struct {
	// released is true once a deleted workload's finalizer is gone: nothing
	// is left to report on.
	released bool
	// scope is nil when the reconcile ended before the scope was resolved.
	scope *safeguard.Scope
	// outcomes are the safeguards' results; nil when they did not run.
	outcomes []outcome
}

// summarise computes the status from what the reconcile found and its error,
// writes it when it changed, and returns the error the controller should see:
// a stalled spec becomes a TerminalError (retrying cannot help until the spec
// changes, and a spec change is a new event).
func (r *PHIWorkloadReconciler) summarise(ctx context.Context, w *phiguardv1alpha1.PHIWorkload, ev *evaluation, err error) error {
	if ev.released {
		r.Metrics.Forget(client.ObjectKeyFromObject(w))
		return err
	}
	in := statusInput{generation: w.Generation, stalled: safeguard.AsStalled(err), decisions: decisionRecords(w)}
	for _, o := range ev.outcomes {
		if s := safeguard.AsStalled(o.result.Err); s != nil && in.stalled == nil {
			in.stalled = s
		}
	}
	var rf *reasonedError
	switch {
	case errors.As(err, &rf):
		in.failure = rf
	case ev.scope != nil && in.stalled != nil && ev.outcomes == nil:
		in.outcomes = r.notEvaluated(ev.scope, in.stalled)
	default:
		in.outcomes = ev.outcomes
	}
	if ev.scope != nil {
		in.pods = len(ev.scope.Pods)
		if ev.scope.Policy != nil {
			in.policy = ev.scope.Policy.Name
		}
	}
	status := computeStatus(w.Status, in, metav1.NewTime(r.Clock.Now()))
	summarised := r.recordEvaluation(w, status, in.stalled != nil, ev.outcomes)
	// Evidence is taken before the status is written: a manager killed in
	// between has recorded what it saw (a failed write means the retry
	// records it again), rather than stored a result it never recorded.
	r.recordActionEvidence(w, ev.outcomes)
	r.recordResultEvidence(w, w.Status, status)
	if werr := r.writeStatus(ctx, w, status, !summarised); werr != nil {
		return errors.Join(err, werr)
	}
	// Recorded once stored, so the metrics never show what the status does not.
	r.Metrics.Record(w, &status)
	if in.stalled != nil && !transient(ev.outcomes) {
		return reconcile.TerminalError(in.stalled)
	}
	return err
}

// transient says whether some safeguard failed with an error worth retrying.
func transient(outcomes []outcome) bool {
	for _, o := range outcomes {
		if o.result.Err != nil && safeguard.AsStalled(o.result.Err) == nil {
			return true
		}
	}
	return false
}

// reasonedError is an error that kept a reconcile from finishing, with the
// reason Ready reports it under.
type reasonedError struct {
	Reason string
	Err    error
}

func (e *reasonedError) Error() string { return e.Err.Error() }
func (e *reasonedError) Unwrap() error { return e.Err }

func failed(reason string, err error) error { return &reasonedError{Reason: reason, Err: err} }

// writeStatus patches the status, only when it differs from what is stored,
// and with announce records an Event for each changed result.
func (r *PHIWorkloadReconciler) writeStatus(ctx context.Context, w *phiguardv1alpha1.PHIWorkload, status phiguardv1alpha1.PHIWorkloadStatus, announce bool) error {
	if equality.Semantic.DeepEqual(w.Status, status) {
		return nil
	}
	if announce {
		r.recordChanges(w, status)
	}
	patch := client.MergeFrom(w.DeepCopy())
	w.Status = status
	if err := r.Status().Patch(ctx, w, patch, FieldOwner); err != nil {
		return fmt.Errorf("patching status of %s/%s: %w", w.Namespace, w.Name, err)
	}
	logf.FromContext(ctx).V(1).Info("status updated", "compliance", status.Compliance, "score", status.Score)
	return nil
}

// recordChanges emits an Event for each safeguard (and Stalled) whose status or
// reason differs from the stored status.
func (r *PHIWorkloadReconciler) recordChanges(w *phiguardv1alpha1.PHIWorkload, next phiguardv1alpha1.PHIWorkloadStatus) {
	if r.Recorder == nil {
		return
	}
	// While the spec is stalled, the one Event worth reading is the Stalled one.
	stalled := meta.IsStatusConditionTrue(next.Conditions, phiguardv1alpha1.StalledCondition)
	for _, c := range next.Conditions {
		if c.Type == phiguardv1alpha1.ReadyCondition || c.Type == phiguardv1alpha1.ReconcilingCondition ||
			(stalled && c.Type != phiguardv1alpha1.StalledCondition) {
			continue
		}
		if old := meta.FindStatusCondition(w.Status.Conditions, c.Type); old != nil && old.Status == c.Status && old.Reason == c.Reason {
			continue
		}
		kind := corev1.EventTypeNormal
		// A decision that stopped counting is worth a warning even where the
		// safeguard holds: what the workload documents is no longer honoured.
		if c.Status == metav1.ConditionFalse || c.Type == phiguardv1alpha1.StalledCondition ||
			c.Reason == phiguardv1alpha1.ReasonDecisionNotRecognised {
			kind = corev1.EventTypeWarning
		}
		// The action is the condition type: events.k8s.io folds Events that share
		// regarding object, reason and action into one series, and each
		// safeguard's change must stay a record of its own.
		r.Recorder.Eventf(w, nil, kind, c.Reason, c.Type, "%s",
			safeguard.EventNote(fmt.Sprintf("%s is %s: %s", c.Type, c.Status, c.Message)))
	}
}

// recordActions records each enforcement action a safeguard took as an Event.
func (r *PHIWorkloadReconciler) recordActions(w *phiguardv1alpha1.PHIWorkload, outcomes []outcome) {
	if r.Recorder == nil {
		return
	}
	for _, o := range outcomes {
		for _, e := range o.result.Events {
			kind := corev1.EventTypeNormal
			if e.Warning {
				kind = corev1.EventTypeWarning
			}
			var related runtime.Object
			if e.Related != nil {
				related = e.Related
			}
			r.Recorder.Eventf(w, related, kind, e.Reason, string(o.name), "%s", safeguard.EventNote(e.Message))
		}
	}
}

// requeue turns the outcomes into the controller's answer: transient errors
// are returned (and retried with backoff); a stalled safeguard is returned
// too, for the summary to make terminal; otherwise the earliest time-based
// requeue.
func requeue(outcomes []outcome) (ctrl.Result, error) {
	var errs []error
	var after time.Duration
	for _, o := range outcomes {
		if o.result.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.name, o.result.Err))
		}
		if d := o.result.RequeueAfter; d > 0 && (after == 0 || d < after) {
			after = d
		}
	}
	if err := errors.Join(errs...); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// recordEvaluation records the first evaluation as one Event that sums it
// up, and says so (unless stalled: then the Stalled one is worth reading;
// and only once the safeguards ran: a reconcile that stopped before them,
// unable to read or to add the finalizer, evaluated nothing, and leaves the
// summary to the retry that does); after it, an Event per action, and
// writeStatus one per changed result.
func (r *PHIWorkloadReconciler) recordEvaluation(w *phiguardv1alpha1.PHIWorkload, next phiguardv1alpha1.PHIWorkloadStatus, stalled bool, outcomes []outcome) (summarised bool) {
	if firstEvaluation(w.Status) && !stalled && outcomes != nil {
		r.recordSummary(w, next, outcomes)
		return true
	}
	r.recordActions(w, outcomes)
	return false
}

// firstEvaluation says whether a stored status has no safeguard's result
// yet: the workload is being evaluated for the first time.
func firstEvaluation(stored phiguardv1alpha1.PHIWorkloadStatus) bool {
	return len(stored.Safeguards) == 0
}

// recordSummary records the first evaluation of a workload as one Event:
// whether it is Ready, how many safeguards hold, each that does not or is
// not known with its reason, and the actions taken. One Event instead of one
// per safeguard and action keeps the API's write budget for what changes.
func (r *PHIWorkloadReconciler) recordSummary(w *phiguardv1alpha1.PHIWorkload, next phiguardv1alpha1.PHIWorkloadStatus, outcomes []outcome) {
	if r.Recorder == nil {
		return
	}
	kind := corev1.EventTypeNormal
	var held int
	var failing, unknown, actions []string
	for _, sg := range next.Safeguards {
		switch sg.Status {
		case metav1.ConditionTrue:
			held++
		case metav1.ConditionFalse:
			failing = append(failing, fmt.Sprintf("%s (%s)", sg.Name, sg.Reason))
			kind = corev1.EventTypeWarning
		default:
			unknown = append(unknown, fmt.Sprintf("%s (%s)", sg.Name, sg.Reason))
		}
	}
	for _, o := range outcomes {
		for _, e := range o.result.Events {
			if e.Warning {
				kind = corev1.EventTypeWarning
			}
			actions = append(actions, e.Message)
		}
	}
	ready := "not Ready"
	if meta.IsStatusConditionTrue(next.Conditions, phiguardv1alpha1.ReadyCondition) {
		ready = "Ready"
	}
	note := fmt.Sprintf("first evaluation: %s, %d of %d safeguards hold", ready, held, len(next.Safeguards))
	for _, part := range []struct {
		what  string
		items []string
	}{{"does not hold", failing}, {"not known", unknown}, {"actions", actions}} {
		if len(part.items) > 0 {
			note += "; " + part.what + ": " + strings.Join(part.items, ", ")
		}
	}
	r.Recorder.Eventf(w, nil, kind, phiguardv1alpha1.ReasonEvaluated, "Evaluate", "%s", safeguard.EventNote(note))
}
