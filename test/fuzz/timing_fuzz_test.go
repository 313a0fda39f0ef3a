package fuzz

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// The values phiguard parses from its API, each checked the same way: what
// the apiserver stores (the CRD's patterns and formats) and phiguard's
// webhook admits must be what phiguard and Velero can read, and must mean
// the same after a round trip; what phiguard refuses, it refuses with a
// message and the reason its status would carry.

// FuzzBackupSchedule fuzzes backup.schedule: one admitted is a schedule
// Velero's parser (robfig/cron's ParseStandard, as its schedule controller
// calls it) accepts, that runs at some time, and that the Velero Schedule
// phiguard generates carries unchanged.
func FuzzBackupSchedule(f *testing.F) {
	crd, validator := newTimingEnv(f)
	registry := safeguard.New(safeguard.Options{})
	for _, s := range []string{"0 2 * * *", "@daily", "@every 6h", "*/15 * * * *", "0 0 1 1 *", "30 3 * * MON-FRI",
		"0 0 29 2 *", "0 25 * * *", "@every 1h30m", "0 */4 * * ?", "0 2 * * * *", "@hourly"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, schedule string) {
		_, err := safeguard.BackupScheduling{}.ValidateSpec(&phiguardv1alpha1.SafeguardSettings{
			Backup: &phiguardv1alpha1.BackupSpec{Schedule: schedule}})
		if err != nil {
			// The webhook refuses it with this error, whatever the CRD says.
			checkRefusal(t, err, phiguardv1alpha1.ReasonInvalidSchedule, fmt.Sprintf("backup.schedule %q", schedule))
			return
		}
		w, ok := admitWorkloadJSON(context.Background(), t, crd, validator, workloadJSON(t, map[string]any{
			"backup": map[string]any{"schedule": schedule}}))
		if !ok {
			return
		}
		parsed, err := cron.ParseStandard(schedule)
		if err != nil {
			t.Fatalf("backup.schedule %q is admitted, but Velero cannot parse it: %v", schedule, err)
		}
		if next := parsed.Next(time.Unix(0, 0).UTC()); next.IsZero() {
			t.Fatalf("backup.schedule %q is admitted, but never runs: no backup would ever be taken", schedule)
		}
		settings, _, err := registry.Effective(&w.Spec.SafeguardSettings, nil)
		if err != nil {
			t.Fatalf("merging the settings of %s: %v", specJSON(w), err)
		}
		if got := safeguard.DesiredSchedule(w, settings.Backup).Spec.Schedule; got != schedule {
			t.Fatalf("backup.schedule %q becomes the Velero schedule %q", schedule, got)
		}
	})
}

// FuzzDuration fuzzes the durations of the API: a workload's backup.ttl and
// backup.rpo, and a PHIPolicy's backup.minimumTTL and decisions.maxLifetime.
// One the apiserver stores (and, for a workload, the webhook admits) decodes
// as phiguard's types decode it, and reads back as the same duration from
// what they write; a ttl or rpo phiguard refuses is refused with
// InvalidDuration.
func FuzzDuration(f *testing.F) {
	crd, validator := newTimingEnv(f)
	policyCRD, err := newCRDValidator("compliance.phiguard.io_phipolicies.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"52560h", "25h", "90m", "720h30m", "1.5h", "0s", "2160h", "8760h", "1h0m0.5s", "300ms", "1us", "10ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		ctx := context.Background()
		for _, field := range []string{"ttl", "rpo"} {
			where := fmt.Sprintf("backup.%s %q", field, value)
			var spec phiguardv1alpha1.BackupSpec
			if json.Unmarshal(asJSONValue(t, map[string]any{field: value}), &spec) == nil {
				_, err := safeguard.BackupScheduling{}.ValidateSpec(&phiguardv1alpha1.SafeguardSettings{Backup: &spec})
				checkRefusal(t, err, phiguardv1alpha1.ReasonInvalidDuration, where)
			}
			w, ok := admitWorkloadJSON(ctx, t, crd, validator, workloadJSON(t, map[string]any{"backup": map[string]any{field: value}}))
			if !ok {
				continue
			}
			d := w.Spec.Backup.TTL
			if field == "rpo" {
				d = w.Spec.Backup.RPO
			}
			checkRoundTrip(t, where, d.Duration)
		}
		for _, field := range [][]string{{"backup", "minimumTTL"}, {"decisions", "maxLifetime"}} {
			where := fmt.Sprintf("PHIPolicy spec.%s.%s %q", field[0], field[1], value)
			// No webhook guards the PHIPolicy: what the CRD admits, the
			// manager must read, or it can read no policy at all.
			p, ok := admitPolicy(ctx, t, policyCRD, field, value, where)
			if !ok {
				continue
			}
			d := p.MinimumBackupTTL()
			if field[0] == "decisions" {
				d = p.MaxDecisionLifetime()
			}
			checkRoundTrip(t, where, d)
		}
	})
}

// FuzzDecisionExpiry fuzzes a decision's expires: one admitted decodes as
// the instant it names, is judged against now as EvaluateDecision judges it
// (valid before, expired from then on), and reads the same after phiguard
// writes it back (whole seconds, UTC).
func FuzzDecisionExpiry(f *testing.F) {
	crd, validator := newTimingEnv(f)
	registry := safeguard.New(safeguard.Options{})
	for _, s := range []string{"2030-06-01T00:00:00Z", "2030-01-15T09:00:00Z", "2030-01-15T08:59:59.999Z", "2030-03-01T12:30:00+02:00",
		"2030-12-31T23:59:59-05:00", "2029-12-31T00:00:00Z", "2030-06-01t00:00:00z", "2030-06-01T00:00:00", "2030-06-01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expires string) {
		ctx := context.Background()
		raw := workloadJSON(t, map[string]any{
			"encryptionAtRest": map[string]any{"mode": "Off"},
			"decisions": []any{map[string]any{"safeguard": "EncryptedAtRest", "kind": "NotReasonable", "approvedBy": "security-officer@clinic.example",
				"justification": "the volumes hold only derived, de-identified data", "expires": expires}},
		})
		w, ok := admitWorkloadJSON(ctx, t, crd, validator, raw)
		if !ok {
			return
		}
		d := w.Spec.Decision(phiguardv1alpha1.EncryptedAtRest)
		where := fmt.Sprintf("expires %q", expires)
		r := safeguard.EvaluateDecision(phiguardv1alpha1.EncryptedAtRest, registry.Get(phiguardv1alpha1.EncryptedAtRest).Rule(), d, now)
		valid := now.Before(d.Expires.Time)
		switch {
		case r.Message == "":
			t.Fatalf("%s: the decision's result has no message", where)
		case valid && (r.Status != metav1.ConditionTrue || r.RequeueAfter <= 0):
			t.Fatalf("%s: a decision valid until %s is judged %s (%s), requeued after %s", where, d.Expires.UTC(), r.Status, r.Reason, r.RequeueAfter)
		case !valid && (r.Status != metav1.ConditionFalse || r.Reason != phiguardv1alpha1.ReasonDecisionExpired):
			t.Fatalf("%s: a decision expired at %s is judged %s (%s)", where, d.Expires.UTC(), r.Status, r.Reason)
		}

		written, err := json.Marshal(d.Expires)
		if err != nil {
			t.Fatalf("%s: encoding: %v", where, err)
		}
		var again metav1.Time
		if err := json.Unmarshal(written, &again); err != nil {
			t.Fatalf("%s: phiguard writes %s, which it cannot read: %v", where, written, err)
		}
		if !again.Equal(&metav1.Time{Time: d.Expires.Truncate(time.Second)}) {
			t.Fatalf("%s: reads back as %s, not %s", where, again.UTC(), d.Expires.UTC())
		}
	})
}

// newTimingEnv is what the timing targets admit workloads with: the
// PHIWorkload CRD and webhook, in a cluster without a PHIPolicy.
func newTimingEnv(f *testing.F) (*crdValidator, *workloadValidator) {
	crd, err := newCRDValidator("compliance.phiguard.io_phiworkloads.yaml")
	if err != nil {
		f.Fatal(err)
	}
	validator, err := newWorkloadValidator(safeguard.New(safeguard.Options{}))
	if err != nil {
		f.Fatal(err)
	}
	return crd, validator
}

// workloadJSON is a PHIWorkload selecting app=records in clinic with the
// given spec fields, as a client sends it.
func workloadJSON(t *testing.T, spec map[string]any) []byte {
	t.Helper()
	spec["selector"] = map[string]any{"matchLabels": map[string]any{"app": "records"}}
	raw, err := json.Marshal(map[string]any{
		"apiVersion": phiguardv1alpha1.GroupVersion.String(), "kind": "PHIWorkload",
		"metadata": map[string]any{"name": "records", "namespace": "clinic"},
		"spec":     spec,
	})
	if err != nil {
		t.Fatalf("encoding a PHIWorkload: %v", err)
	}
	return raw
}

// admitPolicy returns the PHIPolicy named default with spec.<field> set to
// value as the manager decodes it, if the apiserver stores it.
func admitPolicy(ctx context.Context, t *testing.T, crd *crdValidator, field []string, value, where string) (*phiguardv1alpha1.PHIPolicy, bool) {
	t.Helper()
	raw, err := json.Marshal(map[string]any{
		"apiVersion": phiguardv1alpha1.GroupVersion.String(), "kind": "PHIPolicy",
		"metadata": map[string]any{"name": phiguardv1alpha1.DefaultPolicyName},
		"spec":     map[string]any{field[0]: map[string]any{field[1]: value}},
	})
	if err != nil {
		t.Fatalf("encoding a PHIPolicy: %v", err)
	}
	u, err := crd.admit(ctx, raw)
	if err != nil {
		return nil, false
	}
	p := &phiguardv1alpha1.PHIPolicy{}
	if err := decodeStored(u, p); err != nil {
		t.Fatalf("%s: the apiserver stores the PHIPolicy, but the manager cannot decode it (and so reads no policy): %v", where, err)
	}
	return p, true
}

// asJSONValue encodes v.
func asJSONValue(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encoding %v: %v", v, err)
	}
	return raw
}

// checkRefusal checks that an error from a SpecValidator carries a message
// and the Stalled reason the reconciler reports it with.
func checkRefusal(t *testing.T, err error, reason, where string) {
	t.Helper()
	if err == nil {
		return
	}
	if s := safeguard.AsStalled(err); s == nil || s.Reason != reason || err.Error() == "" {
		t.Fatalf("%s is refused with %v (%T), want a message and reason %s", where, err, err, reason)
	}
}

// checkRoundTrip checks that a duration reads back as itself from what
// phiguard's types write (metav1.Duration's JSON, its canonical form).
func checkRoundTrip(t *testing.T, where string, d time.Duration) {
	t.Helper()
	raw, err := json.Marshal(metav1.Duration{Duration: d})
	if err != nil {
		t.Fatalf("%s: encoding %s: %v", where, d, err)
	}
	var again metav1.Duration
	if err := json.Unmarshal(raw, &again); err != nil {
		t.Fatalf("%s reads as %s, written as %s, which cannot be read: %v", where, d, raw, err)
	}
	if again.Duration != d {
		t.Fatalf("%s reads as %s, written as %s, which reads as %s", where, d, raw, again.Duration)
	}
}
