package evidence_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/phiguard/phiguard/internal/evidence"
)

// oscalSchemaFile is NIST's JSON schema of OSCAL 1.0.6 assessment results.
const oscalSchemaFile = "testdata/oscal/oscal_assessment-results_schema_v1.0.6.json"

// oscalSchema compiles NIST's schema. Go's regexp engine, the library's
// default, knows the \p{L} and \p{N} classes of the schema's token pattern;
// draft-07 asserts formats (date-time, uri) by default.
//
// NIST's generator writes "$id" beside "$ref" (the definition of a data type
// names itself and refers to the type), which draft-07 forbids: a "$ref"
// hides its siblings, so the library finds none of those ids. The schema is
// read as NIST means it: each such "$ref" moves into an "allOf" of its own.
func oscalSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := os.ReadFile(filepath.FromSlash(oscalSchemaFile))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	oscalUnhideIDs(doc)
	c := jsonschema.NewCompiler()
	if err := c.AddResource("oscal-ar-schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("oscal-ar-schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// oscalUnhideIDs moves every "$ref" that has siblings into an "allOf", so
// that draft-07 sees the siblings.
func oscalUnhideIDs(v any) {
	switch v := v.(type) {
	case map[string]any:
		for _, child := range v {
			oscalUnhideIDs(child)
		}
		if ref, ok := v["$ref"]; ok && len(v) > 1 {
			delete(v, "$ref")
			v["allOf"] = append([]any{map[string]any{"$ref": ref}}, oscalAsList(v["allOf"])...)
		}
	case []any:
		for _, child := range v {
			oscalUnhideIDs(child)
		}
	}
}

func oscalAsList(v any) []any {
	list, _ := v.([]any)
	return list
}

// oscalValidate validates a JSON document against the schema.
func oscalValidate(t *testing.T, sch *jsonschema.Schema, raw []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return sch.Validate(inst)
}

var (
	oscalT0      = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	oscalIntake  = &evidence.Workload{Namespace: "clinic", Name: "intake", UID: "uid-intake", Generation: 3}
	oscalBilling = &evidence.Workload{Namespace: "clinic", Name: "billing", UID: "uid-billing", Generation: 1}
)

// oscalOptions are the options of the tests' export.
func oscalOptions() evidence.OSCALOptions {
	return evidence.OSCALOptions{
		From:      oscalT0,
		To:        oscalT0.Add(24 * time.Hour),
		Cluster:   "cluster-uid-1",
		Generated: oscalT0.Add(25 * time.Hour),
		Version:   "v0.4.0",
	}
}

// oscalChain seals records into one shard's chain: numbered from 1, each
// holding the hash of the one before.
func oscalChain(t *testing.T, records ...evidence.Record) []evidence.Record {
	t.Helper()
	prev := ""
	for i := range records {
		r := &records[i]
		r.Schema, r.Seq, r.Cluster, r.Shard, r.Prev = evidence.SchemaVersion, uint64(i+1), "cluster-uid-1", "controller", prev
		h, err := r.ComputeHash()
		if err != nil {
			t.Fatal(err)
		}
		r.Hash, prev = h, h
	}
	return records
}

// oscalRecords are records of every kind the export maps differently. In
// the window, intake's NetworkIsolated fails and recovers; its AuditLogging
// fails; its Available is Unknown; a PVC is denied before EncryptedAtRest's
// first result; billing's BackupScheduled is off under a decision, and its
// attestation shows IntegrityProtected failing.
func oscalRecords(t *testing.T) []evidence.Record {
	at := func(minutes int) time.Time { return oscalT0.Add(time.Duration(minutes) * time.Minute) }
	return oscalChain(t,
		evidence.Record{ // 1
			Time: at(1), Kind: evidence.KindResult, Workload: oscalIntake, Safeguard: "NetworkIsolated",
			Section: "§164.312(e)(1)", Mode: "Enforce", Result: "False", Reason: "PodsNotIsolated",
			Message: "1 of 1 selected pods is covered by no deny-all NetworkPolicy: intake-1",
			Objects: []evidence.Object{{APIVersion: "v1", Kind: "Pod", Namespace: "clinic", Name: "intake-1", UID: "uid-pod"}},
		},
		evidence.Record{ // 2
			Time: at(2), Kind: evidence.KindAction, Workload: oscalIntake, Safeguard: "NetworkIsolated",
			Section: "§164.312(e)(1)", Mode: "Enforce", Result: "PolicyCreated", Reason: "PolicyCreated",
			Message: "created NetworkPolicy phiguard-intake",
			Objects: []evidence.Object{{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy", Namespace: "clinic", Name: "phiguard-intake"}},
		},
		evidence.Record{ // 3
			Time: at(3), Kind: evidence.KindResult, Workload: oscalIntake, Safeguard: "NetworkIsolated",
			Section: "§164.312(e)(1)", Mode: "Enforce", Result: "True", Reason: "PodsIsolated",
			Message: "1 of 1 selected pods is isolated",
		},
		evidence.Record{ // 4
			Time: at(4), Kind: evidence.KindResult, Workload: oscalIntake, Safeguard: "AuditLogging",
			Section: "§164.312(b)", Mode: "Audit", Result: "False", Reason: "SidecarMissing",
			Message: "1 of 1 selected pods runs without the audit sidecar:\nintake-1",
		},
		evidence.Record{ // 5
			Time: at(5), Kind: evidence.KindAdmission, Workload: oscalIntake, Safeguard: "EncryptedAtRest",
			Section: "§164.312(a)(2)(iv)", Mode: "Enforce", Result: "Denied", Reason: "StorageClassNotEncrypted",
			Message: "PersistentVolumeClaim data uses StorageClass standard, which does not encrypt", Actor: "alice@example.com",
			Objects: []evidence.Object{{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: "clinic", Name: "data"}},
		},
		evidence.Record{ // 6
			Time: at(6), Kind: evidence.KindResult, Workload: oscalIntake, Safeguard: "Available",
			Section: "§164.308(a)(7)(ii)(C)", Mode: "Audit", Result: "Unknown", Reason: "NoPodsSelected",
			Message: "the selector matches no pod",
		},
		evidence.Record{ // 7
			Time: at(7), Kind: evidence.KindDecision, Workload: oscalBilling, Safeguard: "BackupScheduled",
			Section: "§164.308(a)(7)(ii)(A)", Mode: "Off", Result: "Added", Reason: "Alternative",
			Message: "backups are taken by the database operator", Actor: "bob@example.com",
		},
		evidence.Record{ // 8
			Time: at(8), Kind: evidence.KindAttestation, Workload: oscalBilling, Result: "NonCompliant",
			Message: "billing: 1 of 2 safeguards hold",
			Safeguards: []evidence.SafeguardResult{
				{Safeguard: "BackupScheduled", Section: "§164.308(a)(7)(ii)(A)", Mode: "Off", Result: "True", Reason: "DocumentedDecision"},
				{Safeguard: "IntegrityProtected", Section: "§164.312(c)(1)", Mode: "Audit", Result: "False", Reason: "ImageNotPinned", Message: "image app:1 is not pinned by digest"},
			},
		},
		evidence.Record{ // 9
			Time: at(9), Kind: evidence.KindAttestation, Workload: oscalIntake, Result: "NonCompliant",
			Message: "intake: 2 of 4 safeguards hold",
			Safeguards: []evidence.SafeguardResult{
				{Safeguard: "NetworkIsolated", Section: "§164.312(e)(1)", Mode: "Enforce", Result: "True", Reason: "PodsIsolated"},
				{Safeguard: "AuditLogging", Section: "§164.312(b)", Mode: "Audit", Result: "False", Reason: "SidecarMissing"},
				{Safeguard: "EncryptedAtRest", Section: "§164.312(a)(2)(iv)", Mode: "Enforce", Result: "True", Reason: "ClaimsEncrypted"},
				{Safeguard: "Available", Section: "§164.308(a)(7)(ii)(C)", Mode: "Audit", Result: "Unknown", Reason: "NoPodsSelected"},
			},
		},
	)
}

// The parts of the document the tests read.
type (
	oscalTestProp struct {
		Name  string `json:"name"`
		NS    string `json:"ns"`
		Value string `json:"value"`
	}
	oscalTestObservation struct {
		UUID      string          `json:"uuid"`
		Methods   []string        `json:"methods"`
		Types     []string        `json:"types"`
		Props     []oscalTestProp `json:"props"`
		Collected string          `json:"collected"`
		Subjects  []struct {
			SubjectUUID string `json:"subject-uuid"`
			Title       string `json:"title"`
		} `json:"subjects"`
	}
	oscalTestFinding struct {
		UUID        string          `json:"uuid"`
		Description string          `json:"description"`
		Props       []oscalTestProp `json:"props"`
		Target      struct {
			Type     string `json:"type"`
			TargetID string `json:"target-id"`
			Status   struct {
				State  string `json:"state"`
				Reason string `json:"reason"`
			} `json:"status"`
		} `json:"target"`
		RelatedObservations []struct {
			ObservationUUID string `json:"observation-uuid"`
		} `json:"related-observations"`
	}
	oscalTestResult struct {
		Start            string `json:"start"`
		End              string `json:"end"`
		ReviewedControls struct {
			ControlSelections []struct {
				Props           []oscalTestProp `json:"props"`
				IncludeControls []struct {
					ControlID string `json:"control-id"`
				} `json:"include-controls"`
			} `json:"control-selections"`
			ControlObjectiveSelections []struct {
				IncludeObjectives []struct {
					ObjectiveID string `json:"objective-id"`
				} `json:"include-objectives"`
			} `json:"control-objective-selections"`
		} `json:"reviewed-controls"`
		LocalDefinitions struct {
			InventoryItems []struct {
				UUID        string `json:"uuid"`
				Description string `json:"description"`
			} `json:"inventory-items"`
		} `json:"local-definitions"`
		Observations []oscalTestObservation `json:"observations"`
		Findings     []oscalTestFinding     `json:"findings"`
	}
	oscalTestDocument struct {
		AssessmentResults struct {
			UUID     string `json:"uuid"`
			Metadata struct {
				Title        string `json:"title"`
				LastModified string `json:"last-modified"`
				Version      string `json:"version"`
				OSCALVersion string `json:"oscal-version"`
			} `json:"metadata"`
			ImportAP struct {
				Href string `json:"href"`
			} `json:"import-ap"`
			Results    []oscalTestResult `json:"results"`
			BackMatter struct {
				Resources []struct {
					UUID string `json:"uuid"`
				} `json:"resources"`
			} `json:"back-matter"`
		} `json:"assessment-results"`
	}
)

func oscalDecode(t *testing.T, raw []byte) oscalTestDocument {
	t.Helper()
	var doc oscalTestDocument
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

// oscalPropValue returns the value of the phiguard prop name, or "".
func oscalPropValue(props []oscalTestProp, name string) string {
	for _, p := range props {
		if p.Name == name && p.NS == evidence.OSCALPropNamespace {
			return p.Value
		}
	}
	return ""
}

func TestOSCALValidatesAgainstTheSchema(t *testing.T) {
	g := NewWithT(t)
	sch := oscalSchema(t)

	raw, err := evidence.OSCAL(oscalRecords(t), oscalOptions())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(oscalValidate(t, sch, raw)).To(Succeed())

	doc := oscalDecode(t, raw).AssessmentResults
	g.Expect(doc.Metadata.Title).To(Equal("phiguard evidence"))
	g.Expect(doc.Metadata.LastModified).To(Equal("2026-03-02T10:00:00Z"))
	g.Expect(doc.Metadata.Version).To(Equal("v0.4.0"))
	g.Expect(doc.Metadata.OSCALVersion).To(Equal("1.0.6"))
	g.Expect(doc.BackMatter.Resources).To(HaveLen(1))
	g.Expect(doc.ImportAP.Href).To(Equal("#"+doc.BackMatter.Resources[0].UUID), "import-ap resolves within the document")
	g.Expect(doc.Results).To(HaveLen(1))
	res := doc.Results[0]
	g.Expect(res.Start).To(Equal("2026-03-01T09:00:00Z"))
	g.Expect(res.End).To(Equal("2026-03-02T09:00:00Z"))

	controls := make([]string, 0, len(res.ReviewedControls.ControlSelections))
	sections := make([]string, 0, len(res.ReviewedControls.ControlSelections))
	for _, sel := range res.ReviewedControls.ControlSelections {
		g.Expect(sel.IncludeControls).To(HaveLen(1))
		controls = append(controls, sel.IncludeControls[0].ControlID)
		sections = append(sections, oscalPropValue(sel.Props, "section"))
	}
	g.Expect(controls).To(Equal([]string{
		"hipaa-164.308.a.7.ii.a", "hipaa-164.308.a.7.ii.c", "hipaa-164.312.a.2.iv",
		"hipaa-164.312.b", "hipaa-164.312.c.1", "hipaa-164.312.e.1",
	}))
	g.Expect(sections).To(Equal([]string{
		"§164.308(a)(7)(ii)(A)", "§164.308(a)(7)(ii)(C)", "§164.312(a)(2)(iv)",
		"§164.312(b)", "§164.312(c)(1)", "§164.312(e)(1)",
	}))
	g.Expect(res.ReviewedControls.ControlObjectiveSelections).To(HaveLen(1))
	objectives := make([]string, 0, len(res.ReviewedControls.ControlObjectiveSelections[0].IncludeObjectives))
	for _, o := range res.ReviewedControls.ControlObjectiveSelections[0].IncludeObjectives {
		objectives = append(objectives, o.ObjectiveID)
	}
	g.Expect(objectives).To(Equal([]string{
		"hipaa-164.308.a.7.ii.a_obj", "hipaa-164.308.a.7.ii.c_obj", "hipaa-164.312.a.2.iv_obj",
		"hipaa-164.312.b_obj", "hipaa-164.312.c.1_obj", "hipaa-164.312.e.1_obj",
	}))

	// One observation per record, in the records' order, naming its record.
	records := oscalRecords(t)
	g.Expect(res.Observations).To(HaveLen(len(records)))
	items := map[string]string{}
	for _, it := range res.LocalDefinitions.InventoryItems {
		items[it.UUID] = it.Description
	}
	g.Expect(items).To(HaveLen(5), "2 workloads, a pod, a NetworkPolicy and a PVC")
	for i, o := range res.Observations {
		r := records[i]
		g.Expect(oscalPropValue(o.Props, "hash")).To(Equal(r.Hash))
		g.Expect(oscalPropValue(o.Props, "kind")).To(Equal(string(r.Kind)))
		g.Expect(oscalPropValue(o.Props, "result")).To(Equal(r.Result))
		g.Expect(oscalPropValue(o.Props, "workload")).To(Equal(r.Workload.Namespace + "/" + r.Workload.Name))
		g.Expect(o.Collected).To(Equal(r.Time.Format(time.RFC3339)))
		method := "EXAMINE"
		if r.Kind == evidence.KindAdmission {
			method = "TEST"
		}
		g.Expect(o.Methods).To(Equal([]string{method}), "record %d", i+1)
		want := make([]string, 0, 1+len(r.Objects))
		want = append(want, "PHIWorkload "+r.Workload.Namespace+"/"+r.Workload.Name)
		for _, obj := range r.Objects {
			want = append(want, obj.Kind+" "+obj.Namespace+"/"+obj.Name)
		}
		got := make([]string, 0, len(o.Subjects))
		for _, s := range o.Subjects {
			g.Expect(items).To(HaveKeyWithValue(s.SubjectUUID, s.Title), "a subject is an inventory item")
			got = append(got, s.Title)
		}
		g.Expect(got).To(Equal(want), "record %d", i+1)
	}
	g.Expect(oscalPropValue(res.Observations[4].Props, "actor")).To(Equal("alice@example.com"))
	g.Expect(res.Observations[0].Types).To(Equal([]string{"control-objective", "finding"}))
	g.Expect(res.Observations[1].Types).To(Equal([]string{"mitigation"}))
	g.Expect(res.Observations[2].Types).To(Equal([]string{"control-objective"}))
}

func TestOSCALSchemaRejectsInvalidDocuments(t *testing.T) {
	sch := oscalSchema(t)
	raw, err := evidence.OSCAL(oscalRecords(t), oscalOptions())
	if err != nil {
		t.Fatal(err)
	}
	result := func(doc map[string]any) map[string]any {
		return doc["assessment-results"].(map[string]any)["results"].([]any)[0].(map[string]any)
	}
	for name, breakIt := range map[string]func(doc map[string]any){
		"unchanged": func(map[string]any) {},
		"no metadata": func(doc map[string]any) {
			delete(doc["assessment-results"].(map[string]any), "metadata")
		},
		"a control-id that is not a token": func(doc map[string]any) {
			sel := result(doc)["reviewed-controls"].(map[string]any)["control-selections"].([]any)[0].(map[string]any)
			sel["include-controls"].([]any)[0].(map[string]any)["control-id"] = "164.312(b)"
		},
		"a version 1 UUID": func(doc map[string]any) {
			result(doc)["observations"].([]any)[0].(map[string]any)["uuid"] = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
		},
		"a prop value with a leading space": func(doc map[string]any) {
			result(doc)["observations"].([]any)[0].(map[string]any)["props"].([]any)[0].(map[string]any)["value"] = " Result"
		},
		"a time without zone": func(doc map[string]any) {
			result(doc)["start"] = "2026-03-01T09:00:00"
		},
		"a finding state OSCAL does not know": func(doc map[string]any) {
			f := result(doc)["findings"].([]any)[0].(map[string]any)
			f["target"].(map[string]any)["status"].(map[string]any)["state"] = "failed"
		},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			var doc map[string]any
			g.Expect(json.Unmarshal(raw, &doc)).To(Succeed())
			breakIt(doc)
			broken, err := json.Marshal(doc)
			g.Expect(err).NotTo(HaveOccurred())
			if name == "unchanged" {
				g.Expect(oscalValidate(t, sch, broken)).To(Succeed())
				return
			}
			g.Expect(oscalValidate(t, sch, broken)).To(HaveOccurred())
		})
	}
}

// oscalFindingSummary is what a finding determines, with its related
// observations as the seq of the records they come from.
type oscalFindingSummary struct {
	Workload, Safeguard, TargetID, State, Reason string
	Related                                      []string
	Description                                  string
}

func oscalFindings(t *testing.T, raw []byte) []oscalFindingSummary {
	t.Helper()
	res := oscalDecode(t, raw).AssessmentResults.Results[0]
	seqOf := map[string]string{}
	for _, o := range res.Observations {
		seqOf[o.UUID] = oscalPropValue(o.Props, "seq")
	}
	out := make([]oscalFindingSummary, 0, len(res.Findings))
	for _, f := range res.Findings {
		s := oscalFindingSummary{
			Workload: oscalPropValue(f.Props, "workload"), Safeguard: oscalPropValue(f.Props, "safeguard"),
			TargetID: f.Target.TargetID, State: f.Target.Status.State, Reason: f.Target.Status.Reason,
			Description: f.Description,
		}
		if f.Target.Type != "objective-id" {
			t.Fatalf("finding %s targets a %q", f.UUID, f.Target.Type)
		}
		for _, r := range f.RelatedObservations {
			seq, ok := seqOf[r.ObservationUUID]
			if !ok {
				t.Fatalf("finding %s relates to observation %s, which the result does not hold", f.UUID, r.ObservationUUID)
			}
			s.Related = append(s.Related, seq)
		}
		out = append(out, s)
	}
	return out
}

func TestOSCALFindingsStateEachSafeguardsLastResult(t *testing.T) {
	g := NewWithT(t)
	raw, err := evidence.OSCAL(oscalRecords(t), oscalOptions())
	g.Expect(err).NotTo(HaveOccurred())

	g.Expect(oscalFindings(t, raw)).To(Equal([]oscalFindingSummary{
		// Off under a decision: satisfied; the decision before the
		// attestation supports it.
		{"clinic/billing", "BackupScheduled", "hipaa-164.308.a.7.ii.a_obj", "satisfied", "pass", []string{"7", "8"},
			"BackupScheduled (§164.308(a)(7)(ii)(A)) of PHIWorkload clinic/billing holds: its last result in the window, at 2026-03-01T09:08:00Z, is True (DocumentedDecision)"},
		// Failing in the attestation only.
		{"clinic/billing", "IntegrityProtected", "hipaa-164.312.c.1_obj", "not-satisfied", "fail", []string{"8"},
			"IntegrityProtected (§164.312(c)(1)) of PHIWorkload clinic/billing does not hold: its last result in the window, at 2026-03-01T09:08:00Z, is False (ImageNotPinned): image app:1 is not pinned by digest"},
		// Failing since record 4, restated by the attestation.
		{"clinic/intake", "AuditLogging", "hipaa-164.312.b_obj", "not-satisfied", "fail", []string{"4", "9"},
			"AuditLogging (§164.312(b)) of PHIWorkload clinic/intake does not hold: its last result in the window, at 2026-03-01T09:09:00Z, is False (SidecarMissing): 1 of 1 selected pods runs without the audit sidecar:\nintake-1"},
		// Unknown is not satisfied either, for another reason.
		{"clinic/intake", "Available", "hipaa-164.308.a.7.ii.c_obj", "not-satisfied", "other", []string{"6", "9"},
			"Available (§164.308(a)(7)(ii)(C)) of PHIWorkload clinic/intake could not be evaluated: its last result in the window, at 2026-03-01T09:09:00Z, is Unknown (NoPodsSelected): the selector matches no pod"},
		// The denial came before the first result.
		{"clinic/intake", "EncryptedAtRest", "hipaa-164.312.a.2.iv_obj", "satisfied", "pass", []string{"5", "9"},
			"EncryptedAtRest (§164.312(a)(2)(iv)) of PHIWorkload clinic/intake holds: its last result in the window, at 2026-03-01T09:09:00Z, is True (ClaimsEncrypted)"},
		// Recovered: satisfied since record 3; the failure and the action
		// that fixed it no longer support the finding.
		{"clinic/intake", "NetworkIsolated", "hipaa-164.312.e.1_obj", "satisfied", "pass", []string{"3", "9"},
			"NetworkIsolated (§164.312(e)(1)) of PHIWorkload clinic/intake holds: its last result in the window, at 2026-03-01T09:09:00Z, is True (PodsIsolated): 1 of 1 selected pods is isolated"},
	}))
}

func TestOSCALFindingFollowsTheLastResultOnly(t *testing.T) {
	records := oscalRecords(t)
	for _, tc := range []struct {
		name    string
		records []evidence.Record
		want    []oscalFindingSummary
	}{{
		name:    "failing",
		records: records[:2],
		want: []oscalFindingSummary{{"clinic/intake", "NetworkIsolated", "hipaa-164.312.e.1_obj", "not-satisfied", "fail", []string{"1", "2"},
			"NetworkIsolated (§164.312(e)(1)) of PHIWorkload clinic/intake does not hold: its last result in the window, at 2026-03-01T09:01:00Z, is False (PodsNotIsolated): 1 of 1 selected pods is covered by no deny-all NetworkPolicy: intake-1"}},
	}, {
		name:    "recovered later in the window",
		records: records[:3],
		want: []oscalFindingSummary{{"clinic/intake", "NetworkIsolated", "hipaa-164.312.e.1_obj", "satisfied", "pass", []string{"3"},
			"NetworkIsolated (§164.312(e)(1)) of PHIWorkload clinic/intake holds: its last result in the window, at 2026-03-01T09:03:00Z, is True (PodsIsolated): 1 of 1 selected pods is isolated"}},
	}, {
		name:    "no result, only a denial",
		records: records[4:5],
		want:    []oscalFindingSummary{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			raw, err := evidence.OSCAL(tc.records, oscalOptions())
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(oscalValidate(t, oscalSchema(t), raw)).To(Succeed())
			g.Expect(oscalFindings(t, raw)).To(Equal(tc.want))
		})
	}
}

func TestOSCALIsReproducible(t *testing.T) {
	g := NewWithT(t)
	records := oscalRecords(t)
	first, err := evidence.OSCAL(records, oscalOptions())
	g.Expect(err).NotTo(HaveOccurred())

	again, err := evidence.OSCAL(oscalRecords(t), oscalOptions())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(again).To(Equal(first), "same records, same bytes")

	shuffled := slices.Clone(records)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	g.Expect(shuffled).NotTo(Equal(records))
	fromShuffled, err := evidence.OSCAL(append(shuffled, shuffled[0]), oscalOptions())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(fromShuffled).To(Equal(first), "the records' order and a duplicate do not matter")

	// Another export time is another revision of the document: its UUID
	// changes, the result's and the observations' do not.
	o := oscalOptions()
	o.Generated = o.Generated.Add(time.Hour)
	later, err := evidence.OSCAL(records, o)
	g.Expect(err).NotTo(HaveOccurred())
	a, b := oscalDecode(t, first).AssessmentResults, oscalDecode(t, later).AssessmentResults
	g.Expect(b.UUID).NotTo(Equal(a.UUID))
	g.Expect(b.Metadata.LastModified).To(Equal("2026-03-02T11:00:00Z"))
	g.Expect(b.Results[0].Observations).To(Equal(a.Results[0].Observations))
	g.Expect(b.Results[0].Findings).To(Equal(a.Results[0].Findings))
}

func TestOSCALWithoutRecordsIsValid(t *testing.T) {
	g := NewWithT(t)
	raw, err := evidence.OSCAL(nil, evidence.OSCALOptions{Title: "March", Cluster: "cluster-uid-1", Generated: oscalT0})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(oscalValidate(t, oscalSchema(t), raw)).To(Succeed())
	doc := oscalDecode(t, raw).AssessmentResults
	g.Expect(doc.Metadata.Title).To(Equal("March"))
	g.Expect(doc.Metadata.Version).To(Equal("unknown"))
	g.Expect(doc.Results).To(HaveLen(1))
	g.Expect(doc.Results[0].Start).To(Equal("2026-03-01T09:00:00Z"), "no window: the export's time")
	g.Expect(doc.Results[0].End).To(Equal("2026-03-01T09:00:00Z"))
	g.Expect(doc.Results[0].Observations).To(BeEmpty())
	g.Expect(doc.Results[0].Findings).To(BeEmpty())
}

func TestOSCALRefusesAnUnusableWindow(t *testing.T) {
	g := NewWithT(t)
	o := oscalOptions()
	o.Generated = time.Time{}
	_, err := evidence.OSCAL(oscalRecords(t), o)
	g.Expect(err).To(MatchError(ContainSubstring("Generated")))

	o = oscalOptions()
	o.From, o.To = o.To, o.From
	_, err = evidence.OSCAL(oscalRecords(t), o)
	g.Expect(err).To(MatchError(ContainSubstring("window ends (2026-03-01T09:00:00Z) before it starts (2026-03-02T09:00:00Z)")))
}

func TestOSCALControlID(t *testing.T) {
	for section, want := range map[string]string{
		"§164.312(b)":           "hipaa-164.312.b",
		"§164.312(a)(2)(iv)":    "hipaa-164.312.a.2.iv",
		"§164.308(a)(7)(ii)(A)": "hipaa-164.308.a.7.ii.a",
		"§164.308(a)(13)":       "hipaa-164.308.a.13",
		" § 164.312(e)(1) ":     "hipaa-164.312.e.1",
		"164.312(e)(1), (a)(1)": "hipaa-164.312.e.1-.a.1",
	} {
		if got := evidence.OSCALControlID(section); got != want {
			t.Errorf("OSCALControlID(%q) = %q, want %q", section, got, want)
		}
	}
}
