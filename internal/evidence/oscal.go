package evidence

import (
	"cmp"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// OSCALVersion is the release of NIST's OSCAL whose assessment-results model
// the function OSCAL writes.
const OSCALVersion = "1.0.6"

// OSCALPropNamespace qualifies the name of every prop phiguard writes. OSCAL
// reads a prop without a namespace as one of its own, with the values its
// model allows; phiguard's props are not, so each carries this namespace.
const OSCALPropNamespace = "https://phiguard.io/ns/oscal"

// oscalToolName is the title of the component every observation comes from.
const oscalToolName = "phiguard"

// OSCALOptions describe the export around the records.
type OSCALOptions struct {
	// Title is the document's metadata.title; empty means "phiguard evidence".
	Title string
	// From is the start of the window the records were selected for, the
	// result's start; zero means the first record's time (Generated when
	// there is no record).
	From time.Time
	// To is the end of the window, the result's end; zero means Generated.
	To time.Time
	// Cluster is the cluster's identity (the kube-system namespace's UID).
	Cluster string
	// Generated is metadata.last-modified, the time of the export. It is
	// required, so that the same records and options give the same bytes.
	Generated time.Time
	// Version is phiguard's version, metadata.version; empty means "unknown".
	Version string
}

// OSCAL returns records as an OSCAL assessment-results document (JSON,
// indented) that validates against NIST's schema for OSCAL 1.0.6. The same
// records, in any order, and options give the same bytes: every UUID is a
// version 5 UUID derived from what it identifies.
//
// The document holds one result for the window [From, To]:
//   - reviewed-controls: one control-selection per HIPAA section the records
//     name, its control-id derived from the section ("§164.312(a)(2)(iv)" is
//     "hipaa-164.312.a.2.iv", see OSCALControlID) and the section's text in
//     a prop; one control-objective-selection of the objectives the findings
//     target (the control-id with "_obj", as NIST SP 800-53A names them).
//   - local-definitions: phiguard as the assessment platform (the tool
//     every observation and finding originates from), and an inventory item
//     per PHIWorkload and per Kubernetes object the records involve, which
//     observations name as subjects.
//   - observations: one per record, oldest first, collected at the record's
//     time, described by its message, with props for its kind, safeguard,
//     section, mode, result, reason, workload, actor, seq and hash, and the
//     record's place in its hash chain as relevant evidence. Admission
//     records are the method TEST (a real request exercised the safeguard);
//     every other record is EXAMINE (phiguard inspected the cluster's
//     objects, or documents what was done). Actions are of type mitigation,
//     the rest control-objective; results that do not hold, attestations
//     that are not Compliant and expired decisions are typed finding too.
//   - findings: one per workload and safeguard, stating its last result in
//     the window, whether from a Result record or an Attestation's entry:
//     True is "satisfied" (reason pass); False ("fail") and Unknown
//     ("other") are "not-satisfied". Satisfied findings are written too, so
//     the document states a determination for every safeguard seen, not
//     only the failures. A finding's related observations are those of that
//     workload and safeguard since it last became satisfied or not: the
//     one that made it so, later results restating it, and the actions,
//     admissions and decisions about it since (or, for its first result in
//     the window, since the window's start). A pair with no Result record or
//     attestation entry in the window has no finding.
func OSCAL(records []Record, o OSCALOptions) ([]byte, error) {
	b, err := newOSCALBuilder(records, o)
	if err != nil {
		return nil, err
	}
	raw, err := json.MarshalIndent(b.document(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding OSCAL assessment results: %w", err)
	}
	return append(raw, '\n'), nil
}

// OSCALControlID returns the OSCAL control-id of a HIPAA Security Rule
// section: "hipaa-" and the section without "§", its parenthesised
// paragraphs as dotted parts, lower case. "§164.312(b)" is "hipaa-164.312.b",
// "§164.308(a)(7)(ii)(A)" is "hipaa-164.308.a.7.ii.a". Any other character
// becomes "-", so the id is always an OSCAL token.
func OSCALControlID(section string) string {
	var id strings.Builder
	id.WriteString("hipaa-")
	dash := false
	for _, c := range strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(section), "§"))) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.':
			id.WriteRune(c)
			dash = false
		case c == '(':
			id.WriteRune('.')
			dash = false
		case c == ')':
		case !dash:
			id.WriteRune('-')
			dash = true
		}
	}
	return strings.TrimRight(id.String(), "-.")
}

// oscalObjectiveID is the objective-id findings target for a section, or for
// a safeguard whose records name no section.
func oscalObjectiveID(section, safeguard string) string {
	if section == "" {
		return "phiguard-" + strings.ToLower(safeguard) + "_obj"
	}
	return OSCALControlID(section) + "_obj"
}

// oscalBuilder turns one export's records into the document.
type oscalBuilder struct {
	opts    OSCALOptions
	records []Record
	// hashes holds each record's hash, by index in records.
	hashes []string
	// ns is the namespace of every UUID of the document.
	ns uuid.UUID
	// resultUUID identifies the window's result.
	resultUUID string
	// toolUUID identifies phiguard, the component every observation comes from.
	toolUUID string
}

func newOSCALBuilder(records []Record, o OSCALOptions) (*oscalBuilder, error) {
	if o.Generated.IsZero() {
		return nil, errors.New("building OSCAL assessment results: the time of the export (Generated) is required")
	}
	if o.Title == "" {
		o.Title = "phiguard evidence"
	}
	if o.Version == "" {
		o.Version = "unknown"
	}
	b := &oscalBuilder{opts: o, ns: uuid.NewSHA1(uuid.NameSpaceURL, []byte(OSCALPropNamespace))}

	var err error
	if b.records, err = oscalSortedRecords(records); err != nil {
		return nil, err
	}
	b.hashes = make([]string, 0, len(b.records))
	for _, r := range b.records {
		b.hashes = append(b.hashes, r.Hash)
	}

	if b.opts.From, b.opts.To, err = oscalWindow(b.records, o); err != nil {
		return nil, err
	}
	b.resultUUID = b.uuid("result", o.Cluster, oscalTime(b.opts.From), oscalTime(b.opts.To))
	b.toolUUID = b.uuid("component", oscalToolName, o.Cluster)
	return b, nil
}

// oscalSortedRecords returns records oldest first, so that the order of the
// input does not matter and "last result" means the latest, each with its
// hash; a record given twice is dropped.
func oscalSortedRecords(records []Record) ([]Record, error) {
	seen := map[string]bool{}
	out := make([]Record, 0, len(records))
	for _, r := range records {
		h := r.Hash
		if h == "" {
			var err error
			if h, err = r.ComputeHash(); err != nil {
				return nil, fmt.Errorf("building OSCAL assessment results: %w", err)
			}
			r.Hash = h
		}
		if seen[h] {
			continue
		}
		seen[h] = true
		out = append(out, r)
	}
	slices.SortStableFunc(out, oscalCompareRecords)
	return out, nil
}

// oscalCompareRecords orders records by time, then by shard, sequence
// number and hash.
func oscalCompareRecords(x, y Record) int {
	if c := x.Time.Compare(y.Time); c != 0 {
		return c
	}
	if c := strings.Compare(x.Shard, y.Shard); c != 0 {
		return c
	}
	if c := cmp.Compare(x.Seq, y.Seq); c != 0 {
		return c
	}
	return strings.Compare(x.Hash, y.Hash)
}

// oscalWindow returns the window of the export: o's From and To, where a zero
// To is the time of the export and a zero From the first record's time (or
// the time of the export, without records). sorted holds the records oldest
// first.
func oscalWindow(sorted []Record, o OSCALOptions) (from, to time.Time, err error) {
	from, to = o.From, o.To
	if to.IsZero() {
		to = o.Generated
	}
	if from.IsZero() {
		from = o.Generated
		if len(sorted) > 0 {
			from = sorted[0].Time
		}
	}
	if to.Before(from) {
		return from, to, fmt.Errorf("building OSCAL assessment results: the window ends (%s) before it starts (%s)",
			oscalTime(to), oscalTime(from))
	}
	return from, to, nil
}

// uuid returns the version 5 UUID of what parts name.
func (b *oscalBuilder) uuid(parts ...string) string {
	return uuid.NewSHA1(b.ns, []byte(strings.Join(parts, "\x00"))).String()
}

func (b *oscalBuilder) document() oscalDocument {
	o := b.opts
	// The document's UUID changes with its content, as OSCAL asks of a new
	// revision: it is derived from the options and every record's hash.
	sum := sha256.New()
	for _, part := range append([]string{o.Title, o.Version, o.Cluster,
		oscalTime(o.From), oscalTime(o.To), oscalTime(o.Generated)}, b.hashes...) {
		sum.Write([]byte(part))
		sum.Write([]byte{0})
	}
	planUUID := b.uuid("assessment-plan", o.Cluster)

	items := b.inventory()
	observations := b.observations(items)
	findings := b.findings(observations)

	return oscalDocument{AssessmentResults: oscalAssessmentResults{
		UUID: uuid.NewSHA1(b.ns, sum.Sum(nil)).String(),
		Metadata: oscalMetadata{
			Title:        o.Title,
			LastModified: oscalTime(o.Generated),
			Version:      o.Version,
			OSCALVersion: OSCALVersion,
			Props:        oscalProps(oscalProp("cluster", o.Cluster)),
		},
		// OSCAL requires assessment results to import an assessment plan.
		// phiguard writes none: its plan is the safeguards each
		// PHIWorkload runs under the PHIPolicy, continuously. The
		// reference is a fragment naming a back-matter resource that says
		// so, which OSCAL tools resolve within this document instead of
		// looking for a file that does not exist.
		ImportAP: oscalImportAP{
			Href:    "#" + planUUID,
			Remarks: "phiguard evaluates the safeguards of every PHIWorkload continuously, under the organisation's PHIPolicy; no separate OSCAL assessment plan exists.",
		},
		Results: []oscalResult{{
			UUID:  b.resultUUID,
			Title: fmt.Sprintf("%s from %s to %s", o.Title, oscalTime(o.From), oscalTime(o.To)),
			Description: fmt.Sprintf("phiguard's evidence records of cluster %s from %s to %s: %d records, findings on %d safeguards of PHIWorkloads.",
				oscalOr(o.Cluster, "(unnamed)"), oscalTime(o.From), oscalTime(o.To), len(b.records), len(findings)),
			Start: oscalTime(o.From),
			End:   oscalTime(o.To),
			Props: oscalProps(
				oscalProp("cluster", o.Cluster),
				oscalProp("records", strconv.Itoa(len(b.records))),
			),
			LocalDefinitions: &oscalLocalDefinitions{
				InventoryItems:   items.list,
				AssessmentAssets: b.assessmentAssets(),
			},
			ReviewedControls: b.reviewedControls(findings),
			Observations:     observations,
			Findings:         findings,
			Remarks: "Each finding states a safeguard's last result in the window for one PHIWorkload: True is satisfied, " +
				"False and Unknown are not-satisfied. Observations carry the hash of the evidence record they come from; " +
				"verify the records' chain to verify the observations.",
		}},
		BackMatter: &oscalBackMatter{Resources: []oscalResource{{
			UUID:        planUUID,
			Title:       "phiguard continuous assessment",
			Description: "The plan of this assessment: each PHIWorkload's safeguards, with the modes, settings and decisions of its spec merged over the PHIPolicy, evaluated by phiguard whenever the workload or what it selects changes, and attested daily.",
		}}},
	}}
}

func (b *oscalBuilder) assessmentAssets() *oscalAssessmentAssets {
	return &oscalAssessmentAssets{
		Components: []oscalComponent{{
			UUID:        b.toolUUID,
			Type:        "software",
			Title:       oscalToolName,
			Description: "The Kubernetes operator that evaluates and enforces HIPAA Security Rule safeguards per PHIWorkload and keeps the evidence trail this document is exported from.",
			Props:       oscalProps(oscalProp("version", b.opts.Version)),
			Status:      oscalStatus{State: "operational"},
		}},
		AssessmentPlatforms: []oscalPlatform{{
			UUID:           b.uuid("assessment-platform", b.opts.Cluster),
			Title:          "phiguard on cluster " + oscalOr(b.opts.Cluster, "(unnamed)"),
			UsesComponents: []oscalUsesComponent{{ComponentUUID: b.toolUUID}},
		}},
	}
}

// oscalOrigin says that phiguard made an observation or a finding.
func (b *oscalBuilder) origin() []oscalOrigin {
	return []oscalOrigin{{Actors: []oscalActor{{Type: "tool", ActorUUID: b.toolUUID}}}}
}

// oscalInventory holds the inventory items of the workloads and objects the
// records involve, each listed once.
type oscalInventory struct {
	list []oscalInventoryItem
	// subject holds the subject reference of each item, by its UUID.
	subject map[string]oscalSubject
}

func (b *oscalBuilder) inventory() *oscalInventory {
	inv := &oscalInventory{subject: map[string]oscalSubject{}}
	for _, r := range b.records {
		if r.Workload != nil {
			b.addItem(inv, oscalWorkloadObject(*r.Workload))
		}
		for _, obj := range r.Objects {
			b.addItem(inv, obj)
		}
	}
	slices.SortFunc(inv.list, func(x, y oscalInventoryItem) int { return strings.Compare(x.Description, y.Description) })
	return inv
}

// oscalWorkloadObject names a workload as the object it is.
func oscalWorkloadObject(w Workload) Object {
	return Object{APIVersion: "compliance.phiguard.io/v1alpha1", Kind: "PHIWorkload", Namespace: w.Namespace, Name: w.Name, UID: w.UID}
}

// itemUUID is the UUID of an object's inventory item: its identity in the
// cluster, the UID included, so that an object deleted and created again under
// its name is another item.
func (b *oscalBuilder) itemUUID(obj Object) string {
	return b.uuid("inventory-item", b.opts.Cluster, obj.Kind, obj.Namespace, obj.Name, obj.UID)
}

func (b *oscalBuilder) addItem(inv *oscalInventory, obj Object) {
	id := b.itemUUID(obj)
	if _, ok := inv.subject[id]; ok {
		return
	}
	title := oscalObjectTitle(obj)
	inv.list = append(inv.list, oscalInventoryItem{
		UUID:        id,
		Description: title,
		Props: oscalProps(
			oscalProp("api-version", obj.APIVersion),
			oscalProp("kind", obj.Kind),
			oscalProp("namespace", obj.Namespace),
			oscalProp("name", obj.Name),
			oscalProp("uid", obj.UID),
		),
	})
	inv.subject[id] = oscalSubject{SubjectUUID: id, Type: "inventory-item", Title: title}
}

// oscalObjectTitle reads "Kind namespace/name", or "Kind name" for an object
// outside namespaces.
func oscalObjectTitle(obj Object) string {
	if obj.Namespace == "" {
		return obj.Kind + " " + obj.Name
	}
	return obj.Kind + " " + obj.Namespace + "/" + obj.Name
}

func (b *oscalBuilder) observationUUID(hash string) string {
	return b.uuid("observation", hash)
}

func (b *oscalBuilder) observations(inv *oscalInventory) []oscalObservation {
	out := make([]oscalObservation, 0, len(b.records))
	for _, r := range b.records {
		var subjects []oscalSubject
		if r.Workload != nil {
			subjects = append(subjects, inv.subject[b.itemUUID(oscalWorkloadObject(*r.Workload))])
		}
		for _, obj := range r.Objects {
			s := inv.subject[b.itemUUID(obj)]
			if !slices.Contains(subjects, s) {
				subjects = append(subjects, s)
			}
		}
		method := "EXAMINE"
		if r.Kind == KindAdmission {
			method = "TEST"
		}
		props := []oscalProperty{
			oscalProp("kind", string(r.Kind)),
			oscalProp("safeguard", r.Safeguard),
			oscalProp("section", r.Section),
			oscalProp("mode", r.Mode),
			oscalProp("result", r.Result),
			oscalProp("reason", r.Reason),
			oscalProp("workload", oscalWorkloadName(r.Workload)),
			oscalProp("actor", r.Actor),
		}
		if r.Section != "" {
			props = append(props, oscalProp("control-id", OSCALControlID(r.Section)))
		}
		for _, s := range r.Safeguards {
			props = append(props, oscalProp("attested-result", oscalEntrySummary(s)))
		}
		props = append(props,
			oscalProp("seq", strconv.FormatUint(r.Seq, 10)),
			oscalProp("hash", r.Hash),
		)
		out = append(out, oscalObservation{
			UUID:        b.observationUUID(r.Hash),
			Title:       oscalRecordTitle(r),
			Description: oscalRecordDescription(r),
			Props:       oscalProps(props...),
			Methods:     []string{method},
			Types:       oscalObservationTypes(r),
			Origins:     b.origin(),
			Subjects:    subjects,
			RelevantEvidence: []oscalEvidence{{
				Description: fmt.Sprintf("phiguard evidence record %d of shard %q, SHA-256 %s, chained to the record before it by its hash.",
					r.Seq, r.Shard, r.Hash),
				Props: oscalProps(
					oscalProp("schema", r.Schema),
					oscalProp("cluster", r.Cluster),
					oscalProp("shard", r.Shard),
					oscalProp("prev", r.Prev),
				),
			}},
			Collected: oscalTime(r.Time),
		})
	}
	return out
}

// oscalWorkloadName reads "namespace/name", or "" for no workload.
func oscalWorkloadName(w *Workload) string {
	if w == nil {
		return ""
	}
	return w.Namespace + "/" + w.Name
}

// oscalEntrySummary is one line of an attestation: "NetworkIsolated: False
// (PodsNotIsolated)".
func oscalEntrySummary(s SafeguardResult) string {
	line := s.Safeguard + ": " + s.Result
	if s.Reason != "" {
		line += " (" + s.Reason + ")"
	}
	return line
}

// oscalRecordTitle reads "Kind: Safeguard Result (namespace/name)", leaving
// out what the record does not carry.
func oscalRecordTitle(r Record) string {
	title := strings.Join(slices.DeleteFunc([]string{r.Safeguard, r.Result}, func(s string) bool { return s == "" }), " ")
	if title == "" {
		title = string(r.Kind)
	} else {
		title = string(r.Kind) + ": " + title
	}
	if r.Workload != nil {
		title += " (" + oscalWorkloadName(r.Workload) + ")"
	}
	return title
}

// oscalRecordDescription is the record's message; an attestation adds a line
// per safeguard.
func oscalRecordDescription(r Record) string {
	lines := make([]string, 0, 1+len(r.Safeguards))
	lines = append(lines, oscalOr(r.Message, oscalRecordTitle(r)))
	for _, s := range r.Safeguards {
		line := "- " + s.Safeguard
		if details := strings.Join(slices.DeleteFunc([]string{s.Section, s.Mode}, func(v string) bool { return v == "" }), ", "); details != "" {
			line += " (" + details + ")"
		}
		line += ": " + s.Result
		if s.Reason != "" {
			line += ", " + s.Reason
		}
		if s.Message != "" {
			line += ": " + s.Message
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

// oscalObservationTypes: an action mitigates, any other record speaks to a
// control objective; one that shows a safeguard not holding is a finding too.
func oscalObservationTypes(r Record) []string {
	if r.Kind == KindAction {
		return []string{"mitigation"}
	}
	types := []string{"control-objective"}
	switch {
	case r.Kind == KindResult && r.Result != "True",
		r.Kind == KindAttestation && r.Result != "Compliant",
		r.Kind == KindDecision && r.Result == "Expired":
		types = append(types, "finding")
	}
	return types
}

// oscalPair is a workload's safeguard, what a finding is about.
type oscalPair struct {
	namespace, name, safeguard string
}

// oscalStanding is a pair's last result in the window and the observations
// that support it.
type oscalStanding struct {
	workload  Workload
	entry     SafeguardResult
	time      time.Time
	satisfied bool
	related   []string
}

func (b *oscalBuilder) findings(observations []oscalObservation) []oscalFinding {
	t := newOSCALTally()
	for i, r := range b.records {
		if r.Workload != nil {
			t.add(r, observations[i].UUID)
		}
	}
	standings := t.sorted()
	out := make([]oscalFinding, 0, len(standings))
	for _, s := range standings {
		out = append(out, b.finding(s))
	}
	return out
}

// oscalTally follows each pair's standing through the records, oldest first.
type oscalTally struct {
	// standings holds each pair's standing, from its first result on.
	standings map[oscalPair]*oscalStanding
	// pending holds the observations about a pair before its first result
	// in the window, such as a denial before the first evaluation.
	pending map[oscalPair][]string
}

func newOSCALTally() *oscalTally {
	return &oscalTally{standings: map[oscalPair]*oscalStanding{}, pending: map[oscalPair][]string{}}
}

// add counts r, a record about a workload, observed as obs.
func (t *oscalTally) add(r Record, obs string) {
	switch r.Kind {
	case KindResult:
		if r.Safeguard != "" {
			t.set(*r.Workload, SafeguardResult{Safeguard: r.Safeguard, Section: r.Section, Mode: r.Mode,
				Result: r.Result, Reason: r.Reason, Message: r.Message}, r.Time, obs)
		}
	case KindAttestation:
		for _, entry := range r.Safeguards {
			if entry.Safeguard != "" {
				t.set(*r.Workload, entry, r.Time, obs)
			}
		}
	default:
		if r.Safeguard != "" {
			t.relate(oscalPair{r.Workload.Namespace, r.Workload.Name, r.Safeguard}, obs)
		}
	}
}

// set records a result of w's safeguard at a time, observed as obs.
func (t *oscalTally) set(w Workload, entry SafeguardResult, at time.Time, obs string) {
	key := oscalPair{w.Namespace, w.Name, entry.Safeguard}
	satisfied := entry.Result == "True"
	s := t.standings[key]
	switch {
	case s == nil:
		t.standings[key] = &oscalStanding{workload: w, entry: entry, time: at, satisfied: satisfied, related: append(t.pending[key], obs)}
	case s.satisfied != satisfied:
		t.standings[key] = &oscalStanding{workload: w, entry: entry, time: at, satisfied: satisfied, related: []string{obs}}
	default:
		// An attestation restates a result, often without its message:
		// keep the message of the record that stated it.
		if entry.Message == "" && entry.Result == s.entry.Result && entry.Reason == s.entry.Reason {
			entry.Message = s.entry.Message
		}
		s.workload, s.entry, s.time = w, entry, at
		if !slices.Contains(s.related, obs) {
			s.related = append(s.related, obs)
		}
	}
}

// relate adds obs, which states no result, to the observations of key.
func (t *oscalTally) relate(key oscalPair, obs string) {
	if s := t.standings[key]; s != nil {
		s.related = append(s.related, obs)
	} else {
		t.pending[key] = append(t.pending[key], obs)
	}
}

// sorted returns the standings by namespace, workload and safeguard.
func (t *oscalTally) sorted() []*oscalStanding {
	keys := make([]oscalPair, 0, len(t.standings))
	for k := range t.standings {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y oscalPair) int {
		return strings.Compare(x.namespace+"\x00"+x.name+"\x00"+x.safeguard, y.namespace+"\x00"+y.name+"\x00"+y.safeguard)
	})
	out := make([]*oscalStanding, 0, len(keys))
	for _, k := range keys {
		out = append(out, t.standings[k])
	}
	return out
}

func (b *oscalBuilder) finding(s *oscalStanding) oscalFinding {
	e, workload := s.entry, oscalWorkloadName(&s.workload)
	state, reason, verdict := "not-satisfied", "fail", "does not hold"
	switch {
	case s.satisfied:
		state, reason, verdict = "satisfied", "pass", "holds"
	case e.Result != "False":
		reason, verdict = "other", "could not be evaluated"
	}
	section := ""
	if e.Section != "" {
		section = " (" + e.Section + ")"
	}
	description := fmt.Sprintf("%s%s of PHIWorkload %s %s: its last result in the window, at %s, is %s",
		e.Safeguard, section, workload, verdict, oscalTime(s.time), e.Result)
	if e.Reason != "" {
		description += " (" + e.Reason + ")"
	}
	if e.Message != "" {
		description += ": " + e.Message
	}
	props := []oscalProperty{
		oscalProp("workload", workload),
		oscalProp("safeguard", e.Safeguard),
		oscalProp("section", e.Section),
		oscalProp("mode", e.Mode),
		oscalProp("result", e.Result),
		oscalProp("reason", e.Reason),
	}
	if e.Section != "" {
		props = append(props, oscalProp("control-id", OSCALControlID(e.Section)))
	}
	related := make([]oscalRelatedObservation, 0, len(s.related))
	for _, id := range s.related {
		related = append(related, oscalRelatedObservation{ObservationUUID: id})
	}
	return oscalFinding{
		UUID:        b.uuid("finding", b.resultUUID, s.workload.Namespace, s.workload.Name, e.Safeguard),
		Title:       fmt.Sprintf("%s of PHIWorkload %s: %s", e.Safeguard, workload, state),
		Description: description,
		Props:       oscalProps(props...),
		Origins:     b.origin(),
		Target: oscalTarget{
			Type:     "objective-id",
			TargetID: oscalObjectiveID(e.Section, e.Safeguard),
			Title:    strings.TrimSpace("HIPAA Security Rule " + e.Section),
			Status:   oscalTargetStatus{State: state, Reason: reason},
		},
		RelatedObservations: related,
	}
}

// reviewedControls lists one control-selection per section the records name
// (in a record or an attestation's entry), and the objectives the findings
// target.
func (b *oscalBuilder) reviewedControls(findings []oscalFinding) oscalReviewedControls {
	sections := map[string]string{} // by control-id
	for _, r := range b.records {
		if r.Section != "" {
			sections[OSCALControlID(r.Section)] = r.Section
		}
		for _, s := range r.Safeguards {
			if s.Section != "" {
				sections[OSCALControlID(s.Section)] = s.Section
			}
		}
	}
	ids := make([]string, 0, len(sections))
	for id := range sections {
		ids = append(ids, id)
	}
	slices.Sort(ids)

	rc := oscalReviewedControls{
		Description: "The HIPAA Security Rule sections (45 CFR Part 164 Subpart C) that the evidence records of the window name.",
	}
	for _, id := range ids {
		rc.ControlSelections = append(rc.ControlSelections, oscalControlSelection{
			Description:     "HIPAA Security Rule " + sections[id],
			Props:           oscalProps(oscalProp("section", sections[id])),
			IncludeControls: []oscalSelectControl{{ControlID: id}},
		})
	}
	if len(rc.ControlSelections) == 0 {
		// OSCAL requires a control selection; an empty window selects none.
		rc.ControlSelections = []oscalControlSelection{{Description: "No evidence record of the window names a HIPAA Security Rule section."}}
	}

	var objectives []string
	for _, f := range findings {
		if !slices.Contains(objectives, f.Target.TargetID) {
			objectives = append(objectives, f.Target.TargetID)
		}
	}
	slices.Sort(objectives)
	if len(objectives) > 0 {
		sel := oscalObjectiveSelection{Description: "The objectives the findings state a determination for."}
		for _, id := range objectives {
			sel.IncludeObjectives = append(sel.IncludeObjectives, oscalSelectObjective{ObjectiveID: id})
		}
		rc.ControlObjectiveSelections = []oscalObjectiveSelection{sel}
	}
	return rc
}

// oscalTime writes t as OSCAL's date-time with time zone: RFC 3339 in UTC.
func oscalTime(t time.Time) string {
	return t.UTC().Format(time.RFC3339Nano)
}

// oscalOr returns s, or otherwise when s is empty.
func oscalOr(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// oscalProp is a phiguard prop. OSCAL's string values are one line without
// leading or trailing space: whitespace runs become one space. A value that
// is empty after that is left out by oscalProps.
func oscalProp(name, value string) oscalProperty {
	return oscalProperty{Name: name, NS: OSCALPropNamespace, Value: strings.Join(strings.Fields(value), " ")}
}

// oscalProps drops the props without a value.
func oscalProps(props ...oscalProperty) []oscalProperty {
	return slices.DeleteFunc(props, func(p oscalProperty) bool { return p.Value == "" })
}

// The parts of OSCAL 1.0.6's assessment-results model that phiguard writes.
// JSON names and required fields are the schema's.
type (
	oscalDocument struct {
		AssessmentResults oscalAssessmentResults `json:"assessment-results"`
	}
	oscalAssessmentResults struct {
		UUID       string           `json:"uuid"`
		Metadata   oscalMetadata    `json:"metadata"`
		ImportAP   oscalImportAP    `json:"import-ap"`
		Results    []oscalResult    `json:"results"`
		BackMatter *oscalBackMatter `json:"back-matter,omitempty"`
	}
	oscalMetadata struct {
		Title        string          `json:"title"`
		LastModified string          `json:"last-modified"`
		Version      string          `json:"version"`
		OSCALVersion string          `json:"oscal-version"`
		Props        []oscalProperty `json:"props,omitempty"`
	}
	oscalProperty struct {
		Name  string `json:"name"`
		NS    string `json:"ns,omitempty"`
		Value string `json:"value"`
	}
	oscalImportAP struct {
		Href    string `json:"href"`
		Remarks string `json:"remarks,omitempty"`
	}
	oscalResult struct {
		UUID             string                 `json:"uuid"`
		Title            string                 `json:"title"`
		Description      string                 `json:"description"`
		Start            string                 `json:"start"`
		End              string                 `json:"end,omitempty"`
		Props            []oscalProperty        `json:"props,omitempty"`
		LocalDefinitions *oscalLocalDefinitions `json:"local-definitions,omitempty"`
		ReviewedControls oscalReviewedControls  `json:"reviewed-controls"`
		Observations     []oscalObservation     `json:"observations,omitempty"`
		Findings         []oscalFinding         `json:"findings,omitempty"`
		Remarks          string                 `json:"remarks,omitempty"`
	}
	oscalLocalDefinitions struct {
		InventoryItems   []oscalInventoryItem   `json:"inventory-items,omitempty"`
		AssessmentAssets *oscalAssessmentAssets `json:"assessment-assets,omitempty"`
	}
	oscalInventoryItem struct {
		UUID        string          `json:"uuid"`
		Description string          `json:"description"`
		Props       []oscalProperty `json:"props,omitempty"`
	}
	oscalAssessmentAssets struct {
		Components          []oscalComponent `json:"components,omitempty"`
		AssessmentPlatforms []oscalPlatform  `json:"assessment-platforms"`
	}
	oscalComponent struct {
		UUID        string          `json:"uuid"`
		Type        string          `json:"type"`
		Title       string          `json:"title"`
		Description string          `json:"description"`
		Props       []oscalProperty `json:"props,omitempty"`
		Status      oscalStatus     `json:"status"`
	}
	oscalStatus struct {
		State string `json:"state"`
	}
	oscalPlatform struct {
		UUID           string               `json:"uuid"`
		Title          string               `json:"title,omitempty"`
		UsesComponents []oscalUsesComponent `json:"uses-components,omitempty"`
	}
	oscalUsesComponent struct {
		ComponentUUID string `json:"component-uuid"`
	}
	oscalReviewedControls struct {
		Description                string                    `json:"description,omitempty"`
		ControlSelections          []oscalControlSelection   `json:"control-selections"`
		ControlObjectiveSelections []oscalObjectiveSelection `json:"control-objective-selections,omitempty"`
	}
	oscalControlSelection struct {
		Description     string               `json:"description,omitempty"`
		Props           []oscalProperty      `json:"props,omitempty"`
		IncludeControls []oscalSelectControl `json:"include-controls,omitempty"`
	}
	oscalSelectControl struct {
		ControlID string `json:"control-id"`
	}
	oscalObjectiveSelection struct {
		Description       string                 `json:"description,omitempty"`
		IncludeObjectives []oscalSelectObjective `json:"include-objectives,omitempty"`
	}
	oscalSelectObjective struct {
		ObjectiveID string `json:"objective-id"`
	}
	oscalObservation struct {
		UUID             string          `json:"uuid"`
		Title            string          `json:"title,omitempty"`
		Description      string          `json:"description"`
		Props            []oscalProperty `json:"props,omitempty"`
		Methods          []string        `json:"methods"`
		Types            []string        `json:"types,omitempty"`
		Origins          []oscalOrigin   `json:"origins,omitempty"`
		Subjects         []oscalSubject  `json:"subjects,omitempty"`
		RelevantEvidence []oscalEvidence `json:"relevant-evidence,omitempty"`
		Collected        string          `json:"collected"`
	}
	oscalOrigin struct {
		Actors []oscalActor `json:"actors"`
	}
	oscalActor struct {
		Type      string `json:"type"`
		ActorUUID string `json:"actor-uuid"`
	}
	oscalSubject struct {
		SubjectUUID string `json:"subject-uuid"`
		Type        string `json:"type"`
		Title       string `json:"title,omitempty"`
	}
	oscalEvidence struct {
		Description string          `json:"description"`
		Props       []oscalProperty `json:"props,omitempty"`
	}
	oscalFinding struct {
		UUID                string                    `json:"uuid"`
		Title               string                    `json:"title"`
		Description         string                    `json:"description"`
		Props               []oscalProperty           `json:"props,omitempty"`
		Origins             []oscalOrigin             `json:"origins,omitempty"`
		Target              oscalTarget               `json:"target"`
		RelatedObservations []oscalRelatedObservation `json:"related-observations,omitempty"`
	}
	oscalTarget struct {
		Type     string            `json:"type"`
		TargetID string            `json:"target-id"`
		Title    string            `json:"title,omitempty"`
		Status   oscalTargetStatus `json:"status"`
	}
	oscalTargetStatus struct {
		State  string `json:"state"`
		Reason string `json:"reason,omitempty"`
	}
	oscalRelatedObservation struct {
		ObservationUUID string `json:"observation-uuid"`
	}
	oscalBackMatter struct {
		Resources []oscalResource `json:"resources"`
	}
	oscalResource struct {
		UUID        string `json:"uuid"`
		Title       string `json:"title,omitempty"`
		Description string `json:"description,omitempty"`
	}
)
