package cli

import (
	"go/ast"
	"go/parser"
	"go/token"
	"regexp"
	"strconv"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// reasonsFile is where every reason phiguard writes is declared.
const reasonsFile = "../../api/v1alpha1/reasons.go"

// noFixNeeded are the reasons of reasons.go that never mean "does not
// hold", so have no fix: those of a condition that holds, of Events only,
// and of work under way. Every other reason must have a fix; a reason added
// to reasons.go fails TestEveryFailingReasonHasAFix until it is given a fix
// or listed here.
var noFixNeeded = map[string]string{
	// The PHIPolicy's EvidenceSinkDegraded, not a workload's safeguard: its
	// message says what is wrong, the README's Evidence section what to do.
	phiguardv1alpha1.ReasonEvidenceStored:          "PHIPolicy condition, healthy",
	phiguardv1alpha1.ReasonEvidenceSinkUnavailable: "PHIPolicy condition, not a safeguard's",
	phiguardv1alpha1.ReasonEvidenceEphemeral:       "PHIPolicy condition, not a safeguard's",
	phiguardv1alpha1.ReasonEvidenceDisabled:        "PHIPolicy condition, not a safeguard's",
	phiguardv1alpha1.ReasonProgressing:             "Reconciling True: work under way",
	phiguardv1alpha1.ReasonEvaluated:               "Event",
	phiguardv1alpha1.ReasonDocumentedDecision:      "holds",
	phiguardv1alpha1.ReasonPolicyApplied:           "holds",
	phiguardv1alpha1.ReasonPodsIsolated:            "holds",
	phiguardv1alpha1.ReasonAllVolumesEncrypted:     "holds",
	phiguardv1alpha1.ReasonBackupFresh:             "holds",
	phiguardv1alpha1.ReasonRestoreVerified:         "holds",
	phiguardv1alpha1.ReasonSidecarsPresent:         "holds",
	phiguardv1alpha1.ReasonContainersImmutable:     "holds",
	phiguardv1alpha1.ReasonRedundant:               "holds",
	phiguardv1alpha1.ReasonEncryptedInTransit:      "holds",
	phiguardv1alpha1.ReasonLeastPrivilege:          "holds",

	phiguardv1alpha1.ReasonPolicyCreated:             "Event",
	phiguardv1alpha1.ReasonPolicyUpdated:             "Event",
	phiguardv1alpha1.ReasonPolicyDrifted:             "Event",
	phiguardv1alpha1.ReasonPolicyRemoved:             "Event",
	phiguardv1alpha1.ReasonScheduleCreated:           "Event",
	phiguardv1alpha1.ReasonScheduleUpdated:           "Event",
	phiguardv1alpha1.ReasonScheduleRemoved:           "Event",
	phiguardv1alpha1.ReasonRestoreDrillStarted:       "Event",
	phiguardv1alpha1.ReasonRolloutRestarted:          "Event",
	phiguardv1alpha1.ReasonDisruptionBudgetCreated:   "Event",
	phiguardv1alpha1.ReasonDisruptionBudgetUpdated:   "Event",
	phiguardv1alpha1.ReasonDisruptionBudgetRemoved:   "Event",
	phiguardv1alpha1.ReasonPeerAuthenticationCreated: "Event",
	phiguardv1alpha1.ReasonPeerAuthenticationUpdated: "Event",
	phiguardv1alpha1.ReasonPeerAuthenticationDrifted: "Event",
	phiguardv1alpha1.ReasonPeerAuthenticationRemoved: "Event",
	phiguardv1alpha1.ReasonEmergencyAccess:           "Event",
	phiguardv1alpha1.ReasonEmergencyAccessDenied:     "Event",
	phiguardv1alpha1.ReasonCoverageCreated:           "Event",
	phiguardv1alpha1.ReasonCoverageRemoved:           "Event",
	phiguardv1alpha1.ReasonCoverageInterrupted:       "Event",
	phiguardv1alpha1.ReasonCoveredByWorkload:         "Event",
	phiguardv1alpha1.ReasonCoverageNotPossible:       "Event",
	phiguardv1alpha1.ReasonWorkloadNameTaken:         "Event",
	phiguardv1alpha1.ReasonAdmissionDenied:           "Event",
	phiguardv1alpha1.ReasonAdmissionWarned:           "Event",
}

// declaredReason is one Reason constant of reasons.go.
type declaredReason struct {
	name, value, doc string
}

// declaredReasons parses reasons.go and returns its Reason constants.
func declaredReasons(t *testing.T) []declaredReason {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), reasonsFile, nil, parser.ParseComments)
	if err != nil {
		t.Fatalf("parsing %s: %v", reasonsFile, err)
	}
	var out []declaredReason
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s: %s is not a string literal", reasonsFile, name.Name)
				}
				value, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, declaredReason{name: name.Name, value: value, doc: vs.Doc.Text()})
			}
		}
	}
	if len(out) < 50 {
		t.Fatalf("found only %d Reason constants in %s: is the parsing still right?", len(out), reasonsFile)
	}
	return out
}

// statusNote is the first parenthesis of a reason's comment, where
// reasons.go says on which status or Event it appears.
var statusNote = regexp.MustCompile(`^\w+ \(([^)]*)\)`)

func TestEveryFailingReasonHasAFix(t *testing.T) {
	declared := declaredReasons(t)
	values := map[string]bool{}
	for _, r := range declared {
		values[r.value] = true
		_, hasFix := fixes[r.value]
		why, exempt := noFixNeeded[r.value]
		switch {
		case hasFix && exempt:
			t.Errorf("%s (%q) has a fix and is listed in noFixNeeded (%s): keep one", r.name, r.value, why)
		case !hasFix && !exempt:
			t.Errorf("%s (%q) has no fix in fixes: say what to do about it, or list it in noFixNeeded if it never means \"does not hold\"",
				r.name, r.value)
		case exempt:
			// A reason that needs no fix never appears on a False or Unknown condition.
			m := statusNote.FindStringSubmatch(r.doc)
			if m == nil {
				t.Errorf("%s is listed in noFixNeeded but its comment does not say where it appears: %q", r.name, r.doc)
			} else if strings.Contains(m[1], "False") || strings.Contains(m[1], "Unknown") {
				t.Errorf("%s is listed in noFixNeeded but appears on a condition that does not hold (%s)", r.name, m[1])
			}
		}
	}
	for reason := range fixes {
		if !values[reason] {
			t.Errorf("fixes has an entry for %q, which %s does not declare", reason, reasonsFile)
		}
	}
	for reason := range noFixNeeded {
		if !values[reason] {
			t.Errorf("noFixNeeded lists %q, which %s does not declare", reason, reasonsFile)
		}
	}
}

// fixWorkload is the workload the fix tests explain: a selector, a
// decision for EncryptedAtRest, whose block sets only the mode.
func fixWorkload() *phiguardv1alpha1.PHIWorkload {
	w := &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records"},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
			Decisions: []phiguardv1alpha1.Decision{
				{Safeguard: phiguardv1alpha1.TransmissionSecure, Kind: phiguardv1alpha1.DecisionAlternative},
				{Safeguard: phiguardv1alpha1.EncryptedAtRest, Kind: phiguardv1alpha1.DecisionNotReasonable},
			},
		},
	}
	w.Spec.EncryptionAtRest = &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeOff}
	return w
}

func TestEveryFixNamesWhatToDo(t *testing.T) {
	for reason, fix := range fixes {
		got := fix(fixInput{workload: fixWorkload(), safeguard: phiguardv1alpha1.EncryptedAtRest,
			specification: phiguardv1alpha1.Addressable, mode: phiguardv1alpha1.ModeAudit})
		if len(got) < 40 {
			t.Errorf("the fix of %s says too little: %q", reason, got)
		}
		if strings.Contains(got, "%!") {
			t.Errorf("the fix of %s is badly formatted: %q", reason, got)
		}
	}
}

// TestFixes checks fixes that read names from the message, and those whose
// command depends on the workload's spec.
func TestFixes(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		in     fixInput
		want   string
	}{
		{
			name:   "isolation bypassed: the policy the message names",
			reason: phiguardv1alpha1.ReasonIsolationBypassed,
			in: fixInput{safeguard: phiguardv1alpha1.NetworkIsolated, message: "NetworkPolicy phiguard-records is applied, but " +
				"NetworkPolicy clinic/allow-all opens ingress from any source on every port for 2 of 2 selected pods (records-0, records-1), " +
				"wider than networkIsolation declares; NetworkPolicies add up, so narrow or remove it"},
			want: "NetworkPolicies add up, so one that selects the pods opens them however phiguard's is written: narrow or delete " +
				"NetworkPolicy allow-all (kubectl -n clinic get networkpolicy allow-all -o yaml); or, if that traffic is intended, " +
				"declare it in spec.networkIsolation.ingress or egress (kubectl -n clinic edit phiw records)",
		},
		{
			name:   "too few replicas: a scale per Deployment, a patch per autoscaler",
			reason: phiguardv1alpha1.ReasonTooFewReplicas,
			in: fixInput{safeguard: phiguardv1alpha1.Available, message: "2 owners run below availability.minReplicas 3: " +
				"Deployment api (1 replica), StatefulSet db (at least 2 replicas, the minReplicas of HorizontalPodAutoscaler db-hpa); " +
				"raise spec.replicas (or the HorizontalPodAutoscaler's minReplicas) to at least 3"},
			want: "run at least 3 replicas: kubectl -n clinic scale deployment/api --replicas=3; " +
				`kubectl -n clinic patch hpa db-hpa --type merge -p '{"spec":{"minReplicas":3}}'; and set the same in the manifests ` +
				"(spec.replicas, or the HorizontalPodAutoscaler's minReplicas), or the next apply undoes it",
		},
		{
			name:   "too few replicas with the other findings: one scale per owner, then the budget's and the spread's fixes",
			reason: phiguardv1alpha1.ReasonTooFewReplicas,
			in: fixInput{safeguard: phiguardv1alpha1.Available, mode: phiguardv1alpha1.ModeAudit, message: "1 owner runs below " +
				"availability.minReplicas 2: Deployment intake (1 replica); raise spec.replicas (or the HorizontalPodAutoscaler's " +
				"minReplicas) to at least 2; 1 of 1 selected pods are covered by no PodDisruptionBudget, so a node drain may evict " +
				"them all at once: intake-1; add a PodDisruptionBudget (maxUnavailable: 1) selecting them, or set availability.mode " +
				"to Enforce for phiguard to generate one; 1 owner runs every selected pod on one node, so losing that node loses " +
				"them all: Deployment intake (all 1 selected pods on node node-000000); spread them with a topologySpreadConstraint"},
			want: "run at least 2 replicas: kubectl -n clinic scale deployment/intake --replicas=2; and set the same in the manifests " +
				"(spec.replicas, or the HorizontalPodAutoscaler's minReplicas), or the next apply undoes it; also let phiguard keep " +
				`PodDisruptionBudget phiguard-records: kubectl -n clinic patch phiw records --type merge -p '{"spec":{"availability":{"mode":"Enforce"}}}'; ` +
				"or create one: kubectl -n clinic create pdb records --max-unavailable=1 --selector='app=records'; also spread each " +
				"owner's pods: add to its pod template topologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, " +
				"whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: <the pods' labels>}}] (or a podAntiAffinity on " +
				"kubernetes.io/hostname); where the template declares one already, delete one pod so that the scheduler places it again",
		},
		{
			name:   "decision not recognised: mode and decision changed in one JSON patch",
			reason: phiguardv1alpha1.ReasonDecisionNotRecognised,
			in:     fixInput{safeguard: phiguardv1alpha1.EncryptedAtRest},
			want: "the PHIPolicy's ruleset makes every safeguard Required, so no decision counts: set EncryptedAtRest's mode to Audit " +
				`(or Enforce) and remove its decision: kubectl -n clinic patch phiw records --type json -p ` +
				`'[{"op":"add","path":"/spec/encryptionAtRest/mode","value":"Audit"},{"op":"remove","path":"/spec/decisions/1"}]'`,
		},
		{
			name:   "required safeguard off without a block of its own: the block is added",
			reason: phiguardv1alpha1.ReasonRequiredSafeguardOff,
			in:     fixInput{safeguard: phiguardv1alpha1.TransmissionSecure},
			want: "TransmissionSecure is Required and no decision can turn it off: set its mode to Audit (reports, changes nothing) " +
				`or Enforce: kubectl -n clinic patch phiw records --type json -p ` +
				`'[{"op":"add","path":"/spec/transmissionSecurity","value":{"mode":"Audit"}},{"op":"remove","path":"/spec/decisions/0"}]'`,
		},
		{
			name:   "decision missing on an Addressable safeguard: turn it on, or record one",
			reason: phiguardv1alpha1.ReasonDecisionMissing,
			in:     fixInput{safeguard: phiguardv1alpha1.AuditLogging, specification: phiguardv1alpha1.Addressable},
			want: `turn AuditLogging back on: kubectl -n clinic patch phiw records --type merge -p '{"spec":{"auditLogging":{"mode":"Enforce"}}}'; ` +
				`or, to keep it off, record a decision and set auditLogging.mode: "Off" (kubectl -n clinic edit phiw records): add to ` +
				"spec.decisions {safeguard: AuditLogging, kind: NotReasonable (or Alternative, with alternativeMeasure: <what is done " +
				"instead>), justification: <why, at least 20 characters>, approvedBy: <who approved it>, expires: <RFC 3339 time of " +
				"the next review, at most the PHIPolicy's decisions.maxLifetime ahead>}",
		},
		{
			name:   "backup failed: the backup and schedule the message names",
			reason: phiguardv1alpha1.ReasonBackupFailed,
			in: fixInput{safeguard: phiguardv1alpha1.BackupScheduled, message: "the latest backup nightly-20300101 of Schedule nightly " +
				"ended Failed; see `velero backup describe nightly-20300101`; storage: BackupStorageLocation default encrypts with KMS key k"},
			want: "find why backup nightly-20300101 failed (velero backup describe nightly-20300101 --details; velero backup logs " +
				"nightly-20300101), fix the cause, then take a new one: velero backup create --from-schedule nightly",
		},
		{
			name:   "token mounted: the ServiceAccount the message names",
			reason: phiguardv1alpha1.ReasonTokenMounted,
			in: fixInput{safeguard: phiguardv1alpha1.AccessControlled, message: "ServiceAccount records-sa's token is mounted in pods " +
				"records-0 (automountServiceAccountToken). To fix: ..."},
			want: `stop mounting the token: kubectl -n clinic patch serviceaccount records-sa -p '{"automountServiceAccountToken":false}', ` +
				"set automountServiceAccountToken: false in the pod template too (it overrides the ServiceAccount's) and remove " +
				"projected serviceAccountToken volumes; or, if the pods call the Kubernetes API, allow it: kubectl -n clinic patch phiw " +
				`records --type merge -p '{"spec":{"accessControl":{"allowTokenAutomount":true}}}'`,
		},
		{
			name:   "no pods selected: the selector, quoted for the shell",
			reason: phiguardv1alpha1.ReasonNoPodsSelected,
			in:     fixInput{safeguard: phiguardv1alpha1.AuditLogging},
			want: "spec.selector (app=records) matches no pod: compare it with the pods' labels (kubectl -n clinic get pods -l " +
				"'app=records'; kubectl -n clinic get pods --show-labels), then correct spec.selector (kubectl -n clinic edit phiw " +
				"records) or label the pods",
		},
		{
			name:   "invalid duration: the field the message names is reset",
			reason: phiguardv1alpha1.ReasonInvalidDuration,
			in:     fixInput{message: "not evaluated: backup.ttl is 0s: give a positive duration such as 720h"},
			want: "give backup.ttl a positive duration such as 720h, or remove it for the built-in default: " +
				`kubectl -n clinic patch phiw records --type merge -p '{"spec":{"backup":{"ttl":null}}}'`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.workload = fixWorkload()
			if got := fixFor(false, tt.reason, tt.in); got != tt.want {
				t.Errorf("fix of %s:\n got %s\nwant %s", tt.reason, got, tt.want)
			}
		})
	}
}

func TestFixForHoldingCondition(t *testing.T) {
	in := fixInput{workload: fixWorkload(), safeguard: phiguardv1alpha1.EncryptedAtRest}
	if got := fixFor(true, phiguardv1alpha1.ReasonDocumentedDecision, in); got != "" {
		t.Errorf("a holding condition got a fix: %q", got)
	}
	if got := fixFor(true, phiguardv1alpha1.ReasonTooFewReplicas, in); got != "" {
		t.Errorf("a holding condition with a failing reason got a fix: %q", got)
	}
	if got := fixFor(false, "SomeReasonOfANewerController", in); got != "" {
		t.Errorf("an unknown reason got a fix: %q", got)
	}
	if got := fixFor(false, phiguardv1alpha1.ReasonTooFewReplicas, in); !strings.HasPrefix(got, "run at least <minReplicas> replicas") {
		t.Errorf("TooFewReplicas without a message got %q", got)
	}
	// DecisionNotRecognised needs a change even when the run under Audit holds.
	if got := fixFor(true, phiguardv1alpha1.ReasonDecisionNotRecognised, in); !strings.Contains(got, "remove its decision") {
		t.Errorf("DecisionNotRecognised (True) got %q, want the fix that removes the decision", got)
	}
}
