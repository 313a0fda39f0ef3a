package v1alpha1

// Labels phiguard reads and writes.
const (
	// EPHILabel is the label that, set to "true" on a Deployment, StatefulSet,
	// Service or Namespace, says that it handles ePHI and should be covered by phiguard.
	EPHILabel = "phiguard.io/ephi"

	// EPHILabelValue is the value of EPHILabel that asks for coverage; any
	// other value, or none, does not.
	EPHILabelValue = "true"

	// WorkloadLabel is the label that, on an object phiguard created, names the PHIWorkload (in the
	// object's namespace) it was created for.
	WorkloadLabel = "phiguard.io/workload"

	// ManagedByLabel is the well-known label naming the tool that manages an
	// object; phiguard sets it to ManagedByValue on everything it creates.
	ManagedByLabel = "app.kubernetes.io/managed-by"

	// ManagedByValue is phiguard's value of ManagedByLabel.
	ManagedByValue = "phiguard"

	// HoldsEPHILabel is the label phiguard keeps, set to HoldsEPHILabelValue,
	// on each Namespace that holds at least one PHIWorkload (kube-system,
	// phiguard's own namespace and the PHIPolicy's exempt namespaces
	// excepted), and removes once none is left. With the chart's
	// webhook.failClosedForEPHI (or config/fail-closed-ephi), the pod and
	// claim webhooks fail closed in the namespaces it, or EPHILabel, marks.
	HoldsEPHILabel = "phiguard.io/holds-ephi"

	// HoldsEPHILabelValue is the value phiguard gives HoldsEPHILabel.
	HoldsEPHILabelValue = "true"
)

// Labels and annotations of the PHIWorkloads phiguard generates for labelled objects.
const (
	// GeneratedFromLabel, on a generated PHIWorkload, is the kind of the
	// labelled object it covers: Deployment, StatefulSet, Service or Namespace.
	GeneratedFromLabel = "phiguard.io/generated-from"

	// SourceAnnotation, on a generated PHIWorkload, names the labelled object
	// it covers as <Kind>/<name> (its namespace is the workload's).
	SourceAnnotation = "phiguard.io/source"
)

// The decision, recorded on a Namespace, that lets its phiguard.io/ephi label
// be removed while PHIPolicy spec.requireApprovalToUnlabel is true.
const (
	// UnlabelJustificationAnnotation says why the namespace no longer handles ePHI.
	UnlabelJustificationAnnotation = "phiguard.io/unlabel-justification"
	// UnlabelApprovedByAnnotation names who approved the removal.
	UnlabelApprovedByAnnotation = "phiguard.io/unlabel-approved-by"
	// UnlabelExpiresAnnotation is when the approval lapses (RFC 3339); the
	// label must be removed before then.
	UnlabelExpiresAnnotation = "phiguard.io/unlabel-expires"
)

// DecisionsRecordedByAnnotation is the annotation that, on a PHIWorkload, holds who added or last
// changed each decision, as the apiserver authenticated the request: a JSON
// object from safeguard name to user name. phiguard's mutating webhook
// writes it on every create and update, from the request and the stored
// object, never from what the request itself puts there.
const DecisionsRecordedByAnnotation = "phiguard.io/decisions-recorded-by"

// CleanupFinalizer holds a PHIWorkload until the safeguards that keep objects
// outside its namespace (the backup Schedule, a restore drill's namespace)
// have removed them. phiguard's mutating webhook sets it on create, so that a
// workload is held from its first moment without a write of its own; the
// controller adds it to a workload admitted without it.
const CleanupFinalizer = "compliance.phiguard.io/cleanup"
