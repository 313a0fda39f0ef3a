package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PHIWorkloadSpec names the pods that handle ePHI and the safeguards they need.
// +kubebuilder:validation:XValidation:rule="!has(self.encryptionAtRest) || !has(self.encryptionAtRest.mode) || self.encryptionAtRest.mode != 'Off' || (has(self.decisions) && self.decisions.exists(d, d.safeguard == 'EncryptedAtRest'))",message="encryptionAtRest.mode is Off without a decision: add an entry to spec.decisions with safeguard EncryptedAtRest, kind, justification, approvedBy and expires, or set the mode to Enforce or Audit"
// +kubebuilder:validation:XValidation:rule="!has(self.transmissionSecurity) || !has(self.transmissionSecurity.mode) || self.transmissionSecurity.mode != 'Off' || (has(self.decisions) && self.decisions.exists(d, d.safeguard == 'TransmissionSecure'))",message="transmissionSecurity.mode is Off without a decision: add an entry to spec.decisions with safeguard TransmissionSecure, kind, justification, approvedBy and expires, or set the mode to Enforce or Audit"
// +kubebuilder:validation:XValidation:rule="(has(self.namespaceWide) && self.namespaceWide) || (has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0) || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)",message="spec.selector is empty: give matchLabels or matchExpressions that select the pods handling ePHI, or set spec.namespaceWide: true to cover every pod in the namespace"
// +kubebuilder:validation:XValidation:rule="!has(self.namespaceWide) || !self.namespaceWide || ((!has(self.selector.matchLabels) || size(self.selector.matchLabels) == 0) && (!has(self.selector.matchExpressions) || size(self.selector.matchExpressions) == 0))",message="spec.namespaceWide covers every pod in the namespace: leave spec.selector empty ({}), or set namespaceWide to false to cover only the pods the selector names"
type PHIWorkloadSpec struct {
	// selector selects the pods in this namespace that handle ePHI. It must not be
	// empty unless namespaceWide is true: an empty selector would otherwise
	// silently cover every pod in the namespace.
	// +required
	Selector metav1.LabelSelector `json:"selector"`

	// namespaceWide says, explicitly, that every pod in the namespace handles
	// ePHI; the selector must then be empty. A Namespace labelled
	// phiguard.io/ephi=true is covered by a generated PHIWorkload of this kind.
	// +optional
	NamespaceWide bool `json:"namespaceWide,omitempty"`

	// The safeguard blocks; empty fields come from the PHIPolicy named "default",
	// then from built-in defaults.
	SafeguardSettings `json:",inline"`

	// decisions documents each Addressable safeguard that is turned off (none
	// may be under the PHIPolicy's ruleset ProposedRule2025).
	// +optional
	// +listType=map
	// +listMapKey=safeguard
	// +kubebuilder:validation:MaxItems=8
	Decisions []Decision `json:"decisions,omitempty"`
}

// Compliance summarises a PHIWorkload's safeguards.
// +kubebuilder:validation:Enum=Compliant;NonCompliant;Pending
type Compliance string

const (
	// Compliant means every safeguard holds or carries a valid decision.
	Compliant Compliance = "Compliant"
	// NonCompliant means at least one safeguard does not hold.
	NonCompliant Compliance = "NonCompliant"
	// Pending means no safeguard fails, but at least one could not be evaluated yet.
	Pending Compliance = "Pending"
)

// Specification is how HIPAA classifies an implementation specification.
// +kubebuilder:validation:Enum=Required;Addressable
type Specification string

const (
	// Required specifications must be implemented.
	Required Specification = "Required"
	// Addressable specifications must be implemented where reasonable and
	// appropriate; otherwise the decision and any alternative must be documented.
	Addressable Specification = "Addressable"
)

// SettingSource says where an effective setting came from.
// +kubebuilder:validation:Enum=Workload;Policy;Default
type SettingSource string

const (
	// SourceWorkload means set on the PHIWorkload itself.
	SourceWorkload SettingSource = "Workload"
	// SourcePolicy means taken from the PHIPolicy named "default".
	SourcePolicy SettingSource = "Policy"
	// SourceDefault means phiguard's built-in default.
	SourceDefault SettingSource = "Default"
)

// DecisionStatus is the record of one decision.
type DecisionStatus struct {
	// safeguard the decision is for.
	// +required
	Safeguard SafeguardName `json:"safeguard"`

	// approvedBy is the decision's approvedBy, as written.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	ApprovedBy string `json:"approvedBy,omitempty"`

	// recordedBy is the user whose request added or last changed the
	// decision; empty for a decision made before phiguard recorded requesters.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	RecordedBy string `json:"recordedBy,omitempty"`
}

// SafeguardStatus is one row of the per-safeguard table for dashboards.
type SafeguardStatus struct {
	// name is the safeguard, also its condition type.
	// +required
	Name SafeguardName `json:"name"`

	// section is the HIPAA Security Rule section, such as "§164.312(b)", under
	// the PHIPolicy's ruleset.
	// +required
	// +kubebuilder:validation:MaxLength=64
	Section string `json:"section"`

	// specification is Required or Addressable, under the PHIPolicy's ruleset
	// (always Required under ProposedRule2025).
	// +required
	Specification Specification `json:"specification"`

	// mode is the effective mode.
	// +required
	Mode Mode `json:"mode"`

	// modeSource says whether the mode came from the workload, the policy or the
	// built-in default.
	// +required
	ModeSource SettingSource `json:"modeSource"`

	// status is the condition's status: True, False or Unknown.
	// +required
	Status metav1.ConditionStatus `json:"status"`

	// reason is the condition's reason.
	// +required
	// +kubebuilder:validation:MaxLength=1024
	Reason string `json:"reason"`
}

// PHIWorkloadStatus is the compliance of the workload as last observed.
type PHIWorkloadStatus struct {
	// observedGeneration is the generation of the spec the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions holds one condition per safeguard, plus Ready (True only when
	// every safeguard holds or carries a valid decision) and Stalled (True when
	// the spec cannot be acted on; the message says what to fix).
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=32
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// compliance is Compliant, NonCompliant or Pending.
	// +optional
	Compliance Compliance `json:"compliance,omitempty"`

	// score is how many safeguards hold out of how many there are, such as "6/8".
	// +optional
	// +kubebuilder:validation:MaxLength=16
	Score string `json:"score,omitempty"`

	// matchedPods is the number of pods the selector matches.
	// +optional
	MatchedPods int32 `json:"matchedPods,omitempty"`

	// policy is the PHIPolicy whose defaults applied; empty when none exists.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Policy string `json:"policy,omitempty"`

	// safeguards is the per-safeguard table: section, specification, mode and result.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Safeguards []SafeguardStatus `json:"safeguards,omitempty"`

	// decisions records, for each decision in spec.decisions, who made the
	// request that added or last changed it (authenticated at admission),
	// beside who it says approved it.
	// +optional
	// +listType=map
	// +listMapKey=safeguard
	// +kubebuilder:validation:MaxItems=8
	Decisions []DecisionStatus `json:"decisions,omitempty"`
}

// PHIWorkload names the pods of a namespace that handle electronic protected
// health information and the HIPAA Security Rule safeguards phiguard keeps on them.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=phiw,categories=phiguard
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Compliance",type=string,JSONPath=`.status.compliance`
// +kubebuilder:printcolumn:name="Score",type=string,JSONPath=`.status.score`
// +kubebuilder:printcolumn:name="Pods",type=integer,JSONPath=`.status.matchedPods`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="a PHIWorkload name is at most 63 characters: it labels the objects phiguard creates for it"
type PHIWorkload struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which pods handle ePHI and which safeguards they need.
	// +required
	Spec PHIWorkloadSpec `json:"spec"`

	// status reports compliance, one condition per safeguard.
	// +optional
	Status PHIWorkloadStatus `json:"status,omitempty"`
}

// PHIWorkloadList is a list of PHIWorkloads.
//
// +kubebuilder:object:root=true
type PHIWorkloadList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PHIWorkload `json:"items"`
}
