// Package safeguard holds phiguard's HIPAA safeguards: one type per safeguard
// behind the Safeguard interface, the Scope each one reads, and the rules that
// decide what a mode, a decision and a result mean for compliance.
package safeguard

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Rule is the HIPAA Security Rule specification a safeguard implements.
type Rule struct {
	// Section is the regulation's section, such as "§164.312(b)".
	Section string
	// Specification is Required or Addressable.
	Specification phiguardv1alpha1.Specification
	// Summary says in one line what the safeguard checks.
	Summary string
}

// Result is what one safeguard observed (and, in Enforce mode, did).
type Result struct {
	// Status is True when the safeguard holds, False when it does not, Unknown
	// when it could not be evaluated.
	Status metav1.ConditionStatus
	// Reason is a CamelCase reason for the condition.
	Reason string
	// Message says what holds or what to fix, naming objects and counts.
	Message string
	// RequeueAfter asks for another evaluation after this long, for results that
	// change with time alone (an expiring decision, an ageing backup). Zero: none.
	RequeueAfter time.Duration
	// Err is an error that kept the safeguard from finishing. A *StalledError
	// means the spec cannot be acted on as written; any other error is retried.
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
	// Reconcile observes the scope's targets and, in Enforce mode, applies what
	// the safeguard needs. In Off mode it removes what it created earlier; its
	// result then only counts through Err, as the decision decides compliance.
	Reconcile(ctx context.Context, s *Scope) Result
}

// Finalizer is a safeguard that keeps objects no owner reference can tie to
// the workload (they live in another namespace). The controller holds a
// finalizer on every PHIWorkload and calls Finalize before letting it go.
type Finalizer interface {
	Finalize(ctx context.Context, c client.Client, w *phiguardv1alpha1.PHIWorkload) ([]Event, error)
}

// Rules maps each safeguard to its HIPAA specification.
var rules = map[phiguardv1alpha1.SafeguardName]Rule{
	phiguardv1alpha1.NetworkIsolated: {
		Section: "§164.312(e)(1)", Specification: phiguardv1alpha1.Required,
		Summary: "ePHI pods are isolated by default-deny NetworkPolicies",
	},
	phiguardv1alpha1.EncryptedAtRest: {
		Section: "§164.312(a)(2)(iv)", Specification: phiguardv1alpha1.Addressable,
		Summary: "ePHI volumes use encrypted StorageClasses",
	},
	phiguardv1alpha1.BackupScheduled: {
		Section: "§164.308(a)(7)(ii)(A)", Specification: phiguardv1alpha1.Required,
		Summary: "ePHI is backed up on a schedule and the last backup is fresh",
	},
	phiguardv1alpha1.AuditLogging: {
		Section: "§164.312(b)", Specification: phiguardv1alpha1.Required,
		Summary: "ePHI pods carry the audit sidecar",
	},
	phiguardv1alpha1.TransmissionSecure: {
		Section: "§164.312(e)(2)(ii)", Specification: phiguardv1alpha1.Addressable,
		Summary: "traffic to ePHI pods is encrypted in transit",
	},
	phiguardv1alpha1.AccessControlled: {
		Section: "§164.312(a)(1)", Specification: phiguardv1alpha1.Required,
		Summary: "ePHI pods run with dedicated, least-privilege identities",
	},
	phiguardv1alpha1.IntegrityProtected: {
		Section: "§164.312(c)(1)", Specification: phiguardv1alpha1.Required,
		Summary: "ePHI pods run immutable, unprivileged, digest-pinned containers",
	},
	phiguardv1alpha1.Available: {
		Section: "§164.308(a)(7)(ii)(C)", Specification: phiguardv1alpha1.Required,
		Summary: "ePHI workloads keep running through the loss of a pod",
	},
}

// RuleFor returns the HIPAA rule of a safeguard.
func RuleFor(name phiguardv1alpha1.SafeguardName) Rule {
	return rules[name]
}

// Order is the fixed order in which safeguards are evaluated and reported.
var Order = []phiguardv1alpha1.SafeguardName{
	phiguardv1alpha1.NetworkIsolated,
	phiguardv1alpha1.EncryptedAtRest,
	phiguardv1alpha1.BackupScheduled,
	phiguardv1alpha1.AuditLogging,
	phiguardv1alpha1.TransmissionSecure,
	phiguardv1alpha1.AccessControlled,
	phiguardv1alpha1.IntegrityProtected,
	phiguardv1alpha1.Available,
}

// Registry returns every safeguard, in Order. Safeguards that phiguard does not
// evaluate yet are present as NotImplemented, so that status always shows all
// of them and none is ever reported compliant without being checked. metrics
// may be nil.
func Registry(metrics *BackupMetrics) []Safeguard {
	out := make([]Safeguard, 0, len(Order))
	for _, name := range Order {
		switch name {
		case phiguardv1alpha1.NetworkIsolated:
			out = append(out, NetworkIsolation{})
		case phiguardv1alpha1.EncryptedAtRest:
			out = append(out, EncryptionAtRest{})
		case phiguardv1alpha1.AuditLogging:
			out = append(out, AuditLogging{})
		case phiguardv1alpha1.BackupScheduled:
			out = append(out, BackupScheduling{Metrics: metrics})
		default:
			out = append(out, NotImplemented(name))
		}
	}
	return out
}
