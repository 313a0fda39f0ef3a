// Package rbac checks phiguard's RBAC for least privilege: the manager's
// permissions come only from +kubebuilder:rbac markers (config/rbac/role.yaml,
// generated), have no wildcard, reach Secrets only in phiguard's namespace,
// and every write permission is one the code uses, named below with the code
// that needs it. The end-to-end suite runs the manager with the token of the
// ServiceAccount these roles are bound to, so a missing permission fails there.
package rbac

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// writes are the manager's write permissions, "<group>/<resource> <verb>",
// each with the code that needs it. A permission the role grants and this
// list lacks fails the test, and so does one listed here that the role no
// longer grants.
var writes = map[string]string{
	"apps/deployments patch":                                              "internal/safeguard/auditlogging.go restartOwners: rollout restart of a pod's owner (restartNonCompliant)",
	"apps/statefulsets patch":                                             "internal/safeguard/auditlogging.go restartOwners",
	"apps/daemonsets patch":                                               "internal/safeguard/auditlogging.go restartOwners",
	"compliance.phiguard.io/phiworkloads create":                          "internal/controller/labelcoverage_controller.go apply: server-side apply of a generated PHIWorkload creates it",
	"compliance.phiguard.io/phiworkloads patch":                           "labelcoverage_controller.go apply and release (coverage finalizer); phiworkload_controller.go ensureFinalizer/finalize (cleanup finalizer)",
	"compliance.phiguard.io/phiworkloads delete":                          "internal/controller/labelcoverage_controller.go withdraw: label removed, object deleted, superseded, exempt",
	"compliance.phiguard.io/phiworkloads/finalizers update":               "internal/safeguard/owned.go controllerReference: blockOwnerDeletion on owned NetworkPolicies (OwnerReferencesPermissionEnforcement)",
	"compliance.phiguard.io/phiworkloads/status patch":                    "internal/controller/phiworkload_controller.go writeStatus",
	"compliance.phiguard.io/phipolicies/status patch":                     "internal/controller/evidence_trail.go EvidenceStatusReconciler: the PHIPolicy's EvidenceSinkDegraded condition",
	"events.k8s.io/events create":                                         "both controllers' Recorder (events.k8s.io): enforcement actions, condition changes, coverage",
	"events.k8s.io/events patch":                                          "the Recorder's series updates of a repeated Event",
	"networking.k8s.io/networkpolicies create":                            "internal/safeguard/networkisolation.go apply (server-side apply creates)",
	"networking.k8s.io/networkpolicies patch":                             "internal/safeguard/networkisolation.go apply (drift is reverted)",
	"networking.k8s.io/networkpolicies delete":                            "internal/safeguard/networkisolation.go: Audit removes phiguard's own policy",
	"policy/poddisruptionbudgets create":                                  "internal/safeguard/availability.go ensureBudget (server-side apply creates)",
	"policy/poddisruptionbudgets patch":                                   "internal/safeguard/availability.go ensureBudget (selector change, drift)",
	"policy/poddisruptionbudgets delete":                                  "internal/safeguard/availability.go removeBudgets: a user's budget covers the pods, or Audit",
	"security.istio.io/peerauthentications create":                        "internal/safeguard/transmission.go enforce (server-side apply creates the STRICT PeerAuthentication)",
	"security.istio.io/peerauthentications patch":                         "internal/safeguard/transmission.go enforce (drift is reverted)",
	"security.istio.io/peerauthentications delete":                        "internal/safeguard/transmission.go removeOwned: Audit and Off remove phiguard's own",
	"wgpolicyk8s.io/policyreports create":                                 "internal/policyreport/controller.go write (server-side apply creates the report)",
	"wgpolicyk8s.io/policyreports patch":                                  "internal/policyreport/controller.go write (a changed result; an edited report is written back)",
	"wgpolicyk8s.io/policyreports delete":                                 "internal/policyreport/controller.go write (no workload left to report on)",
	"wgpolicyk8s.io/clusterpolicyreports create":                          "internal/policyreport/controller.go write (server-side apply creates the report)",
	"wgpolicyk8s.io/clusterpolicyreports patch":                           "internal/policyreport/controller.go write (a changed result; an edited report is written back)",
	"wgpolicyk8s.io/clusterpolicyreports delete":                          "internal/policyreport/controller.go write (no workload left to report on)",
	"openreports.io/reports create":                                       "internal/policyreport/controller.go write (server-side apply creates the report)",
	"openreports.io/reports patch":                                        "internal/policyreport/controller.go write (a changed result; an edited report is written back)",
	"openreports.io/reports delete":                                       "internal/policyreport/controller.go write (no workload left to report on)",
	"openreports.io/clusterreports create":                                "internal/policyreport/controller.go write (server-side apply creates the report)",
	"openreports.io/clusterreports patch":                                 "internal/policyreport/controller.go write (a changed result; an edited report is written back)",
	"openreports.io/clusterreports delete":                                "internal/policyreport/controller.go write (no workload left to report on)",
	"velero.io/schedules create":                                          "internal/safeguard/backup.go ensureSchedule (server-side apply creates)",
	"velero.io/schedules patch":                                           "internal/safeguard/backup.go ensureSchedule",
	"velero.io/schedules delete":                                          "internal/safeguard/backup.go removeSchedules and Finalize (never Backups)",
	"velero.io/restores create":                                           "internal/safeguard/backup_drill.go startDrill: a restore drill's Restore",
	"velero.io/restores patch":                                            "internal/safeguard/backup_drill.go finishDrill: the drill's result, as annotations",
	"velero.io/restores delete":                                           "internal/safeguard/backup_drill.go pruneDrills: drills past the newest five (never Backups)",
	"/namespaces create":                                                  "internal/safeguard/backup_drill.go startDrill: a restore drill's scratch namespace (phiguard-drill-<hash>)",
	"/namespaces delete":                                                  "internal/safeguard/backup_drill.go deleteDrillNamespace: only phiguard's labelled scratch namespace of the workload",
	"/namespaces patch":                                                   "internal/controller/namespacelabel.go Reconcile: server-side apply of the phiguard.io/holds-ephi label, what the fail-closed webhooks select",
	"admissionregistration.k8s.io/validatingwebhookconfigurations update": "internal/certs Rotate: the rotated CA into caBundle",
	"admissionregistration.k8s.io/mutatingwebhookconfigurations update":   "internal/certs Rotate: the rotated CA into caBundle",
	"authentication.k8s.io/tokenreviews create":                           "cmd/main.go: authenticated metrics (filters.WithAuthenticationAndAuthorization)",
	"authorization.k8s.io/subjectaccessreviews create":                    "cmd/main.go: authorised metrics",
	// The namespaced Role, in phiguard-system only.
	"/events create":                    "leader election's Events about the Lease (core/v1)",
	"/events patch":                     "leader election's Event series",
	"/secrets update":                   "internal/certs Rotate: writes the CA and serving certificate into the webhook Secret",
	"/secrets create":                   "internal/evidence/keys.go EnsureSigner: the evidence signing key, created once",
	"/configmaps create":                "internal/evidence/keys.go Publish: the evidence trail's sink and public keys (phiguard-evidence)",
	"/configmaps patch":                 "internal/evidence/keys.go Publish: a new key or sink published",
	"coordination.k8s.io/leases create": "leader election (cmd/main.go --leader-elect)",
	"coordination.k8s.io/leases update": "leader election: renewing the Lease",
}

var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}

func TestManagerPermissionsAreLeastPrivilege(t *testing.T) {
	granted := grantedWrites(t, readRoles(t, filepath.Join("..", "..", "config", "rbac", "role.yaml")))
	if len(granted) == 0 {
		t.Fatal("no write permission found: the role file was not read")
	}
	for p := range granted {
		if _, ok := writes[p]; !ok {
			t.Errorf("the manager may %q, which no code here is listed as needing: remove the marker, or list the code that needs it", p)
		}
	}
	for p, why := range writes {
		if !granted[p] {
			t.Errorf("listed %q (%s) is no longer granted: remove it from the list", p, why)
		}
	}
}

// grantedWrites returns the write permissions of the roles, failing the test
// on a wildcard, on Secrets in a ClusterRole, and on a Role outside
// phiguard's namespace.
func grantedWrites(t *testing.T, roles []role) map[string]bool {
	t.Helper()
	granted := map[string]bool{}
	for _, r := range roles {
		if r.kind == "Role" && r.namespace != "phiguard-system" {
			t.Errorf("Role %s is in namespace %q, not phiguard's own", r.name, r.namespace)
		}
		for _, rule := range r.rules {
			if wildcard(rule) {
				t.Errorf("%s %s grants a wildcard: %+v", r.kind, r.name, rule)
			}
			if r.kind == "ClusterRole" && slices.Contains(rule.Resources, "secrets") {
				t.Errorf("ClusterRole %s reaches Secrets in every namespace: %+v", r.name, rule)
			}
			for _, group := range rule.APIGroups {
				for _, resource := range rule.Resources {
					for _, verb := range rule.Verbs {
						if slices.Contains(writeVerbs, verb) {
							granted[group+"/"+resource+" "+verb] = true
						}
					}
				}
			}
		}
	}
	return granted
}

func wildcard(rule rbacv1.PolicyRule) bool {
	for _, field := range [][]string{rule.APIGroups, rule.Resources, rule.Verbs, rule.ResourceNames} {
		if slices.Contains(field, "*") {
			return true
		}
	}
	return false
}

// TestNoRoleGrantsWildcards covers the hand-written roles for people and
// Prometheus too.
func TestNoRoleGrantsWildcards(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "config", "rbac", "*role*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no role files: %v", err)
	}
	for _, f := range files {
		for _, r := range readRoles(t, f) {
			for _, rule := range r.rules {
				if wildcard(rule) {
					t.Errorf("%s: %s %s grants a wildcard: %+v", f, r.kind, r.name, rule)
				}
			}
		}
	}
}

type role struct {
	kind, name, namespace string
	rules                 []rbacv1.PolicyRule
}

func readRoles(t *testing.T, path string) []role {
	t.Helper()
	data, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		t.Fatal(err)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var out []role
	for {
		var obj struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
			Rules []rbacv1.PolicyRule `json:"rules"`
		}
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if strings.HasSuffix(obj.Kind, "Role") {
			out = append(out, role{kind: obj.Kind, name: obj.Metadata.Name, namespace: obj.Metadata.Namespace, rules: obj.Rules})
		}
	}
}
