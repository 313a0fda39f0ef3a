package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/objectlock"
	"github.com/phiguard/phiguard/internal/optionalapi"
	"github.com/phiguard/phiguard/internal/safeguard"
	"github.com/phiguard/phiguard/internal/storageclass"
)

// fixInput is what a fix is written from: the workload and one condition of
// its status.
type fixInput struct {
	// workload is the PHIWorkload explained.
	workload *phiguardv1alpha1.PHIWorkload
	// safeguard is the safeguard whose condition it is; empty for Ready and Stalled.
	safeguard phiguardv1alpha1.SafeguardName
	// specification is Required or Addressable under the PHIPolicy's
	// ruleset, as status.safeguards says; empty when it does not.
	specification phiguardv1alpha1.Specification
	// mode is the safeguard's effective mode, as status.safeguards says;
	// empty when it does not.
	mode phiguardv1alpha1.Mode
	// message is the condition's message: fixes take the names of the
	// objects at fault from it where it gives them.
	message string
}

// fixes says, for every reason a condition carries when it does not hold,
// what to do about it, with the workload's own names. A reason without an
// entry needs no fix: the safeguard holds, or it only names an Event. The
// test of this table reads api/v1alpha1/reasons.go and fails when a reason
// that can mean "does not hold" has no entry.
var fixes = map[string]func(in fixInput) string{
	// A reconcile that could not finish (on Ready).
	phiguardv1alpha1.ReasonFinalizerFailed: func(in fixInput) string {
		return fmt.Sprintf("phiguard could not add its finalizer to PHIWorkload %s and retries with backoff; the message is the error "+
			"(often RBAC or a webhook refusing the update): read the manager's log (%s)", in.ref(), managerLogs)
	},
	phiguardv1alpha1.ReasonReadFailed: func(in fixInput) string {
		return fmt.Sprintf("phiguard could not read the PHIPolicy, the pods or the objects around them and retries with backoff; "+
			"the message is the error: read the manager's log (%s) and check its RBAC", managerLogs)
	},
	phiguardv1alpha1.ReasonFinalizationFailed: func(in fixInput) string {
		return fmt.Sprintf("the workload is being deleted and phiguard could not remove what it keeps outside the namespace "+
			"(Velero Schedule %s); it retries until it can: read the manager's log (%s)", safeguard.ScheduleName(in.workload), managerLogs)
	},
	phiguardv1alpha1.ReasonEvaluationError: func(in fixInput) string {
		return fmt.Sprintf("phiguard hit an error evaluating %s and retries with backoff; the message is the error. "+
			"If it persists, read the manager's log (%s) and check that its RBAC lets it read and write what %s needs",
			in.safeguard, managerLogs, in.safeguard)
	},

	// The spec cannot be acted on (Stalled, and each safeguard not evaluated).
	phiguardv1alpha1.ReasonInvalidSchedule: func(in fixInput) string {
		return "give backup.schedule a five-field cron expression: " +
			in.patchBackup("schedule", "0 2 * * *") +
			" (or set it to null for the built-in schedule, or correct the PHIPolicy's spec.defaults.backup.schedule when it comes from there)"
	},
	phiguardv1alpha1.ReasonInvalidSelector: func(in fixInput) string {
		return fmt.Sprintf("correct spec.selector (matchLabels, or matchExpressions with operator In, NotIn, Exists or DoesNotExist): %s",
			in.editWorkload())
	},
	phiguardv1alpha1.ReasonInvalidDuration: func(in fixInput) string {
		field := "rpo"
		if m := submatch(`backup\.(ttl|rpo) is`, in.message); m != nil {
			field = m[1]
		}
		return fmt.Sprintf("give backup.%s a positive duration such as 720h, or remove it for the built-in default: %s",
			field, in.patchBackup(field, nil))
	},
	phiguardv1alpha1.ReasonNamespaceExempt: func(in fixInput) string {
		return fmt.Sprintf("namespace %s is exempt from phiguard (built in, or in PHIPolicy spec.exemptNamespaces): move the PHIWorkload "+
			"and its pods to a namespace phiguard acts on, or remove %s from spec.exemptNamespaces (kubectl edit phipolicy default)",
			in.workload.Namespace, in.workload.Namespace)
	},

	// Safeguards not evaluated, or off.
	phiguardv1alpha1.ReasonNoPodsSelected: func(in fixInput) string {
		if in.workload.Spec.NamespaceWide {
			return fmt.Sprintf("namespace %s has no running pod yet; nothing to do until it has (kubectl -n %s get pods)",
				in.workload.Namespace, in.workload.Namespace)
		}
		return fmt.Sprintf("spec.selector (%s) matches no pod: compare it with the pods' labels (%s; %s), "+
			"then correct spec.selector (%s) or label the pods",
			in.selector(), in.kubectl("get pods -l %s", shellQuote(in.selector())), in.kubectl("get pods --show-labels"), in.editWorkload())
	},
	phiguardv1alpha1.ReasonDecisionExpired: func(in fixInput) string {
		return fmt.Sprintf("review the decision: to keep %s off, renew it by setting spec.decisions[safeguard=%s].expires to the next review "+
			"(at most the PHIPolicy's decisions.maxLifetime ahead, one year by default) and approvedBy to who approved the review (%s); "+
			"or turn %s back on: %s", in.safeguard, in.safeguard, in.editWorkload(), in.safeguard, in.turnOn(phiguardv1alpha1.ModeEnforce))
	},
	phiguardv1alpha1.ReasonDecisionMissing: func(in fixInput) string {
		return fmt.Sprintf("turn %s back on: %s; or, to keep it off, %s", in.safeguard, in.setMode(phiguardv1alpha1.ModeEnforce), in.recordDecision())
	},
	phiguardv1alpha1.ReasonRequiredSafeguardOff: func(in fixInput) string {
		return fmt.Sprintf("%s is Required and no decision can turn it off: set its mode to Audit (reports, changes nothing) or Enforce: %s",
			in.safeguard, in.turnOn(phiguardv1alpha1.ModeAudit))
	},
	phiguardv1alpha1.ReasonDecisionNotRecognised: func(in fixInput) string {
		return fmt.Sprintf("the PHIPolicy's ruleset makes every safeguard Required, so no decision counts: set %s's mode to Audit "+
			"(or Enforce) and remove its decision: %s", in.safeguard, in.turnOn(phiguardv1alpha1.ModeAudit))
	},

	// Optional APIs.
	phiguardv1alpha1.ReasonVeleroNotInstalled: func(in fixInput) string {
		if strings.Contains(in.message, "namespace") && strings.Contains(in.message, "does not exist") {
			return fmt.Sprintf("Velero's CRDs are installed but not its namespace: install Velero there, or point backup.veleroNamespace "+
				"at where it runs (kubectl get deployments -A -l component=velero finds it): %s",
				in.patchBackup("veleroNamespace", "<namespace>"))
		}
		return apiFix(optionalapi.Velero, in)
	},
	phiguardv1alpha1.ReasonIstioNotInstalled: func(in fixInput) string { return apiFix(optionalapi.Istio, in) },
	phiguardv1alpha1.ReasonPrometheusOperatorNotInstalled: func(in fixInput) string {
		return apiFix(optionalapi.PrometheusOperator, in)
	},
	phiguardv1alpha1.ReasonGatewayAPINotInstalled: func(in fixInput) string { return apiFix(optionalapi.GatewayAPI, in) },

	// NetworkIsolated.
	phiguardv1alpha1.ReasonPodsNotIsolated: func(in fixInput) string {
		return fmt.Sprintf("let phiguard isolate the pods: %s (it keeps NetworkPolicy %s: default-deny both ways, plus what "+
			"spec.networkIsolation allows and DNS); or apply default-deny NetworkPolicies of your own selecting them, with policyTypes Ingress and Egress",
			in.setMode(phiguardv1alpha1.ModeEnforce), safeguard.NetworkPolicyName(in.workload.Name))
	},
	phiguardv1alpha1.ReasonIsolationBypassed: func(in fixInput) string {
		policy := "the NetworkPolicy the message names"
		if m := submatch(`NetworkPolicy ([^/\s]+)/(\S+) opens`, in.message); m != nil {
			policy = fmt.Sprintf("NetworkPolicy %s (kubectl -n %s get networkpolicy %s -o yaml)", m[2], m[1], m[2])
		}
		return fmt.Sprintf("NetworkPolicies add up, so one that selects the pods opens them however phiguard's is written: narrow or delete %s; "+
			"or, if that traffic is intended, declare it in spec.networkIsolation.ingress or egress (%s)", policy, in.editWorkload())
	},
	phiguardv1alpha1.ReasonPolicyNameTaken: func(in fixInput) string {
		name := safeguard.NetworkPolicyName(in.workload.Name)
		return fmt.Sprintf("NetworkPolicy %s is not phiguard's: check what it allows (%s), then re-create it under another name or delete it "+
			"(%s) so that phiguard can create its own", name, in.kubectl("get networkpolicy %s -o yaml", name), in.kubectl("delete networkpolicy %s", name))
	},

	// EncryptedAtRest.
	phiguardv1alpha1.ReasonUnencryptedVolumes: func(in fixInput) string {
		out := "a claim's StorageClass cannot change in place: move the data of each claim the message names to a new claim of an " +
			"encrypted StorageClass (kubectl get storageclass)"
		if classes := submatches(`class ([^\s:]+):`, in.message); len(classes) > 0 {
			out += fmt.Sprintf(". If class %s does encrypt and phiguard cannot tell, say so: kubectl annotate storageclass %s %s=true "+
				"(or list it in PHIPolicy spec.storage.encryptedStorageClasses)",
				strings.Join(classes, ", "), classes[0], storageclass.EncryptedAnnotation)
		}
		if in.decisionAllowed() {
			out += "; or, if another measure protects the data, " + in.recordDecision()
		}
		return out
	},
	phiguardv1alpha1.ReasonClaimMissing: func(in fixInput) string {
		return fmt.Sprintf("create the claims the message names, with an encrypted StorageClass, or remove those volumes from the pod "+
			"template (%s lists the claims that exist)", in.kubectl("get pvc"))
	},
	phiguardv1alpha1.ReasonHostPathVolume: func(in fixInput) string {
		return "replace each hostPath volume the message names with a persistentVolumeClaim of an encrypted StorageClass " +
			"in the pod template (spec.template.spec.volumes of its Deployment or StatefulSet)"
	},

	// BackupScheduled.
	phiguardv1alpha1.ReasonBackupStale: func(in fixInput) string {
		sched := in.schedule()
		return fmt.Sprintf("take a backup now (%s), then find why the schedule stopped producing them (%s; %s)",
			in.velero("backup create --from-schedule %s", sched), in.velero("schedule describe %s", sched),
			in.velero("backup get --selector velero.io/schedule-name=%s", sched))
	},
	phiguardv1alpha1.ReasonBackupFailed: func(in fixInput) string {
		backup := "<backup>"
		if m := submatch("velero backup describe ([^`\\s]+)", in.message); m != nil {
			backup = m[1]
		}
		return fmt.Sprintf("find why backup %s failed (%s; %s), fix the cause, then take a new one: %s", backup,
			in.velero("backup describe %s --details", backup), in.velero("backup logs %s", backup),
			in.velero("backup create --from-schedule %s", in.schedule()))
	},
	phiguardv1alpha1.ReasonScheduleMissing: func(in fixInput) string {
		sched := fmt.Sprintf("schedule create %s --schedule '0 2 * * *' --include-namespaces %s", in.workload.Name, in.workload.Namespace)
		if sel := in.selector(); sel != "" {
			sched += " --selector " + shellQuote(sel)
		}
		return fmt.Sprintf("let phiguard keep Velero Schedule %s: %s; or create a Schedule of your own that backs up the workload: %s",
			safeguard.ScheduleName(in.workload), in.setMode(phiguardv1alpha1.ModeEnforce), in.velero("%s", sched))
	},
	phiguardv1alpha1.ReasonStorageLocationMissing: func(in fixInput) string {
		if m := submatch(`BackupStorageLocation (\S+) does not exist`, in.message); m != nil {
			return fmt.Sprintf("create BackupStorageLocation %s (velero backup-location create %s --provider ... --bucket ...), or name one that "+
				"exists (%s): %s", m[1], m[1], in.velero("backup-location get"),
				in.patchBackup("storageLocation", locationPlaceholder))
		}
		return fmt.Sprintf("mark a BackupStorageLocation default (%s; %s), or name one in backup.storageLocation: %s",
			in.velero("backup-location get"), in.velero("backup-location set %s --default", locationPlaceholder),
			in.patchBackup("storageLocation", locationPlaceholder))
	},
	phiguardv1alpha1.ReasonStorageLocationUnavailable: func(in fixInput) string {
		loc := in.location()
		return fmt.Sprintf("Velero cannot write to BackupStorageLocation %s: check its bucket, region and credentials Secret, and Velero's "+
			"log (%s; kubectl -n %s logs deployment/velero); it turns Available once Velero validates it",
			loc, in.velero("backup-location get %s", loc), in.veleroNamespace())
	},
	phiguardv1alpha1.ReasonStorageLocationUnencrypted: func(in fixInput) string {
		loc := in.location()
		how := "a storage account with customer-managed keys (azure)"
		switch {
		case strings.Contains(in.message, "serverSideEncryption"):
			how = fmt.Sprintf("kubectl -n %s patch backupstoragelocation %s --type merge -p '{\"spec\":{\"config\":{\"serverSideEncryption\":\"AES256\"}}}' (aws; or config.kmsKeyId)",
				in.veleroNamespace(), loc)
		case strings.Contains(in.message, "kmsKeyName"):
			how = fmt.Sprintf("kubectl -n %s patch backupstoragelocation %s --type merge -p '{\"spec\":{\"config\":{\"kmsKeyName\":\"<key>\"}}}' (gcp)",
				in.veleroNamespace(), loc)
		}
		return fmt.Sprintf("declare encryption at rest on BackupStorageLocation %s: %s; or accept the provider's default encryption for "+
			"every workload: kubectl patch phipolicy default --type merge -p '{\"spec\":{\"backup\":{\"acceptProviderDefaultEncryption\":true}}}'",
			loc, how)
	},
	phiguardv1alpha1.ReasonStorageEncryptionUnknown: func(in fixInput) string {
		return fmt.Sprintf("phiguard judges only the aws, gcp and azure providers' config, so it cannot say whether BackupStorageLocation %s "+
			"encrypts: confirm the store encrypts at rest and keep that evidence, or back up to a location of a provider phiguard judges "+
			"(backup.storageLocation)", in.location())
	},
	phiguardv1alpha1.ReasonStorageLocationMutable: func(in fixInput) string {
		return fmt.Sprintf("make the bucket of BackupStorageLocation %s keep every backup for at least its ttl: enable versioning and "+
			"Object Lock with a default retention in COMPLIANCE mode at least as long as backup.ttl (aws s3api "+
			"put-object-lock-configuration --bucket <bucket> --object-lock-configuration "+
			"'{\"ObjectLockEnabled\":\"Enabled\",\"Rule\":{\"DefaultRetention\":{\"Mode\":\"COMPLIANCE\",\"Years\":6}}}'); "+
			"Object Lock can be enabled only on a versioned bucket, and some stores only when the bucket is created: then move the "+
			"backups to a new locked bucket (a new BackupStorageLocation, backup.storageLocation)", in.location())
	},
	phiguardv1alpha1.ReasonStorageImmutabilityUnknown: func(in fixInput) string {
		return fmt.Sprintf("give phiguard read-only credentials for the bucket of BackupStorageLocation %s: a Secret in phiguard's "+
			"namespace with keys accessKeyID and secretAccessKey (kubectl -n phiguard-system create secret generic <name> "+
			"--from-literal=accessKeyID=... --from-literal=secretAccessKey=...), named by PHIPolicy backup.locationCredentials, whose "+
			"user may %s on the bucket, which the manager can reach", in.location(), objectlock.Permissions)
	},
	phiguardv1alpha1.ReasonRestoreFailed: func(in fixInput) string {
		drill := "<restore>"
		if m := submatch(`restore drill (\S+) of backup`, in.message); m != nil {
			drill = m[1]
		}
		out := fmt.Sprintf("find why the restore drill failed (%s), fix the cause, and take a new backup: %s; phiguard drills the next "+
			"completed backup at once", in.velero("restore describe %s --details", drill), in.velero("backup create --from-schedule %s", in.schedule()))
		if strings.Contains(in.message, "holds none") || strings.Contains(in.message, "did not come back") {
			out += fmt.Sprintf("; the workload's backups hold what its selector (%s) matches: label its Deployments, StatefulSets, "+
				"Services, ConfigMaps, claims and ServiceAccounts as its pods are", in.selector())
		}
		return out
	},
	phiguardv1alpha1.ReasonAwaitingFirstBackup: func(in fixInput) string {
		return fmt.Sprintf("nothing to do but wait for the schedule's first backup (the message says by when); to have it judged now, "+
			"take one: %s", in.velero("backup create --from-schedule %s", in.schedule()))
	},

	// AuditLogging.
	phiguardv1alpha1.ReasonPodsWithoutSidecar: func(in fixInput) string {
		out := ""
		if in.mode != phiguardv1alpha1.ModeEnforce {
			out = fmt.Sprintf("phiguard injects the sidecar only in Enforce: %s; then ", in.setMode(phiguardv1alpha1.ModeEnforce))
		}
		out += fmt.Sprintf("re-create the pods the message names so that they get it: %s for each of their owners, or let phiguard "+
			"restart them: %s", in.kubectl("rollout restart deployment/<name>"),
			in.patchWorkload(map[string]any{"auditLogging": map[string]any{modeField: phiguardv1alpha1.ModeEnforce, "restartNonCompliant": true}}))
		if strings.Contains(in.message, "opted out") {
			out += fmt.Sprintf("; a pod annotated %s=false never gets it: remove the annotation from its template",
				safeguard.AuditOptOutAnnotation)
		}
		return out
	},

	// IntegrityProtected.
	phiguardv1alpha1.ReasonContainersMutable: func(in fixInput) string {
		out := "in the pod template of each pod the message names, give every container securityContext: {runAsNonRoot: true, " +
			"allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}, seccompProfile: " +
			"{type: RuntimeDefault}} (mount an emptyDir where the program writes)"
		if strings.Contains(in.message, "digest") {
			out += fmt.Sprintf(", and pin each image by digest (image@sha256:...; the digest a pod runs is in %s)",
				in.kubectl("get pod <pod> -o jsonpath='{.status.containerStatuses[*].imageID}'"))
		}
		return out
	},

	// Available.
	phiguardv1alpha1.ReasonNoReplicatedOwner: func(in fixInput) string {
		return "run the pods the message names from a Deployment or StatefulSet of at least availability.minReplicas replicas, " +
			"not as bare pods or a Job's or DaemonSet's"
	},
	phiguardv1alpha1.ReasonTooFewReplicas: func(in fixInput) string {
		least := "<minReplicas>"
		if m := submatch(`availability\.minReplicas (\d+)`, in.message); m != nil {
			least = m[1]
		}
		// Only the replica finding names owners with their replicas
		// ("Deployment records (1 replica)"); the message's other findings
		// name them too ("(all 1 selected pods on node ...)").
		var cmds []string
		for _, m := range regexp.MustCompile(`(Deployment|StatefulSet) (\S+) \(([^)]*)\)`).FindAllStringSubmatch(in.message, -1) {
			cmd := in.kubectl("scale %s/%s --replicas=%s", strings.ToLower(m[1]), m[2], least)
			if hpa := submatch(`HorizontalPodAutoscaler (\S+)$`, m[3]); hpa != nil {
				cmd = in.kubectl("patch hpa %s --type merge -p '{\"spec\":{\"minReplicas\":%s}}'", hpa[1], least)
			} else if !regexp.MustCompile(`^\d+ replicas?\b`).MatchString(m[3]) {
				continue
			}
			if !slices.Contains(cmds, cmd) {
				cmds = append(cmds, cmd)
			}
		}
		if len(cmds) == 0 {
			cmds = append(cmds, in.kubectl("scale deployment/<name> --replicas=%s", least))
		}
		return fmt.Sprintf("run at least %s replicas: %s; and set the same in the manifests (spec.replicas, or the "+
			"HorizontalPodAutoscaler's minReplicas), or the next apply undoes it", least, strings.Join(cmds, "; "))
	},
	phiguardv1alpha1.ReasonDisruptionBudgetNameTaken: func(in fixInput) string {
		name := safeguard.DisruptionBudgetName(in.workload.Name)
		return fmt.Sprintf("PodDisruptionBudget %s is not phiguard's and covers none of the pods: re-create it under another name or "+
			"delete it (%s) so that phiguard can generate its own", name, in.kubectl("delete pdb %s", name))
	},
	phiguardv1alpha1.ReasonNoDisruptionBudget: func(in fixInput) string {
		if m := submatch(`PodDisruptionBudget (.+?) covers the others`, in.message); m != nil {
			first, _, _ := strings.Cut(m[1], ", ")
			return fmt.Sprintf("widen the selector of PodDisruptionBudget %s to cover the pods the message names (a pod matched by "+
				"two budgets cannot be evicted at all, so phiguard adds none beside it): %s", m[1], in.kubectl("edit pdb %s", first))
		}
		name := safeguard.DisruptionBudgetName(in.workload.Name)
		if in.mode == phiguardv1alpha1.ModeEnforce {
			return fmt.Sprintf("phiguard generates PodDisruptionBudget %s on its next pass; if it does not appear, read the manager's log (%s)",
				name, managerLogs)
		}
		create := "create pdb " + in.workload.Name + " --max-unavailable=1"
		if sel := in.selector(); sel != "" {
			create += " --selector=" + shellQuote(sel)
		}
		return fmt.Sprintf("let phiguard keep PodDisruptionBudget %s: %s; or create one: %s", name,
			in.setMode(phiguardv1alpha1.ModeEnforce), in.kubectl("%s", create))
	},
	phiguardv1alpha1.ReasonOverlappingDisruptionBudgets: func(in fixInput) string {
		return fmt.Sprintf("keep one PodDisruptionBudget per pod: delete or narrow the extra budgets the message names (%s)",
			in.kubectl("get pdb -o wide"))
	},
	phiguardv1alpha1.ReasonPodsOnOneNode: func(in fixInput) string {
		return "spread each owner's pods: add to its pod template topologySpreadConstraints: [{maxSkew: 1, topologyKey: " +
			"kubernetes.io/hostname, whenUnsatisfiable: ScheduleAnyway, labelSelector: {matchLabels: <the pods' labels>}}] " +
			"(or a podAntiAffinity on kubernetes.io/hostname); where the template declares one already, delete one pod so that " +
			"the scheduler places it again"
	},
	phiguardv1alpha1.ReasonOwnerNotFound: func(in fixInput) string {
		return fmt.Sprintf("usually passing (an owner being created or deleted); if it stays, check the pods' owners: %s",
			in.kubectl("get pods %s-o custom-columns=NAME:.metadata.name,OWNER:.metadata.ownerReferences[0].name", in.podsFlag()))
	},
	phiguardv1alpha1.ReasonPodsNotScheduled: func(in fixInput) string {
		return fmt.Sprintf("wait for the scheduler to place the pods (%s shows their nodes), or declare a spread "+
			"(topologySpreadConstraints on kubernetes.io/hostname) in the pod template so that it can be judged now",
			in.kubectl("get pods %s-o wide", in.podsFlag()))
	},

	// TransmissionSecure.
	phiguardv1alpha1.ReasonIngressWithoutTLS: func(in fixInput) string {
		target := "each Ingress the message names"
		hosts := "<host>"
		if m := submatch(`Ingress (\S+) serves host (\S+)`, in.message); m != nil {
			target = fmt.Sprintf("Ingress %s (%s)", m[1], in.kubectl("edit ingress %s", m[1]))
			hosts = m[2]
		} else if m := submatch(`Ingress (\S+) `, in.message); m != nil {
			target = fmt.Sprintf("Ingress %s (%s)", m[1], in.kubectl("edit ingress %s", m[1]))
		}
		return fmt.Sprintf("terminate TLS for every host: in %s add spec.tls: [{hosts: [%s], secretName: <a kubernetes.io/tls Secret>}] "+
			"(cert-manager can issue it); give rules without a host a host, and drop a spec.defaultBackend to the pods", target, hosts)
	},
	phiguardv1alpha1.ReasonRouteOnPlainListener: func(in fixInput) string {
		route := "each route the message names"
		if m := submatch(`(HTTPRoute|GRPCRoute) ([^/\s]+)/(\S+)`, in.message); m != nil {
			route = fmt.Sprintf("%s %s (kubectl -n %s edit %s %s)", m[1], m[3], m[2], strings.ToLower(m[1]), m[3])
		}
		return fmt.Sprintf("attach %s only to HTTPS or TLS listeners: set parentRefs[].sectionName to such a listener, "+
			"or give the Gateway's listener protocol HTTPS with tls.certificateRefs", route)
	},
	phiguardv1alpha1.ReasonServiceExposedWithoutTLS: func(in fixInput) string {
		svc := "each Service the message names"
		if m := submatch(`Service (\S+) \((?:LoadBalancer|NodePort|externalIPs)\) exposes`, in.message); m != nil {
			svc = fmt.Sprintf("Service %s (%s)", m[1], in.kubectl("edit service %s", m[1]))
		}
		return fmt.Sprintf("in %s, serve TLS on each exposed port and declare it with appProtocol (such as https); or make it "+
			"type ClusterIP and expose the pods through an Ingress or Gateway that terminates TLS", svc)
	},
	phiguardv1alpha1.ReasonPeerAuthenticationPermissive: func(in fixInput) string {
		out := fmt.Sprintf("remove the PERMISSIVE or DISABLE PeerAuthentications and port-level overrides the message names (%s)",
			in.kubectl("get peerauthentication"))
		if in.mode != phiguardv1alpha1.ModeEnforce {
			out = fmt.Sprintf("let phiguard apply PeerAuthentication %s (mtls.mode STRICT): %s; and %s",
				safeguard.PeerAuthenticationName(in.workload), in.setMode(phiguardv1alpha1.ModeEnforce), out)
		}
		return out
	},
	phiguardv1alpha1.ReasonPeerAuthenticationNameTaken: func(in fixInput) string {
		name := safeguard.PeerAuthenticationName(in.workload)
		return fmt.Sprintf("PeerAuthentication %s is not phiguard's: re-create it under another name or delete it (%s) so that phiguard "+
			"can apply its own", name, in.kubectl("delete peerauthentication %s", name))
	},
	phiguardv1alpha1.ReasonPodsOutsideMesh: func(in fixInput) string {
		ns := in.workload.Namespace
		return fmt.Sprintf("put the pods in the mesh: kubectl label namespace %s istio-injection=enabled, then %s for each of their "+
			"owners; or enrol them in ambient mode: kubectl label namespace %s istio.io/dataplane-mode=ambient",
			ns, in.kubectl("rollout restart deployment/<name>"), ns)
	},
	phiguardv1alpha1.ReasonNoInClusterEncryption: func(in fixInput) string {
		out := "encrypt the pods' traffic inside the cluster: install a mesh with mTLS (Istio, then a STRICT PeerAuthentication, " +
			"which transmissionSecurity.mode Enforce applies; or Linkerd), or serve TLS from the pods and declare it on every " +
			"port of their Services with appProtocol (such as https)"
		if in.decisionAllowed() {
			out += "; if the traffic is protected another way, " + in.recordDecision()
		}
		return out
	},
	phiguardv1alpha1.ReasonRouteParentNotJudged: func(in fixInput) string {
		return "phiguard reads only Gateways as a route's parent: attach the route the message names to an HTTPS or TLS listener " +
			"of a Gateway, or confirm yourself that its parent terminates TLS (the safeguard stays Unknown)"
	},

	// AccessControlled.
	phiguardv1alpha1.ReasonExcessivePrivilege: func(in fixInput) string {
		out := "narrow the Roles and ClusterRoles the message names to what the pods need, or remove their bindings"
		if sa := in.serviceAccount(); sa != "" {
			out += fmt.Sprintf("; see what ServiceAccount %s may do: kubectl auth can-i --list -n %s --as=system:serviceaccount:%s:%s",
				sa, in.workload.Namespace, in.workload.Namespace, sa)
		}
		return out
	},
	phiguardv1alpha1.ReasonServiceAccountMissing: func(in fixInput) string {
		sa := cmp.Or(in.serviceAccount(), "<name>")
		return fmt.Sprintf("create the ServiceAccount (%s), or point the pod template's serviceAccountName at one that exists",
			in.kubectl("create serviceaccount %s", sa))
	},
	phiguardv1alpha1.ReasonDefaultServiceAccount: func(in fixInput) string {
		return fmt.Sprintf("run the pods as a ServiceAccount of their own: %s; then %s (or set spec.template.spec.serviceAccountName "+
			"in its manifest)", in.kubectl("create serviceaccount %s", in.workload.Name),
			in.kubectl("set serviceaccount deployment/<name> %s", in.workload.Name))
	},
	phiguardv1alpha1.ReasonSharedServiceAccount: func(in fixInput) string {
		return fmt.Sprintf("give the workload's pods a ServiceAccount no other pod uses: %s; then %s (or set "+
			"spec.template.spec.serviceAccountName in its manifest)", in.kubectl("create serviceaccount %s", in.workload.Name),
			in.kubectl("set serviceaccount deployment/<name> %s", in.workload.Name))
	},
	phiguardv1alpha1.ReasonTokenMounted: func(in fixInput) string {
		sa := cmp.Or(in.serviceAccount(), "<name>")
		return fmt.Sprintf("stop mounting the token: %s, set automountServiceAccountToken: false in the pod template too (it "+
			"overrides the ServiceAccount's) and remove projected serviceAccountToken volumes; or, if the pods call the Kubernetes API, "+
			"allow it: %s", in.kubectl("patch serviceaccount %s -p '{\"automountServiceAccountToken\":false}'", sa),
			in.patchWorkload(map[string]any{"accessControl": map[string]any{"allowTokenAutomount": true}}))
	},
}

// fixedEvenWhenHolding are reasons that need a fix even on a condition that
// holds: DecisionNotRecognised is True when the run in Audit finds nothing
// wrong, yet the workload still turns the safeguard off against its ruleset.
var fixedEvenWhenHolding = []string{phiguardv1alpha1.ReasonDecisionNotRecognised}

// fixFor returns what to do about a condition with reason, or "" when
// nothing needs fixing: it holds (a safeguard's or Ready's condition is
// True, Stalled is not), or the reason has no fix.
func fixFor(holds bool, reason string, in fixInput) string {
	if holds && !slices.Contains(fixedEvenWhenHolding, reason) {
		return ""
	}
	f := fixes[reason]
	if f == nil {
		return ""
	}
	fix := f(in)
	for _, also := range alsoFound {
		if also.reason != reason && strings.Contains(in.message, also.marker) {
			fix += "; also " + fixes[also.reason](in)
		}
	}
	return fix
}

// alsoFound are findings a condition's message can hold besides the one its
// reason names (Available reports every finding, under the first one's
// reason), each recognised by a marker in the safeguard's message: their
// fixes follow the reason's own.
var alsoFound = []struct{ reason, marker string }{
	{phiguardv1alpha1.ReasonNoDisruptionBudget, "covered by no PodDisruptionBudget"},
	{phiguardv1alpha1.ReasonPodsOnOneNode, "every selected pod on one node"},
}

// managerLogs is the command that shows phiguard's manager's log, as the
// chart and config/default install it.
const managerLogs = "kubectl -n phiguard-system logs deployment/phiguard-controller-manager"

// ref is the workload's namespace/name.
func (in fixInput) ref() string { return in.workload.Namespace + "/" + in.workload.Name }

// kubectl is a kubectl command line in the workload's namespace.
func (in fixInput) kubectl(format string, args ...any) string {
	return "kubectl -n " + in.workload.Namespace + " " + fmt.Sprintf(format, args...)
}

// editWorkload is the command that opens the workload in an editor.
func (in fixInput) editWorkload() string {
	return in.kubectl("edit phiw %s", in.workload.Name)
}

// patchWorkload is the command that merges spec into the workload's spec.
func (in fixInput) patchWorkload(spec map[string]any) string {
	return in.kubectl("patch phiw %s --type merge -p %s", in.workload.Name, shellQuote(mustJSON(map[string]any{"spec": spec})))
}

// patchBackup is the command that sets the field of the workload's backup
// block to value (null removes it).
func (in fixInput) patchBackup(field string, value any) string {
	return in.patchWorkload(map[string]any{"backup": map[string]any{field: value}})
}

// modeField is the JSON name of the mode of each safeguard's block in the
// PHIWorkload spec.
const modeField = "mode"

// locationPlaceholder stands for a BackupStorageLocation the user names.
const locationPlaceholder = "<location>"

// jsonPatchOp is one operation of a JSON patch (RFC 6902).
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// setMode is the command that sets the safeguard's mode on the workload.
func (in fixInput) setMode(mode phiguardv1alpha1.Mode) string {
	field := settingsField(in.safeguard)
	if field == "" {
		return fmt.Sprintf("set %s's mode to %s (%s)", in.safeguard, mode, in.editWorkload())
	}
	return in.patchWorkload(map[string]any{field: map[string]any{modeField: mode}})
}

// turnOn is the command that sets the safeguard's mode and removes its
// decision, in one request (a JSON patch: spec.decisions is a list, which a
// merge patch can only replace whole); setMode when it has no decision.
func (in fixInput) turnOn(mode phiguardv1alpha1.Mode) string {
	i := slices.IndexFunc(in.workload.Spec.Decisions, func(d phiguardv1alpha1.Decision) bool { return d.Safeguard == in.safeguard })
	field := settingsField(in.safeguard)
	if i < 0 || field == "" {
		return in.setMode(mode)
	}
	// Adding a member replaces it: the block is added whole only when unset.
	set := jsonPatchOp{Op: "add", Path: "/spec/" + field + "/" + modeField, Value: mode}
	if !hasBlock(&in.workload.Spec.SafeguardSettings, in.safeguard) {
		set = jsonPatchOp{Op: "add", Path: "/spec/" + field, Value: map[string]any{modeField: mode}}
	}
	ops := []jsonPatchOp{set, {Op: "remove", Path: fmt.Sprintf("/spec/decisions/%d", i)}}
	return in.kubectl("patch phiw %s --type json -p %s", in.workload.Name, shellQuote(mustJSON(ops)))
}

// decisionAllowed says whether a decision may turn the safeguard off: it is
// Addressable under the policy's ruleset.
func (in fixInput) decisionAllowed() bool {
	return in.specification == phiguardv1alpha1.Addressable
}

// recordDecision says how to record a decision that turns the safeguard off.
func (in fixInput) recordDecision() string {
	field := cmp.Or(settingsField(in.safeguard), "<safeguard block>")
	return fmt.Sprintf("record a decision and set %s.mode: \"Off\" (%s): add to spec.decisions {safeguard: %s, kind: NotReasonable "+
		"(or Alternative, with alternativeMeasure: <what is done instead>), justification: <why, at least %d characters>, "+
		"approvedBy: <who approved it>, expires: <RFC 3339 time of the next review, at most the PHIPolicy's decisions.maxLifetime ahead>}",
		field, in.editWorkload(), in.safeguard, phiguardv1alpha1.MinJustificationLength)
}

// selector is the workload's selector as kubectl -l takes it, or "" for a
// namespace-wide workload.
func (in fixInput) selector() string {
	if in.workload.Spec.NamespaceWide {
		return ""
	}
	return metav1.FormatLabelSelector(&in.workload.Spec.Selector)
}

// podsFlag is "-l '<selector>' ", or "" for a namespace-wide workload.
func (in fixInput) podsFlag() string {
	if sel := in.selector(); sel != "" {
		return "-l " + shellQuote(sel) + " "
	}
	return ""
}

// veleroNamespace is the workload's backup.veleroNamespace, or Velero's default.
func (in fixInput) veleroNamespace() string {
	if b := in.workload.Spec.Backup; b != nil && b.VeleroNamespace != "" {
		return b.VeleroNamespace
	}
	return "velero"
}

// velero is a velero command line, for Velero's namespace when the
// workload names one other than the default.
func (in fixInput) velero(format string, args ...any) string {
	if ns := in.veleroNamespace(); ns != "velero" {
		return "velero -n " + ns + " " + fmt.Sprintf(format, args...)
	}
	return "velero " + fmt.Sprintf(format, args...)
}

// schedule is the Velero Schedule the message names, or phiguard's.
func (in fixInput) schedule() string {
	if m := submatch(`Schedule (\S+?)[\s,;]`, in.message); m != nil {
		return m[1]
	}
	return safeguard.ScheduleName(in.workload)
}

// location is the BackupStorageLocation the message names.
func (in fixInput) location() string {
	if m := submatch(`BackupStorageLocation (\S+?)[\s,;]`, in.message); m != nil {
		return m[1]
	}
	return locationPlaceholder
}

// serviceAccount is the first ServiceAccount the message names, or "".
func (in fixInput) serviceAccount() string {
	if m := submatch(`ServiceAccount ([a-z0-9][-a-z0-9.]*)`, in.message); m != nil {
		return strings.TrimSuffix(m[1], ".")
	}
	return ""
}

// apiFix says how to get an optional API served.
func apiFix(api *optionalapi.API, in fixInput) string {
	if strings.Contains(in.message, "does not serve") {
		return fmt.Sprintf("%s's CRDs are installed but not served yet; phiguard looks again within seconds. If this stays, check "+
			"the CRDs (kubectl get crd %s)", api.Name, strings.Join(api.CRDs, " "))
	}
	return api.Install + "; phiguard starts using it as soon as its CRDs appear"
}

// hasBlock says whether s sets the safeguard's block.
func hasBlock(s *phiguardv1alpha1.SafeguardSettings, name phiguardv1alpha1.SafeguardName) bool {
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("safeguard") == string(name) {
			return !v.Field(i).IsNil()
		}
	}
	return false
}

// settingsField is the JSON name of a safeguard's block in the spec (such as
// networkIsolation), read from SafeguardSettings' tags; "" for a safeguard
// without one.
func settingsField(name phiguardv1alpha1.SafeguardName) string {
	t := reflect.TypeFor[phiguardv1alpha1.SafeguardSettings]()
	for i := range t.NumField() {
		if f := t.Field(i); f.Tag.Get("safeguard") == string(name) {
			field, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			return field
		}
	}
	return ""
}

// submatch is the first match of pattern in s with its groups, or nil.
func submatch(pattern, s string) []string {
	return regexp.MustCompile(pattern).FindStringSubmatch(s)
}

// submatches is the first group of every match of pattern in s, each once,
// in order.
func submatches(pattern, s string) []string {
	var out []string
	for _, m := range regexp.MustCompile(pattern).FindAllStringSubmatch(s, -1) {
		if !slices.Contains(out, m[1]) {
			out = append(out, m[1])
		}
	}
	return out
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// mustJSON encodes v, which holds only strings, numbers, booleans, nils,
// maps and slices of them, and so cannot fail.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding %#v: %v", v, err))
	}
	return string(b)
}
