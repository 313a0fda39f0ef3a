package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultPolicyName is the name of the PHIPolicy whose defaults apply.
const DefaultPolicyName = "default"

// PHIPolicySpec holds the organisation's defaults.
//
// A default never turns a safeguard off. Under SecurityRule2013 the two
// Addressable safeguards (EncryptedAtRest, TransmissionSecure) are turned off
// only by a decision documented on each PHIWorkload; the Required ones carry
// their own rule on their blocks. Under ProposedRule2025 every safeguard is
// Required and nothing turns one off; the message says which applies.
// +kubebuilder:validation:XValidation:rule="!has(self.defaults) || !has(self.defaults.encryptionAtRest) || !has(self.defaults.encryptionAtRest.mode) || self.defaults.encryptionAtRest.mode != 'Off'",message="defaults.encryptionAtRest.mode cannot be Off: turning an Addressable safeguard off takes a decision documented on each PHIWorkload",messageExpression="has(self.ruleset) && self.ruleset == 'ProposedRule2025' ? 'defaults.encryptionAtRest.mode cannot be Off: under ruleset ProposedRule2025 (HHS NPRM 90 FR 898) every safeguard is Required and no decision turns one off; use Audit to report without enforcing' : 'defaults.encryptionAtRest.mode cannot be Off: turning an Addressable safeguard off takes a decision documented on each PHIWorkload'"
// +kubebuilder:validation:XValidation:rule="!has(self.defaults) || !has(self.defaults.transmissionSecurity) || !has(self.defaults.transmissionSecurity.mode) || self.defaults.transmissionSecurity.mode != 'Off'",message="defaults.transmissionSecurity.mode cannot be Off: turning an Addressable safeguard off takes a decision documented on each PHIWorkload",messageExpression="has(self.ruleset) && self.ruleset == 'ProposedRule2025' ? 'defaults.transmissionSecurity.mode cannot be Off: under ruleset ProposedRule2025 (HHS NPRM 90 FR 898) every safeguard is Required and no decision turns one off; use Audit to report without enforcing' : 'defaults.transmissionSecurity.mode cannot be Off: turning an Addressable safeguard off takes a decision documented on each PHIWorkload'"
type PHIPolicySpec struct {
	// ruleset is the version of the HIPAA Security Rule the safeguards are
	// judged against, and whose sections status and reports cite:
	// SecurityRule2013 (the default: 45 CFR Part 164 Subpart C as in force,
	// last amended in 2013) or ProposedRule2025 (HHS's notice of proposed
	// rulemaking published 2025-01-06, 90 FR 898; not final). Under
	// ProposedRule2025 every safeguard is Required: a decision that turns one
	// off is refused at admission, and one admitted before no longer counts
	// (the safeguard runs in at least Audit and is judged, with reason
	// DecisionNotRecognised).
	// +optional
	// +kubebuilder:default=SecurityRule2013
	Ruleset Ruleset `json:"ruleset,omitempty"`

	// defaults are the safeguard settings every PHIWorkload inherits for the
	// fields it leaves empty.
	// +optional
	Defaults SafeguardSettings `json:"defaults,omitempty"`

	// storage holds what the cluster knows about its storage's encryption.
	// +optional
	Storage *StoragePolicy `json:"storage,omitempty"`

	// backup holds the organisation's rules for backups.
	// +optional
	Backup *BackupPolicy `json:"backup,omitempty"`

	// decisions holds who may approve a decision and for how long.
	// +optional
	Decisions *DecisionPolicy `json:"decisions,omitempty"`

	// minimumModes are the least each safeguard may run in: a PHIWorkload asking
	// for less is refused at admission, and one that existed before the minimum
	// runs at the minimum.
	// +optional
	// +listType=map
	// +listMapKey=safeguard
	// +kubebuilder:validation:MaxItems=8
	MinimumModes []MinimumMode `json:"minimumModes,omitempty"`

	// exemptNamespaces are namespaces phiguard never acts on. kube-system and
	// phiguard's own namespace are always exempt.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	ExemptNamespaces []string `json:"exemptNamespaces,omitempty"`

	// requireApprovalToUnlabel, when true, refuses to remove the
	// phiguard.io/ephi label from a Namespace unless the same change documents
	// the decision in the annotations phiguard.io/unlabel-justification,
	// phiguard.io/unlabel-approved-by and phiguard.io/unlabel-expires (RFC 3339,
	// in the future). Default false.
	// +optional
	RequireApprovalToUnlabel bool `json:"requireApprovalToUnlabel,omitempty"`
}

// Ruleset names a version of the HIPAA Security Rule.
// +kubebuilder:validation:Enum=SecurityRule2013;ProposedRule2025
type Ruleset string

const (
	// RulesetSecurityRule2013 is the Security Rule in force (45 CFR Part 164
	// Subpart C, as amended in 2013): EncryptedAtRest and TransmissionSecure
	// are Addressable, and may be turned off under a documented decision.
	RulesetSecurityRule2013 Ruleset = "SecurityRule2013"
	// RulesetProposedRule2025 is the update HHS proposed in its notice of
	// proposed rulemaking of 2025-01-06 (90 FR 898; not final): the
	// Addressable category is removed, so every safeguard is Required,
	// encryption at rest and in transit among them.
	RulesetProposedRule2025 Ruleset = "ProposedRule2025"
)

// DefaultRuleset is the ruleset of a cluster without a PHIPolicy, or whose
// PHIPolicy names none.
const DefaultRuleset = RulesetSecurityRule2013

// Ruleset is the policy's ruleset, or DefaultRuleset for a nil policy or
// one that names none.
func (p *PHIPolicy) Ruleset() Ruleset {
	if p == nil || p.Spec.Ruleset == "" {
		return DefaultRuleset
	}
	return p.Spec.Ruleset
}

// MinimumMode is the least mode one safeguard may run in.
type MinimumMode struct {
	// safeguard the minimum applies to.
	// +required
	Safeguard SafeguardName `json:"safeguard"`

	// mode is the minimum: Audit (the safeguard may not be off) or Enforce.
	// +required
	// +kubebuilder:validation:Enum=Audit;Enforce
	Mode Mode `json:"mode"`
}

// PlatformManagedEncryption says whether encryption a platform applies to every
// disk with keys it manages counts as encryption at rest.
// +kubebuilder:validation:Enum=Accept;Reject
type PlatformManagedEncryption string

const (
	// PlatformManagedAccept counts platform-managed keys (Azure Disk, GCE PD) as encrypted.
	PlatformManagedAccept PlatformManagedEncryption = "Accept"
	// PlatformManagedReject requires customer-managed keys on those platforms.
	PlatformManagedReject PlatformManagedEncryption = "Reject"
)

// StoragePolicy holds the cluster's facts about storage encryption that
// phiguard cannot read from StorageClass parameters.
type StoragePolicy struct {
	// encryptedStorageClasses are StorageClasses known to encrypt at rest by
	// means their parameters do not show (a self-encrypting array, account-wide
	// default encryption).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	EncryptedStorageClasses []string `json:"encryptedStorageClasses,omitempty"`

	// platformManagedEncryption says whether the encryption Azure and Google
	// apply to every disk with keys they manage counts: Accept (the default)
	// or Reject, to require a customer-managed key (diskEncryptionSetID,
	// disk-encryption-kms-key).
	// +optional
	// +kubebuilder:default=Accept
	PlatformManagedEncryption PlatformManagedEncryption `json:"platformManagedEncryption,omitempty"`
}

// DefaultMinimumBackupTTL is the shortest backup.ttl a PHIWorkload may ask
// for when the PHIPolicy sets no backup.minimumTTL: 90 days.
const DefaultMinimumBackupTTL = 2160 * time.Hour

// BackupPolicy holds the organisation's rules for backups.
type BackupPolicy struct {
	// acceptProviderDefaultEncryption, when true, counts a
	// BackupStorageLocation whose config declares no encryption as encrypted
	// by its provider's default (an S3 bucket's default encryption,
	// Google- or Azure-managed keys). Default false: the location must
	// declare its encryption (AWS serverSideEncryption or kmsKeyId, GCP
	// kmsKeyName) for BackupScheduled to hold.
	// +optional
	AcceptProviderDefaultEncryption bool `json:"acceptProviderDefaultEncryption,omitempty"`

	// minimumTTL is the shortest backup.ttl a PHIWorkload may ask for; a
	// shorter one is refused at admission. Default 2160h (90 days).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h)){1,3}$')",message="backup.minimumTTL must be a duration such as \"2160h\" (units h, m, s; at most three parts of at most 99999 each)"
	MinimumTTL *metav1.Duration `json:"minimumTTL,omitempty"`

	// locationCredentials names a Secret in phiguard's own namespace holding
	// read-only credentials for the S3 bucket of Velero's
	// BackupStorageLocations (keys accessKeyID and secretAccessKey; optional
	// sessionToken). With them phiguard reads each bucket's versioning and
	// Object Lock configuration (s3:GetBucketVersioning,
	// s3:GetBucketObjectLockConfiguration) and fails BackupScheduled with
	// StorageLocationMutable when a backup could be deleted or overwritten
	// before its ttl. Without them immutability is not checked, and the
	// condition's message says so.
	// +optional
	LocationCredentials *SecretName `json:"locationCredentials,omitempty"`
}

// SecretName names a Secret in phiguard's own namespace.
type SecretName struct {
	// name is the Secret's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	Name string `json:"name"`
}

// DefaultMaxDecisionLifetime is how far ahead a decision may expire when the
// PHIPolicy sets no decisions.maxLifetime: one year.
const DefaultMaxDecisionLifetime = 8760 * time.Hour

// DecisionPolicy holds who may approve a decision and for how long.
type DecisionPolicy struct {
	// approvers, when set, are the only users (or members of the groups) whose
	// request may add or change a decision on a PHIWorkload: the requester
	// phiguard authenticates at admission, whatever approvedBy says.
	// +optional
	Approvers *Approvers `json:"approvers,omitempty"`

	// maxLifetime is how far ahead of its request a decision may expire; a
	// decision that expires later is refused at admission. Default 8760h
	// (one year).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h)){1,3}$')",message="decisions.maxLifetime must be a duration such as \"8760h\" (units h, m, s; at most three parts of at most 99999 each)"
	MaxLifetime *metav1.Duration `json:"maxLifetime,omitempty"`
}

// Approvers are users and groups, as the apiserver authenticates them.
type Approvers struct {
	// users are user names, such as security-officer@clinic.example.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	Users []string `json:"users,omitempty"`

	// groups are group names, such as clinic:security-officers.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	Groups []string `json:"groups,omitempty"`
}

// MaxDecisionLifetime is the policy's decisions.maxLifetime, or the default.
func (p *PHIPolicy) MaxDecisionLifetime() time.Duration {
	if p != nil && p.Spec.Decisions != nil && p.Spec.Decisions.MaxLifetime != nil {
		return p.Spec.Decisions.MaxLifetime.Duration
	}
	return DefaultMaxDecisionLifetime
}

// DecisionApprovers returns the policy's approvers, or nil when anyone who
// may edit a PHIWorkload may record a decision.
func (p *PHIPolicy) DecisionApprovers() *Approvers {
	if p == nil || p.Spec.Decisions == nil {
		return nil
	}
	return p.Spec.Decisions.Approvers
}

// LocationCredentials is the policy's backup.locationCredentials; nil
// without a policy or without them.
func (p *PHIPolicy) LocationCredentials() *SecretName {
	if p == nil || p.Spec.Backup == nil {
		return nil
	}
	return p.Spec.Backup.LocationCredentials
}

// MinimumBackupTTL is the policy's backup.minimumTTL, or the default.
func (p *PHIPolicy) MinimumBackupTTL() time.Duration {
	if p != nil && p.Spec.Backup != nil && p.Spec.Backup.MinimumTTL != nil {
		return p.Spec.Backup.MinimumTTL.Duration
	}
	return DefaultMinimumBackupTTL
}

// AcceptsProviderDefaultEncryption says whether the policy counts a backup
// location's provider default as encryption.
func (p *PHIPolicy) AcceptsProviderDefaultEncryption() bool {
	return p != nil && p.Spec.Backup != nil && p.Spec.Backup.AcceptProviderDefaultEncryption
}

// PHIPolicy is the organisation's defaults for the safeguards of every
// PHIWorkload. Only the PHIPolicy named "default" applies.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=phiguard
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default'",message="only a PHIPolicy named \"default\" applies; name it default"
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Evidence-Degraded",type=string,JSONPath=`.status.conditions[?(@.type=="EvidenceSinkDegraded")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PHIPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the defaults.
	// +optional
	Spec PHIPolicySpec `json:"spec,omitempty"`

	// status reports on what serves every workload the policy governs: the
	// evidence trail.
	// +optional
	Status PHIPolicyStatus `json:"status,omitempty"`
}

// PHIPolicyStatus reports on what serves every workload.
type PHIPolicyStatus struct {
	// conditions: EvidenceSinkDegraded.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// PHIPolicyList is a list of PHIPolicies.
//
// +kubebuilder:object:root=true
type PHIPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PHIPolicy `json:"items"`
}
