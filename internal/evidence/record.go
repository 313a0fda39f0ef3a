// Package evidence keeps phiguard's evidence trail: a record for every change
// of a safeguard's result, every enforcement action, admission denial or
// warning, decision, withdrawal of coverage, emergency access and a daily
// attestation of every workload. Records are chained by SHA-256 (each holds
// the previous one's hash), batched into segments that end with a checkpoint
// signed with Ed25519, and written to a Sink: a local directory, or an
// S3-compatible bucket with Object Lock. Verify walks the chain and reports
// the first broken link.
package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// SchemaVersion names the JSON schema of records and checkpoints; it changes
// whenever a field changes meaning or is removed (adding one does not).
const SchemaVersion = "evidence.phiguard.io/v1"

// Kind says what a record is evidence of.
type Kind string

// The kinds of record.
const (
	// KindResult: a safeguard's result changed (or was first seen).
	KindResult Kind = "Result"
	// KindAction: phiguard acted: created, healed or removed an object,
	// restarted a pod, started a restore drill.
	KindAction Kind = "Action"
	// KindAdmission: an admission webhook denied a request or admitted it
	// with warnings.
	KindAdmission Kind = "Admission"
	// KindDecision: a decision to turn a safeguard off was added, changed,
	// removed or expired.
	KindDecision Kind = "Decision"
	// KindCoverage: phiguard withdrew (or restored) a labelled object's
	// coverage.
	KindCoverage Kind = "Coverage"
	// KindEmergencyAccess: someone used break-glass access to a pod.
	KindEmergencyAccess Kind = "EmergencyAccess"
	// KindAttestation: the daily statement of a workload's full status, even
	// when nothing changed.
	KindAttestation Kind = "Attestation"
)

// Kinds lists every kind, in the order of the constants.
var Kinds = []Kind{KindResult, KindAction, KindAdmission, KindDecision, KindCoverage, KindEmergencyAccess, KindAttestation}

// Workload names the PHIWorkload a record is about.
type Workload struct {
	Namespace  string `json:"namespace"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
	Generation int64  `json:"generation,omitempty"`
}

// Object names a Kubernetes object a record involves.
type Object struct {
	APIVersion string `json:"apiVersion,omitempty"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Name       string `json:"name"`
	UID        string `json:"uid,omitempty"`
}

// SafeguardResult is one safeguard's result in an attestation.
type SafeguardResult struct {
	Safeguard string `json:"safeguard"`
	Section   string `json:"section,omitempty"`
	Mode      string `json:"mode,omitempty"`
	Result    string `json:"result"`
	Reason    string `json:"reason,omitempty"`
	Message   string `json:"message,omitempty"`
}

// Record is one piece of evidence. The writer fills Schema, Cluster, Shard,
// Seq, Prev and Hash; whoever records fills the rest.
type Record struct {
	// Schema is SchemaVersion.
	Schema string `json:"schema"`
	// Seq numbers the records of a shard from 1, without gaps.
	Seq uint64 `json:"seq"`
	// Time is when it happened, in UTC.
	Time time.Time `json:"time"`
	// Cluster is the cluster's identity (the kube-system namespace's UID).
	Cluster string `json:"cluster"`
	// Shard is the chain the record belongs to.
	Shard string `json:"shard"`
	// Kind says what the record is evidence of.
	Kind Kind `json:"kind"`
	// Workload is the PHIWorkload it is about, if any.
	Workload *Workload `json:"workload,omitempty"`
	// Safeguard is the condition type, such as "NetworkIsolated", or empty.
	Safeguard string `json:"safeguard,omitempty"`
	// Section is the HIPAA Security Rule section, such as "§164.312(b)".
	Section string `json:"section,omitempty"`
	// Mode is the safeguard's effective mode: Enforce, Audit or Off.
	Mode string `json:"mode,omitempty"`
	// Result is True, False or Unknown for a result; Denied or Warned for
	// admission; Added, Changed, Removed or Expired for a decision;
	// Withdrawn or Restored for coverage; Admitted or Denied for emergency
	// access; Compliant, NonCompliant or Pending for an attestation; the
	// action's name for an action.
	Result string `json:"result,omitempty"`
	// Reason is the CamelCase reason.
	Reason string `json:"reason,omitempty"`
	// Message says what happened, for a human.
	Message string `json:"message,omitempty"`
	// Actor is the user or component that caused it, where known.
	Actor string `json:"actor,omitempty"`
	// Objects are the objects involved.
	Objects []Object `json:"objects,omitempty"`
	// Safeguards is the full status, in an attestation.
	Safeguards []SafeguardResult `json:"safeguards,omitempty"`
	// Prev is the previous record's Hash; empty for a shard's first record.
	Prev string `json:"prev"`
	// Hash is the hex SHA-256 of the record's JSON encoding with Hash empty.
	Hash string `json:"hash"`
}

// ComputeHash returns the hash the record should carry: the hex SHA-256 of
// its JSON encoding with Hash empty. Go's encoding/json writes struct fields
// in their declared order, so the encoding is canonical for a version of
// this schema.
func (r Record) ComputeHash() (string, error) {
	r.Hash = ""
	raw, err := json.Marshal(r)
	if err != nil {
		return "", fmt.Errorf("encoding evidence record %d: %w", r.Seq, err)
	}
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:]), nil
}
