package fuzz

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"testing"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// FuzzSettings merges a workload's settings over a PHIPolicy (both decoded
// from the fuzz bytes as JSON; modes, minimum modes and the ruleset also set
// from the bits of choices) with Registry.Effective, and checks it against
// its definition, leaf by leaf of the settings' JSON:
//   - a field the workload sets has the workload's value; one it leaves
//     unset has the policy's default, or else the built-in default; nothing
//     else appears (lists count as one value, replaced as a whole);
//   - each safeguard's mode is the first set of workload, policy, built-in,
//     raised to the policy's minimum, and, under a ruleset that lets none be
//     off, from Off to Audit; its source says which of these it is;
//   - the merge is idempotent: merging the result again changes nothing.
func FuzzSettings(f *testing.F) {
	registry := safeguard.New(safeguard.Options{})
	modePaths := map[string]bool{}
	for _, name := range registry.Names() {
		modePaths[modePath(f, name)] = true
	}
	for _, s := range settingsSeeds {
		f.Add([]byte(s.workload), []byte(s.policy), s.choices)
	}
	f.Fuzz(func(t *testing.T, workloadJSON, policyJSON []byte, choices uint64) {
		var workload phiguardv1alpha1.SafeguardSettings
		if json.Unmarshal(workloadJSON, &workload) != nil {
			return
		}
		policy := &phiguardv1alpha1.PHIPolicy{}
		if json.Unmarshal(policyJSON, &policy.Spec) != nil {
			return
		}
		applyChoices(registry, &workload, policy, choices)
		if choices>>63 == 1 {
			policy = nil // no PHIPolicy
		}
		checkEffective(t, registry, modePaths, &workload, policy)
	})
}

// modeChoices are the modes two bits of choices pick; 0 keeps the JSON's.
var modeChoices = []phiguardv1alpha1.Mode{"", phiguardv1alpha1.ModeOff, phiguardv1alpha1.ModeAudit, phiguardv1alpha1.ModeEnforce}

// applyChoices sets, from six bits per safeguard, the workload's mode, the
// policy's default mode and the policy's minimum; bit 62 sets the ruleset
// that lets no safeguard be off.
func applyChoices(registry safeguard.Registry, w *phiguardv1alpha1.SafeguardSettings, p *phiguardv1alpha1.PHIPolicy, choices uint64) {
	for i, name := range registry.Names() {
		bits := choices >> (6 * i)
		if m := modeChoices[bits&3]; m != "" {
			w.SetMode(name, m)
		}
		if m := modeChoices[bits>>2&3]; m != "" {
			p.Spec.Defaults.SetMode(name, m)
		}
		if m := modeChoices[bits>>4&3]; m != "" {
			p.Spec.MinimumModes = append(p.Spec.MinimumModes, phiguardv1alpha1.MinimumMode{Safeguard: name, Mode: m})
		}
	}
	if choices>>62&1 == 1 {
		p.Spec.Ruleset = phiguardv1alpha1.RulesetProposedRule2025
	}
}

// checkEffective checks Effective for one workload and policy; modePaths are
// the JSON paths of the modes, which are checked apart.
func checkEffective(t *testing.T, registry safeguard.Registry, modePaths map[string]bool,
	workload *phiguardv1alpha1.SafeguardSettings, policy *phiguardv1alpha1.PHIPolicy) {
	t.Helper()
	in := fmt.Sprintf("workload %s, policy %s", asJSON(workload), asJSON(policy))
	effective, sources, err := registry.Effective(workload, policy)
	if err != nil {
		t.Fatalf("merging %s: %v", in, err)
	}
	var policyDefaults phiguardv1alpha1.SafeguardSettings
	if policy != nil {
		policyDefaults = policy.Spec.Defaults
	}
	builtIn := registry.Defaults()

	checkFields(t, in, modePaths, workload, &policyDefaults, &builtIn, &effective)
	checkModes(t, in, registry, workload, &policyDefaults, &builtIn, policy, &effective, sources)

	again, _, err := registry.Effective(&effective, policy)
	if err != nil {
		t.Fatalf("merging the merged settings of %s: %v", in, err)
	}
	if asJSON(again) != asJSON(effective) {
		t.Fatalf("merging is not idempotent for %s:\n once  %s\n twice %s", in, asJSON(effective), asJSON(again))
	}
}

// checkFields checks every merged field but the modes, by the layers' JSON
// leaves: the workload's over the policy's over the built-in defaults.
func checkFields(t *testing.T, in string, modePaths map[string]bool,
	workload, policyDefaults, builtIn, effective *phiguardv1alpha1.SafeguardSettings) {
	t.Helper()
	// Every field but the modes, by the layers' JSON leaves.
	layers := []map[string]string{leaves(t, workload), leaves(t, policyDefaults), leaves(t, builtIn)}
	want := map[string]string{}
	for _, layer := range layers {
		for path, v := range layer {
			if _, set := want[path]; !set && !coveredBy(path, want) {
				want[path] = v
			}
		}
	}
	got := leaves(t, effective)
	for path := range modePaths {
		delete(want, path)
		delete(got, path)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("merging %s:\n got  %s\n want %s", in, asJSON(sorted(got)), asJSON(sorted(want)))
	}
}

// checkModes checks each safeguard's mode and where it came from: the
// workload's over the policy's over the built-in one, raised to the policy's
// minimum, and Off run in Audit under a ruleset that lets none be off.
func checkModes(t *testing.T, in string, registry safeguard.Registry, workload, policyDefaults, builtIn *phiguardv1alpha1.SafeguardSettings,
	policy *phiguardv1alpha1.PHIPolicy, effective *phiguardv1alpha1.SafeguardSettings,
	sources map[phiguardv1alpha1.SafeguardName]phiguardv1alpha1.SettingSource) {
	t.Helper()
	// The modes.
	minimums := safeguard.MinimumModes(policy)
	for _, name := range registry.Names() {
		merged, source := builtIn.Mode(name), phiguardv1alpha1.SourceDefault
		switch {
		case workload.Mode(name) != "":
			merged, source = workload.Mode(name), phiguardv1alpha1.SourceWorkload
		case policyDefaults.Mode(name) != "":
			merged, source = policyDefaults.Mode(name), phiguardv1alpha1.SourcePolicy
		}
		mode := merged
		if minimum, ok := minimums[name]; ok && mode.Strength() < minimum.Strength() {
			mode = minimum
		}
		if policy.Ruleset() == phiguardv1alpha1.RulesetProposedRule2025 && mode == phiguardv1alpha1.ModeOff {
			mode = phiguardv1alpha1.ModeAudit
		}
		if mode != merged {
			source = phiguardv1alpha1.SourcePolicy
		}
		if effective.Mode(name) != mode || sources[name] != source {
			t.Fatalf("merging %s: %s runs in %q (source %s), want %q (source %s)", in, name, effective.Mode(name), sources[name], mode, source)
		}
		if minimum, ok := minimums[name]; ok && effective.Mode(name).Strength() < minimum.Strength() {
			t.Fatalf("merging %s: %s runs in %s, below the minimum %s", in, name, effective.Mode(name), minimum)
		}
	}
}

// leaves flattens settings' JSON into path -> value: objects are walked,
// anything else (lists included) is one value; nulls and empty objects are
// no value.
func leaves(t testing.TB, s *phiguardv1alpha1.SafeguardSettings) map[string]string {
	t.Helper()
	raw, err := json.Marshal(s)
	if err != nil {
		t.Fatalf("encoding settings: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("decoding settings: %v", err)
	}
	out := map[string]string{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch v := v.(type) {
		case nil:
		case map[string]any:
			for k, child := range v {
				walk(prefix+"/"+k, child)
			}
		default:
			out[prefix] = asJSON(v)
		}
	}
	walk("", doc)
	return out
}

// coveredBy says whether an ancestor of path holds a value in set: a list
// or scalar set higher up replaces whatever lies under it.
func coveredBy(path string, set map[string]string) bool {
	for i := len(path) - 1; i > 0; i-- {
		if path[i] == '/' {
			if _, ok := set[path[:i]]; ok {
				return true
			}
		}
	}
	return false
}

// modePath is the JSON path of a safeguard's mode.
func modePath(t testing.TB, name phiguardv1alpha1.SafeguardName) string {
	t.Helper()
	var s phiguardv1alpha1.SafeguardSettings
	s.SetMode(name, "probe")
	for path, v := range leaves(t, &s) {
		if v == `"probe"` {
			return path
		}
	}
	t.Fatalf("%s has no mode in SafeguardSettings", name)
	return ""
}

// sorted lists a map's entries in order, for messages.
func sorted(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// settingsSeeds are a workload's settings, a PHIPolicy's spec and choices.
var settingsSeeds = []struct {
	workload, policy string
	choices          uint64
}{
	{`{}`, `{}`, 0},
	{`{}`, `{}`, 1 << 63},
	// The workload narrows the network, the policy lists other allows: the
	// workload's list replaces the policy's.
	{`{"networkIsolation":{"mode":"Enforce","allowDNS":false,"ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"web"}}}],"ports":[{"protocol":"TCP","port":8080}]}]}}`,
		`{"defaults":{"networkIsolation":{"allowSameWorkload":false,"egress":[{"to":[{"ipBlock":{"cidr":"10.0.0.0/8"}}]}]}}}`, 0},
	// Backup and audit sidecar settings on both sides, the policy's minimums.
	{`{"backup":{"schedule":"@every 6h","rpo":"7h"},"auditLogging":{"mode":"Audit","sidecar":{"image":"registry.example/audit:1","args":["--json"]}}}`,
		`{"defaults":{"backup":{"mode":"Audit","ttl":"52560h","veleroNamespace":"backups","volumes":"FileSystem"},"auditLogging":{"logPath":"/var/log/app"}},"minimumModes":[{"safeguard":"AuditLogging","mode":"Enforce"},{"safeguard":"BackupScheduled","mode":"Enforce"}]}`, 0},
	// Off under a decision, a policy in Audit, and the proposed ruleset.
	{`{"encryptionAtRest":{"mode":"Off"},"transmissionSecurity":{"mode":"Off"},"accessControl":{"emergencyAccessGroups":["oncall"],"allowTokenAutomount":true}}`,
		`{"ruleset":"ProposedRule2025","defaults":{"integrity":{"mode":"Audit","requireImageDigest":false},"availability":{"minReplicas":3}}}`, 0},
	// Modes from the choices, for every safeguard: the workload in Audit
	// under a minimum of Enforce; the workload Off, the policy in Enforce,
	// a minimum of Audit; the workload Off under ProposedRule2025.
	{`{}`, `{}`, 0xcb2cb2cb2cb2},
	{`{}`, `{}`, 0xb6db6db6db6d},
	{`{}`, `{}`, 0x4000041041041041},
}
