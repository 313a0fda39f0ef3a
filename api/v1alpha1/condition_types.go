package v1alpha1

// Summary condition types of a PHIWorkload, next to one condition per
// safeguard (whose types are the SafeguardName constants).
const (
	// ReadyCondition is True when every safeguard holds or is off under a valid
	// decision; False otherwise, with a message naming the safeguards at fault.
	ReadyCondition = "Ready"

	// StalledCondition is present, and True, only when the spec cannot be acted on
	// as written (kstatus "abnormal-true": True is bad). Its reason says why and
	// its message what to fix; it goes away once the spec is fixed.
	StalledCondition = "Stalled"

	// ReconcilingCondition is present, and True, only while phiguard has not
	// fully evaluated the current generation of the spec (kstatus
	// "abnormal-true"): observedGeneration is behind metadata.generation,
	// because the reconcile is under way or ended in an error it retries.
	ReconcilingCondition = "Reconciling"
)

// Reasons of the Ready condition. When Stalled is True, Ready carries the
// Stalled reason instead.
const (
	// CompliantReason means every safeguard holds (Ready True).
	CompliantReason = "Compliant"

	// SafeguardsFailingReason means at least one safeguard is False (Ready False).
	SafeguardsFailingReason = "SafeguardsFailing"

	// SafeguardsNotEvaluatedReason means no safeguard is False but some could not
	// be evaluated (Ready False: an unevaluated safeguard is never compliant).
	SafeguardsNotEvaluatedReason = "SafeguardsNotEvaluated"
)

// EvidenceSinkDegradedCondition (on the PHIPolicy; True is bad): evidence
// records cannot be stored where they must last (the sink is unreachable or
// refuses them, the buffer drops records, or the directory is ephemeral).
// False once every record taken is being stored.
const EvidenceSinkDegradedCondition = "EvidenceSinkDegraded"
