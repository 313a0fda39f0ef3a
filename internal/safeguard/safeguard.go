// Package safeguard holds phiguard's HIPAA safeguards: one type per safeguard
// behind the Safeguard interface, the Registry that lists them, the Scope each
// one reads, and the rules that decide what a mode, a decision and a result
// mean for compliance.
//
// A safeguard describes itself: its name and HIPAA rule, its built-in
// defaults, and through optional interfaces what it reads (Reader), which
// changes re-evaluate which workloads (Watcher), what it cleans up when a
// workload goes (Finalizer) and which admission webhooks it serves
// (Admitter). The controller, the scope builder, the watches and the webhook
// server iterate the Registry and name no safeguard; a safeguard whose typed
// kinds the base scheme lacks adds them (SchemeAdder).
package safeguard

import (
	"context"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Rule is the HIPAA Security Rule specification a safeguard implements. A
// safeguard's Rule method states it under both rulesets; Under picks one.
type Rule struct {
	// Section is the regulation's section, such as "§164.312(b)": under the
	// Security Rule in force (SecurityRule2013) as a safeguard states it, under
	// the ruleset asked for in a Rule that Under returned.
	Section string
	// Specification is Required or Addressable, read the same way as Section.
	Specification phiguardv1alpha1.Specification
	// ProposedSection is the section of HHS's proposed update (ruleset
	// ProposedRule2025, 90 FR 898) that covers what the safeguard checks. The
	// proposal has no Addressable specifications: under it every safeguard
	// is Required.
	ProposedSection string
	// Summary says in one line what the safeguard checks.
	Summary string
}

// Under returns the rule as ruleset rs states it: Section and Specification
// are those of rs (under ProposedRule2025, ProposedSection and Required).
// An unknown or empty ruleset is the default, SecurityRule2013.
func (r Rule) Under(rs phiguardv1alpha1.Ruleset) Rule {
	if rs == phiguardv1alpha1.RulesetProposedRule2025 {
		r.Section, r.Specification = r.ProposedSection, phiguardv1alpha1.Required
	}
	return r
}

// Result is what one safeguard observed (and, in Enforce mode, did).
type Result struct {
	// Status is True when the safeguard holds, False when it does not, Unknown
	// when it could not be evaluated.
	Status metav1.ConditionStatus
	// Reason is a CamelCase reason for the condition, a constant of api/v1alpha1.
	Reason string
	// Message says what holds or what to fix, naming objects and counts.
	Message string
	// RequeueAfter asks for another evaluation after this long, for results that
	// change with time alone (an expiring decision, an ageing backup). Zero: none.
	RequeueAfter time.Duration
	// Err is an error that kept the safeguard from finishing. A *StalledError
	// means the spec cannot be acted on as written: the workload is Stalled and
	// not retried until it changes. Any other error is retried with backoff.
	Err error
	// Events are the enforcement actions the safeguard took (created, healed,
	// removed an object), recorded as Events on the PHIWorkload.
	Events []Event
}

// Event is one enforcement action, recorded as a Kubernetes Event whose
// action is the safeguard's name.
type Event struct {
	// Warning marks actions that repair something (drift); others are Normal.
	Warning bool
	// Reason is a CamelCase reason, such as "PolicyCreated".
	Reason string
	// Message says what was done to which object.
	Message string
	// Related is the object acted on, at the version the action left it. It
	// keeps two actions on one object apart, where events.k8s.io would fold them.
	Related *corev1.ObjectReference
}

// Safeguard is one HIPAA safeguard.
type Safeguard interface {
	// Name is the safeguard's name and its condition type.
	Name() phiguardv1alpha1.SafeguardName
	// Rule is the HIPAA specification it implements.
	Rule() Rule
	// Defaults sets the safeguard's built-in settings (its block of s, mode
	// included): what applies where neither the workload nor the PHIPolicy
	// says otherwise.
	Defaults(s *phiguardv1alpha1.SafeguardSettings)
	// Reconcile observes the scope's targets and, in Enforce mode, applies what
	// the safeguard needs. In Off mode it removes what it created earlier; its
	// result then only counts through Err, as the decision decides compliance.
	Reconcile(ctx context.Context, s *Scope) Result
}

// Reader is a safeguard that reads more than the selected pods: the scope
// builder reads each of its inputs once per reconcile, before any safeguard
// runs, sharing an input two safeguards declare.
type Reader interface {
	Inputs() []Input
}

// Watcher is a safeguard whose result depends on objects other than the
// workload and its pods: a change to one of them re-evaluates the workloads
// its Watch maps it to.
type Watcher interface {
	Watches() []Watch
}

// SpecValidator is a safeguard with rules the CRD cannot express. The
// PHIWorkload webhook refuses a spec that breaks them (naming the fix) and
// passes its warnings on; Reconcile stalls, with the same error, on a
// workload admitted before the rule. settings may hold only the workload's
// own blocks (at admission) or every block (in Reconcile): a block left nil
// is not judged.
type SpecValidator interface {
	ValidateSpec(settings *phiguardv1alpha1.SafeguardSettings) (warnings []string, err error)
}

// SchemeAdder is a safeguard that reads or writes typed objects of an API
// group phiguard's base scheme (internal/scheme) lacks, such as an optional
// API's typed client: the manager adds them to its scheme before it starts.
type SchemeAdder interface {
	AddToScheme(s *runtime.Scheme) error
}

// Finalizer is a safeguard that keeps objects no owner reference can tie to
// the workload (they live in another namespace). The controller holds a
// finalizer on every PHIWorkload while some safeguard is a Finalizer, and
// calls Finalize before letting it go.
type Finalizer interface {
	Finalize(ctx context.Context, c client.Client, w *phiguardv1alpha1.PHIWorkload) ([]Event, error)
}

// MaxEventNote is the longest note events.k8s.io/v1 accepts; the apiserver
// rejects an Event with a longer one, and the record would be lost.
const MaxEventNote = 1024

// EventNote cuts a note to MaxEventNote bytes, at a rune boundary, ending
// with "..." when it cut. The condition or the admission response keeps the
// whole text.
func EventNote(s string) string {
	if len(s) <= MaxEventNote {
		return s
	}
	cut := MaxEventNote - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
