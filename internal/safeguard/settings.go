package safeguard

import (
	"encoding/json"
	"fmt"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// BuiltinDefaults are the settings used where neither the PHIWorkload nor the
// PHIPolicy says otherwise. Each value is documented on its API field.
func BuiltinDefaults() phiguardv1alpha1.SafeguardSettings {
	return phiguardv1alpha1.SafeguardSettings{
		NetworkIsolation: &phiguardv1alpha1.NetworkIsolationSpec{
			Mode: phiguardv1alpha1.ModeEnforce, AllowDNS: ptr.To(true), AllowSameWorkload: ptr.To(true),
		},
		EncryptionAtRest: &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeEnforce},
		Backup: &phiguardv1alpha1.BackupSpec{
			Mode:            phiguardv1alpha1.ModeEnforce,
			Schedule:        "0 2 * * *",
			TTL:             &metav1.Duration{Duration: 52560 * time.Hour},
			RPO:             &metav1.Duration{Duration: 25 * time.Hour},
			VeleroNamespace: "velero",
			Volumes:         phiguardv1alpha1.BackupVolumesSnapshot,
		},
		AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{
			Mode: phiguardv1alpha1.ModeEnforce, RestartNonCompliant: ptr.To(false),
			LogPath: DefaultAuditLogPath,
			Sidecar: &phiguardv1alpha1.AuditSidecar{
				Image: DefaultAuditSidecarImage,
				Args:  []string{"-i", "tail", "-p", "path=" + DefaultAuditLogPath + "/*.log", "-o", "stdout"},
				Resources: &phiguardv1alpha1.AuditSidecarResources{
					Requests: &phiguardv1alpha1.CPUMemory{CPU: "10m", Memory: "32Mi"},
					Limits:   &phiguardv1alpha1.CPUMemory{CPU: "100m", Memory: "64Mi"},
				},
			},
		},
		TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeEnforce},
		AccessControl: &phiguardv1alpha1.AccessControlSpec{
			Mode: phiguardv1alpha1.ModeAudit, AllowTokenAutomount: ptr.To(false),
		},
		Integrity: &phiguardv1alpha1.IntegritySpec{
			Mode: phiguardv1alpha1.ModeAudit, RequireImageDigest: ptr.To(true),
		},
		Availability: &phiguardv1alpha1.AvailabilitySpec{
			Mode: phiguardv1alpha1.ModeAudit, MinReplicas: ptr.To[int32](2),
		},
	}
}

// Effective merges settings field by field: the workload's own win over the
// policy's, which win over the built-in defaults. policy may be nil. It also
// returns where each safeguard's mode came from.
func Effective(workload *phiguardv1alpha1.SafeguardSettings, policy *phiguardv1alpha1.PHIPolicy) (
	phiguardv1alpha1.SafeguardSettings, map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.SettingSource, error) {
	layers := []*phiguardv1alpha1.SafeguardSettings{workload}
	if policy != nil {
		layers = append(layers, &policy.Spec.Defaults)
	}
	// A JSON merge patch (RFC 7386) of each layer onto the one below is exactly a
	// field-by-field merge: every field is optional and omitted when unset.
	merged, err := json.Marshal(BuiltinDefaults())
	if err != nil {
		return phiguardv1alpha1.SafeguardSettings{}, nil, fmt.Errorf("encoding built-in defaults: %w", err)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		patch, err := json.Marshal(layers[i])
		if err != nil {
			return phiguardv1alpha1.SafeguardSettings{}, nil, fmt.Errorf("encoding settings: %w", err)
		}
		if merged, err = jsonpatch.MergePatch(merged, patch); err != nil {
			return phiguardv1alpha1.SafeguardSettings{}, nil, fmt.Errorf("merging settings: %w", err)
		}
	}
	var out phiguardv1alpha1.SafeguardSettings
	if err := json.Unmarshal(merged, &out); err != nil {
		return phiguardv1alpha1.SafeguardSettings{}, nil, fmt.Errorf("decoding merged settings: %w", err)
	}

	sources := make(map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.SettingSource, len(Order))
	for _, name := range Order {
		switch {
		case workload.Mode(name) != "":
			sources[name] = phiguardv1alpha1.SourceWorkload
		case policy != nil && policy.Spec.Defaults.Mode(name) != "":
			sources[name] = phiguardv1alpha1.SourcePolicy
		default:
			sources[name] = phiguardv1alpha1.SourceDefault
		}
	}
	// A mode below the PHIPolicy's minimum runs at the minimum. Admission
	// refuses new ones; this covers workloads older than the minimum.
	for name, minimum := range MinimumModes(policy) {
		if out.Mode(name).Strength() < minimum.Strength() {
			out.SetMode(name, minimum)
			sources[name] = phiguardv1alpha1.SourcePolicy
		}
	}
	return out, sources, nil
}

// MinimumModes returns the PHIPolicy's minimum mode per safeguard; empty
// without a policy.
func MinimumModes(policy *phiguardv1alpha1.PHIPolicy) map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.Mode {
	out := map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.Mode{}
	if policy != nil {
		for _, m := range policy.Spec.MinimumModes {
			out[m.Safeguard] = m.Mode
		}
	}
	return out
}

// Validate checks what the API's own validation cannot: that the backup
// schedule parses as a cron schedule the backup engine will accept. It returns
// a *StalledError naming the field.
func Validate(s *phiguardv1alpha1.SafeguardSettings) error {
	if s.Backup != nil && s.Backup.Schedule != "" {
		if _, err := cron.ParseStandard(s.Backup.Schedule); err != nil {
			return Stalled(phiguardv1alpha1.ReasonInvalidSchedule, "backup.schedule %q is not a valid cron schedule: %v", s.Backup.Schedule, err)
		}
	}
	return nil
}
