package safeguard

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The sections of ruleset ProposedRule2025 (each safeguard's
// Rule.ProposedSection) are those of the proposed regulatory text in HHS's
// notice of proposed rulemaking "HIPAA Security Rule To Strengthen the
// Cybersecurity of Electronic Protected Health Information", 90 FR 898
// (2025-01-06; FR Doc. 2024-30983; RIN 0945-AA22;
// https://www.federalregister.gov/documents/full_text/html/2025/01/06/2024-30983.html),
// not final as of this writing. As proposed:
//   - §164.308(a)(10) Standard: Information access management, with a
//     network segmentation specification ("relevant electronic information
//     systems are segmented to limit access to electronic protected health
//     information to authorized workstations");
//   - §164.308(a)(13) Standard: Contingency plan ("restore loss of ...
//     critical relevant electronic information systems and data within 72
//     hours of the loss");
//   - §164.312(a) Standard: Access control; (b) Encryption and decryption,
//     whose (b)(2) reads "Encrypt all electronic protected health information
//     at rest and in transit"; (c) Configuration management (secure
//     baselines); (d) Audit trail and system log controls; (e) Integrity;
//     (f) Authentication; (g) Transmission security; (h) Vulnerability
//     management; (i) Data backup and recovery (backups no more than 48 hours
//     old); (j) Information systems backup and recovery.
//
// The proposal removes the distinction between required and addressable
// implementation specifications: under it every safeguard is Required.

// RulesetCitation names a ruleset the way messages cite it, such as "ruleset
// ProposedRule2025 (HHS NPRM 90 FR 898)".
func RulesetCitation(rs phiguardv1alpha1.Ruleset) string {
	switch rs {
	case phiguardv1alpha1.RulesetProposedRule2025:
		return "ruleset " + string(rs) + " (HHS NPRM 90 FR 898)"
	case "":
		rs = phiguardv1alpha1.DefaultRuleset
	}
	return "ruleset " + string(rs) + " (45 CFR Part 164 Subpart C)"
}

// ForbidsOff says whether ruleset rs lets no safeguard be turned off, by a
// decision or otherwise (ProposedRule2025: every safeguard is Required).
func ForbidsOff(rs phiguardv1alpha1.Ruleset) bool {
	return rs == phiguardv1alpha1.RulesetProposedRule2025
}

// OffNotRecognised says whether the workload turns a safeguard off itself
// while the policy's ruleset lets none be off: its decision does not count,
// and the safeguard runs in at least Audit (Effective). A PHIPolicy default
// cannot be Off (the CRD refuses it), so only the workload's own mode is read.
func OffNotRecognised(policy *phiguardv1alpha1.PHIPolicy, w *phiguardv1alpha1.PHIWorkload, name phiguardv1alpha1.SafeguardName) bool {
	return ForbidsOff(policy.Ruleset()) && w.Spec.Mode(name) == phiguardv1alpha1.ModeOff
}

// DecisionNotRecognised is the result of a safeguard the workload turns off
// under a ruleset that lets none be off: the judgement of the run in mode
// (Audit, or the policy's minimum), with reason
// phiguardv1alpha1.ReasonDecisionNotRecognised and a message that says why
// the decision d (nil when there is none) does not count, what to do, and
// what the run found. A judgement that failed with an error is returned as
// it is: the error decides the condition.
func DecisionNotRecognised(name phiguardv1alpha1.SafeguardName, rs phiguardv1alpha1.Ruleset, d *phiguardv1alpha1.Decision,
	mode phiguardv1alpha1.Mode, judged Result) Result {
	if judged.Err != nil {
		return judged
	}
	var why string
	if d != nil {
		why = fmt.Sprintf("%s is turned off under a decision (kind %s, approved by %s) that %s does not recognise: every safeguard is Required there. "+
			"Set its mode to Audit or Enforce and remove the decision", name, d.Kind, d.ApprovedBy, RulesetCitation(rs))
	} else {
		why = fmt.Sprintf("%s is turned off, which %s does not allow: every safeguard is Required there. Set its mode to Audit or Enforce",
			name, RulesetCitation(rs))
	}
	out := judged
	out.Reason = phiguardv1alpha1.ReasonDecisionNotRecognised
	out.Message = fmt.Sprintf("%s. Meanwhile it runs in %s and is judged %s: %s: %s",
		why, mode, statusWord(judged.Status), judged.Reason, judged.Message)
	return out
}

func statusWord(s metav1.ConditionStatus) string {
	switch s {
	case metav1.ConditionTrue:
		return "to hold"
	case metav1.ConditionFalse:
		return "not to hold"
	default:
		return "unknown"
	}
}
