package webhook

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// The PHIWorkload webhook's configuration:
//   - failurePolicy=fail: it guards phiguard's own API, which does nothing
//     without phiguard running; refusing while it is down keeps a workload
//     from slipping under the organisation's minimum modes.
//   - all namespaces, kube-system included: a PHIWorkload there is refused
//     with the reason, rather than silently never acted on.

// +kubebuilder:webhook:path=/validate-compliance-phiguard-io-v1alpha1-phiworkload,mutating=false,failurePolicy=fail,sideEffects=None,groups=compliance.phiguard.io,resources=phiworkloads,verbs=create;update,versions=v1alpha1,name=vphiworkload.phiguard.io,admissionReviewVersions=v1,timeoutSeconds=5

// WorkloadValidator applies, at admission, the PHIPolicy's rules that the
// CRD's own validation cannot know: exempt namespaces, minimum modes, the
// decisions' approvers and lifetime, and its ruleset (under ProposedRule2025
// no safeguard may be turned off). The reconciler applies the same rules to
// workloads admitted before them.
type WorkloadValidator struct {
	// Reader reads the PHIPolicy (the manager's cache).
	Reader client.Reader
	// ExemptNamespaces are always exempt (kube-system, phiguard's own).
	ExemptNamespaces []string
	// Registry names the safeguards whose modes are checked against the minimums.
	Registry safeguard.Registry
	// Clock is the time decisions are judged against.
	Clock clock.PassiveClock
	// Recorder records each denial and warning as an Event on the workload.
	Recorder recorder.EventRecorder
}

// Setup registers every admission webhook on the manager's webhook server:
// those of the safeguards (by iterating the registry) and phiguard's own, the
// PHIWorkload validator and the unlabel guard.
func Setup(mgr ctrl.Manager, env safeguard.AdmissionEnv) error {
	if err := env.Registry.SetupWebhooks(mgr, env); err != nil {
		return err
	}
	if err := (&WorkloadValidator{Reader: env.Reader, ExemptNamespaces: env.ExemptNamespaces, Registry: env.Registry,
		Clock: env.Clock, Recorder: env.Recorder}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&UnlabelGuard{Reader: env.Reader, Clock: env.Clock, Recorder: env.Recorder}).SetupWithManager(mgr)
}

// SetupWithManager registers the validator.
func (v *WorkloadValidator) SetupWithManager(mgr ctrl.Manager) error {
	if err := ctrl.NewWebhookManagedBy(mgr, &phiguardv1alpha1.PHIWorkload{}).WithValidator(v).
		WithDefaulter(decisionRecorder{decoder: admission.NewDecoder(mgr.GetScheme()), holds: len(v.Registry.Finalizers()) > 0}).Complete(); err != nil {
		return fmt.Errorf("registering the PHIWorkload webhook: %w", err)
	}
	return nil
}

// ValidateCreate implements admission.Validator. Each denial and warning is
// also an Event on the workload.
func (v *WorkloadValidator) ValidateCreate(ctx context.Context, w *phiguardv1alpha1.PHIWorkload) (admission.Warnings, error) {
	return v.validateAndRecord(ctx, &phiguardv1alpha1.PHIWorkload{}, w)
}

func (v *WorkloadValidator) validateAndRecord(ctx context.Context, old, w *phiguardv1alpha1.PHIWorkload) (admission.Warnings, error) {
	warnings, err := v.validate(ctx, old, w)
	var denied error
	if isDenial(err) {
		denied = err
	}
	v.env().Record(ctx, w, denied, warnings)
	return warnings, err
}

func (v *WorkloadValidator) env() safeguard.AdmissionEnv {
	return safeguard.AdmissionEnv{Recorder: v.Recorder}
}

// denial is an error that refuses the request (as opposed to one that kept
// the webhook from deciding).
type denial struct{ error }

func isDenial(err error) bool {
	var d denial
	return errors.As(err, &d)
}

func deny(format string, args ...any) error { return denial{fmt.Errorf(format, args...)} }

// belowMinimum refuses modes below the PHIPolicy's minimums.
func (v *WorkloadValidator) belowMinimum(policy *phiguardv1alpha1.PHIPolicy, w *phiguardv1alpha1.PHIWorkload) error {
	var below []string
	minimums := safeguard.MinimumModes(policy)
	for _, name := range v.Registry.Names() {
		minimum, ok := minimums[name]
		if asked := w.Spec.Mode(name); ok && asked != "" && asked.Strength() < minimum.Strength() {
			below = append(below, fmt.Sprintf("%s mode %s is below the minimum %s", name, asked, minimum))
		}
	}
	if len(below) > 0 {
		return deny("%s set by PHIPolicy %s (spec.minimumModes); raise the mode or leave it empty to inherit",
			strings.Join(below, "; "), phiguardv1alpha1.DefaultPolicyName)
	}
	return nil
}

// offUnderRuleset applies the PHIPolicy's ruleset to the safeguards the
// workload turns off. Under one that lets none be off (ProposedRule2025) it
// refuses a request that turns a safeguard off, or adds or changes the
// decision of one that is off; one left as it was (admitted before the
// ruleset) is warned about, as it no longer counts, so that an unrelated
// change is not held hostage to it. Decisions of safeguards that are not off
// turn nothing off and are not judged here.
func (v *WorkloadValidator) offUnderRuleset(policy *phiguardv1alpha1.PHIPolicy, old, w *phiguardv1alpha1.PHIWorkload) (admission.Warnings, error) {
	rs := policy.Ruleset()
	if !safeguard.ForbidsOff(rs) {
		return nil, nil
	}
	var refused []string
	var warnings admission.Warnings
	for _, name := range v.Registry.Names() {
		if w.Spec.Mode(name) != phiguardv1alpha1.ModeOff {
			continue
		}
		d, prev := w.Spec.Decision(name), old.Spec.Decision(name)
		unchanged := old.Spec.Mode(name) == phiguardv1alpha1.ModeOff &&
			(d == nil) == (prev == nil) && (d == nil || equality.Semantic.DeepEqual(*d, *prev))
		if unchanged {
			warnings = append(warnings, fmt.Sprintf("%s is off under a decision that %s does not recognise: it runs in Audit and is judged, and counts as it is found; set its mode to Audit or Enforce and remove the decision",
				name, safeguard.RulesetCitation(rs)))
			continue
		}
		if d != nil {
			refused = append(refused, fmt.Sprintf("the decision for %s would turn it off", name))
		} else {
			refused = append(refused, fmt.Sprintf("%s would be turned off", name))
		}
	}
	if len(refused) > 0 {
		return nil, deny("%s, which PHIPolicy %s does not allow: under %s every safeguard is Required: no decision turns one off; set the mode to Audit or Enforce (or leave it empty to inherit) and remove the decision",
			strings.Join(refused, "; "), phiguardv1alpha1.DefaultPolicyName, safeguard.RulesetCitation(rs))
	}
	return warnings, nil
}

// validate refuses what phiguard could never act on or what breaks the
// PHIPolicy, naming the fix, and warns about what may not be meant.
func (v *WorkloadValidator) validate(ctx context.Context, old, w *phiguardv1alpha1.PHIWorkload) (admission.Warnings, error) {
	policy, err := safeguard.DefaultPolicy(ctx, v.Reader)
	if err != nil {
		return nil, err
	}
	if safeguard.Exempt(v.ExemptNamespaces, policy, w.Namespace) {
		return nil, deny("namespace %s is exempt from phiguard (kube-system, phiguard's own namespace, or PHIPolicy %s spec.exemptNamespaces): a PHIWorkload here would never be acted on; create it in the namespace of the pods it protects",
			w.Namespace, phiguardv1alpha1.DefaultPolicyName)
	}
	if _, err := metav1.LabelSelectorAsSelector(&w.Spec.Selector); err != nil {
		return nil, deny("spec.selector cannot select pods: %v; give each matchExpressions entry a key, an operator (In, NotIn, Exists, DoesNotExist) and, for In and NotIn, at least one value", err)
	}

	if err := v.belowMinimum(policy, w); err != nil {
		return nil, err
	}
	offWarnings, err := v.offUnderRuleset(policy, old, w)
	if err != nil {
		return nil, err
	}
	// The safeguards' own rules, on what the workload itself sets: a policy
	// default the user did not write is not theirs to fix.
	warnings, err := v.Registry.ValidateSpec(&w.Spec.SafeguardSettings)
	if err != nil {
		return nil, denial{err}
	}
	warnings = append(warnings, offWarnings...)
	if b := w.Spec.Backup; b != nil && b.TTL != nil && b.TTL.Duration < policy.MinimumBackupTTL() {
		return nil, deny("backup.ttl %s is shorter than the %s every backup of ePHI must be kept under PHIPolicy %s (spec.backup.minimumTTL, default %s): raise it, or leave it empty for the default of six years",
			b.TTL.Duration, policy.MinimumBackupTTL(), phiguardv1alpha1.DefaultPolicyName, phiguardv1alpha1.DefaultMinimumBackupTTL)
	}
	if err := v.checkDecisions(ctx, policy, old, w); err != nil {
		return nil, err
	}
	for _, d := range w.Spec.Decisions {
		// Under a ruleset that lets nothing be off, no decision counts,
		// expired or not; offUnderRuleset has said so.
		if !safeguard.ForbidsOff(policy.Ruleset()) && !v.Clock.Now().Before(d.Expires.Time) {
			warnings = append(warnings, fmt.Sprintf("the decision for %s expired at %s: %s will count as NonCompliant until it is renewed",
				d.Safeguard, d.Expires.UTC().Format(time.RFC3339), d.Safeguard))
		}
	}
	return warnings, nil
}

// ValidateUpdate implements admission.Validator.
func (v *WorkloadValidator) ValidateUpdate(ctx context.Context, old, w *phiguardv1alpha1.PHIWorkload) (admission.Warnings, error) {
	if !w.DeletionTimestamp.IsZero() {
		return nil, nil // let a workload being deleted lose its finalizer
	}
	return v.validateAndRecord(ctx, old, w)
}

// ValidateDelete implements admission.Validator.
func (v *WorkloadValidator) ValidateDelete(context.Context, *phiguardv1alpha1.PHIWorkload) (admission.Warnings, error) {
	return nil, nil
}
