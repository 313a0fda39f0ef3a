package safeguard

import (
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Effective merges settings field by field: the workload's own win over the
// policy's, which win over the built-in defaults. policy may be nil. A mode
// below the policy's minimum runs at the minimum, and under the policy's
// ruleset ProposedRule2025 an Off runs in Audit (the policy is then its
// source). It also returns where each safeguard's mode came from.
func (r Registry) Effective(workload *phiguardv1alpha1.SafeguardSettings, policy *phiguardv1alpha1.PHIPolicy) (
	phiguardv1alpha1.SafeguardSettings, map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.SettingSource, error) {
	out, err := r.merge(workload, policy)
	if err != nil {
		return phiguardv1alpha1.SafeguardSettings{}, nil, err
	}

	sources := make(map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.SettingSource, len(r))
	for _, name := range r.Names() {
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
	// Under a ruleset that lets no safeguard be off (ProposedRule2025), Off
	// runs in Audit: the decision behind it does not count, and the
	// safeguard is judged (OffNotRecognised, DecisionNotRecognised).
	// Admission refuses new ones; this covers workloads admitted before.
	if ForbidsOff(policy.Ruleset()) {
		for _, name := range r.Names() {
			if out.Mode(name) == phiguardv1alpha1.ModeOff {
				out.SetMode(name, phiguardv1alpha1.ModeAudit)
				sources[name] = phiguardv1alpha1.SourcePolicy
			}
		}
	}
	return out, sources, nil
}

// merge merges the workload's settings over the policy's defaults (when
// there is a policy) over the built-in defaults.
func (r Registry) merge(workload *phiguardv1alpha1.SafeguardSettings, policy *phiguardv1alpha1.PHIPolicy) (
	phiguardv1alpha1.SafeguardSettings, error) {
	// A layer that sets nothing is the merge patch {}, which changes nothing:
	// most workloads and policies set nothing, and are not encoded.
	layers := make([]*phiguardv1alpha1.SafeguardSettings, 0, 2)
	if !setsNothing(workload) {
		layers = append(layers, workload)
	}
	if policy != nil && !setsNothing(&policy.Spec.Defaults) {
		layers = append(layers, &policy.Spec.Defaults)
	}
	if len(layers) == 0 {
		// Nothing to merge: the built-in defaults, a value of its own on each
		// call, which is what their JSON round trip decodes to
		// (TestMergeSkipsLayersThatSetNothing).
		return r.Defaults(), nil
	}
	return r.mergeJSON(layers)
}

// setsNothing says whether settings are there and set no safeguard's block.
func setsNothing(s *phiguardv1alpha1.SafeguardSettings) bool {
	return s != nil && *s == (phiguardv1alpha1.SafeguardSettings{})
}

// mergeJSON merges layers, the top one first, over the built-in defaults.
func (r Registry) mergeJSON(layers []*phiguardv1alpha1.SafeguardSettings) (phiguardv1alpha1.SafeguardSettings, error) {
	// A JSON merge patch (RFC 7386) of each layer onto the one below is exactly a
	// field-by-field merge: every field is optional and omitted when unset.
	merged, err := json.Marshal(r.Defaults())
	if err != nil {
		return phiguardv1alpha1.SafeguardSettings{}, fmt.Errorf("encoding built-in defaults: %w", err)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		patch, err := json.Marshal(layers[i])
		if err != nil {
			return phiguardv1alpha1.SafeguardSettings{}, fmt.Errorf("encoding settings: %w", err)
		}
		if merged, err = jsonpatch.MergePatch(merged, patch); err != nil {
			return phiguardv1alpha1.SafeguardSettings{}, fmt.Errorf("merging settings: %w", err)
		}
	}
	var out phiguardv1alpha1.SafeguardSettings
	if err := json.Unmarshal(merged, &out); err != nil {
		return phiguardv1alpha1.SafeguardSettings{}, fmt.Errorf("decoding merged settings: %w", err)
	}
	return out, nil
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
