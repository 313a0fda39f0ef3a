package v1alpha1

// The reasons phiguard writes on a PHIWorkload's conditions and on the Events
// it records. They are API: dashboards, alerts and the CLI match on them, so a
// reason is never renamed once released. Each comment says on which condition
// or Event it appears and with which status; for every safeguard condition
// True means the safeguard holds (good), for Stalled and Reconciling True
// means attention is needed or work is under way.

// Reasons of the Ready and Reconciling conditions when a reconcile could not
// finish. Ready carries them with status False; the safeguards keep their last
// results, and observedGeneration does not move.
const (
	// ReasonEvaluated (Event): the one Event of a workload's first
	// evaluation, summing up every safeguard's result and every action taken;
	// afterwards, Events record only changes.
	ReasonEvaluated = "Evaluated"
	// ReasonProgressing (Reconciling True): phiguard is working on a generation
	// of the spec it has not fully evaluated yet; the condition goes away once
	// observedGeneration reaches metadata.generation.
	ReasonProgressing = "Progressing"
	// ReasonFinalizerFailed (Ready False): phiguard could not add its cleanup
	// finalizer, so it did not act; it retries with backoff.
	ReasonFinalizerFailed = "FinalizerFailed"
	// ReasonReadFailed (Ready False): phiguard could not read what the
	// safeguards judge (the PHIPolicy, the selected pods, the objects around
	// them); it retries with backoff.
	ReasonReadFailed = "ReadFailed"
	// ReasonFinalizationFailed (Ready False): the workload is being deleted and
	// a safeguard could not remove what it keeps outside the namespace; the
	// finalizer stays and phiguard retries.
	ReasonFinalizationFailed = "FinalizationFailed"
	// ReasonEvaluationError (safeguard Unknown): the safeguard hit an error it
	// retries; the message carries the error.
	ReasonEvaluationError = "EvaluationError"
)

// Reasons of the Stalled condition (True: the spec cannot be acted on as
// written; retrying will not help until it changes). Ready carries the same
// reason with status False, and each safeguard not evaluated is Unknown with it.
const (
	// ReasonInvalidSchedule: backup.schedule passed the API's pattern check but
	// is not a schedule a cron parser accepts (a field out of range, say), or
	// one that never runs (February 30th).
	ReasonInvalidSchedule = "InvalidSchedule"
	// ReasonInvalidSelector: spec.selector cannot be turned into a label selector.
	ReasonInvalidSelector = "InvalidSelector"
	// ReasonInvalidDuration: backup.ttl or backup.rpo is zero, which cannot
	// mean what the user wants.
	ReasonInvalidDuration = "InvalidDuration"
	// ReasonNamespaceExempt: the workload sits in a namespace phiguard never acts on.
	ReasonNamespaceExempt = "NamespaceExempt"
)

// Reasons of a safeguard that is not evaluated, or whose mode is Off.
const (
	// ReasonNoPodsSelected (Unknown): the selector matches no pod, so there is
	// nothing to judge; a selector with a typo shows here rather than as True.
	ReasonNoPodsSelected = "NoPodsSelected"
	// ReasonDocumentedDecision (True): the safeguard is off under a valid decision.
	ReasonDocumentedDecision = "DocumentedDecision"
	// ReasonDecisionExpired (False): the decision that turned it off has expired.
	ReasonDecisionExpired = "DecisionExpired"
	// ReasonDecisionMissing (False): the safeguard is off with no decision.
	ReasonDecisionMissing = "DecisionMissing"
	// ReasonRequiredSafeguardOff (False): a Required safeguard is off, which no
	// decision can justify.
	ReasonRequiredSafeguardOff = "RequiredSafeguardOff"
	// ReasonDecisionNotRecognised (True, False or Unknown, as judged): the
	// workload turns the safeguard off (under a decision admitted before), but
	// the PHIPolicy's ruleset is ProposedRule2025, under which every safeguard
	// is Required and no decision counts. The safeguard runs in Audit (or the
	// policy's minimum) and its status is the judgement of that run; the
	// message says so and carries the judgement's own reason and message. A
	// change to it is recorded as a Warning Event. Fix: set the mode to Audit
	// or Enforce and remove the decision.
	ReasonDecisionNotRecognised = "DecisionNotRecognised"
)

// Reasons of a safeguard whose optional API is missing. Each is False: what
// the safeguard needs cannot exist without the API. While the API's CRDs are
// installed but not yet served the same reason is used, with a message that
// says so, and phiguard looks again within seconds.
const (
	// ReasonVeleroNotInstalled: Velero's velero.io/v1 CRDs are not in the
	// cluster, or Velero's namespace does not exist.
	ReasonVeleroNotInstalled = "VeleroNotInstalled"
	// ReasonIstioNotInstalled: Istio's security.istio.io CRDs are not in the cluster.
	ReasonIstioNotInstalled = "IstioNotInstalled"
	// ReasonPrometheusOperatorNotInstalled: the Prometheus Operator's
	// monitoring.coreos.com CRDs are not in the cluster.
	ReasonPrometheusOperatorNotInstalled = "PrometheusOperatorNotInstalled"
	// ReasonGatewayAPINotInstalled: Gateway API's gateway.networking.k8s.io
	// CRDs are not in the cluster.
	ReasonGatewayAPINotInstalled = "GatewayAPINotInstalled"
)

// Reasons of the NetworkIsolated condition and its Events.
const (
	// ReasonPolicyApplied (True): phiguard's NetworkPolicy isolates the selected pods.
	ReasonPolicyApplied = "PolicyApplied"
	// ReasonPodsIsolated (True, Audit): every selected pod is isolated in both
	// directions by the NetworkPolicies that exist.
	ReasonPodsIsolated = "PodsIsolated"
	// ReasonPodsNotIsolated (False, Audit): some selected pods are open in a direction.
	ReasonPodsNotIsolated = "PodsNotIsolated"
	// ReasonIsolationBypassed (False): the NetworkPolicies that select a pod,
	// taken together, admit traffic wider than the workload declares; the
	// message names the policy and the widest flow it opens.
	ReasonIsolationBypassed = "IsolationBypassed"
	// ReasonPolicyNameTaken (False): a NetworkPolicy phiguard does not own has the
	// name phiguard needs; phiguard leaves it alone.
	ReasonPolicyNameTaken = "PolicyNameTaken"

	// ReasonPolicyCreated (Normal Event): the NetworkPolicy was created.
	ReasonPolicyCreated = "PolicyCreated"
	// ReasonPolicyUpdated (Normal Event): the NetworkPolicy was changed to follow the spec.
	ReasonPolicyUpdated = "PolicyUpdated"
	// ReasonPolicyDrifted (Warning Event): someone changed or deleted the
	// NetworkPolicy and phiguard put it back.
	ReasonPolicyDrifted = "PolicyDrifted"
	// ReasonPolicyRemoved (Normal Event): the NetworkPolicy was removed because
	// the mode left Enforce.
	ReasonPolicyRemoved = "PolicyRemoved"
)

// Reasons of the EncryptedAtRest condition.
const (
	// ReasonAllVolumesEncrypted (True): every claim the selected pods mount uses
	// an encrypted StorageClass.
	ReasonAllVolumesEncrypted = "AllVolumesEncrypted"
	// ReasonUnencryptedVolumes (False): some claims do not; the message names them.
	ReasonUnencryptedVolumes = "UnencryptedVolumes"
	// ReasonClaimMissing (False): a selected pod mounts a claim that does not
	// exist, so what it stores cannot be judged.
	ReasonClaimMissing = "ClaimMissing"
	// ReasonHostPathVolume (False): a selected pod mounts a hostPath volume,
	// which puts data on the node's disk outside any StorageClass.
	ReasonHostPathVolume = "HostPathVolume"
)

// Reasons of the BackupScheduled condition and its Events (and
// ReasonVeleroNotInstalled above).
const (
	// ReasonBackupFresh (True): the last successful backup is within the RPO.
	ReasonBackupFresh = "BackupFresh"
	// ReasonAwaitingFirstBackup (Unknown): the schedule is younger than the RPO
	// and no backup has completed yet.
	ReasonAwaitingFirstBackup = "AwaitingFirstBackup"
	// ReasonBackupStale (False): the last successful backup is older than the RPO
	// (or there is none, and the schedule is older than the RPO).
	ReasonBackupStale = "BackupStale"
	// ReasonBackupFailed (False): the latest finished backup failed.
	ReasonBackupFailed = "BackupFailed"
	// ReasonScheduleMissing (False, Audit): no Velero Schedule covers the workload.
	ReasonScheduleMissing = "ScheduleMissing"
	// ReasonStorageLocationMissing (False): the BackupStorageLocation does not exist.
	ReasonStorageLocationMissing = "StorageLocationMissing"
	// ReasonStorageLocationUnavailable (False): Velero cannot reach the location.
	ReasonStorageLocationUnavailable = "StorageLocationUnavailable"
	// ReasonStorageLocationUnencrypted (False): the BackupStorageLocation's
	// config declares no encryption and the PHIPolicy does not accept the
	// provider's default encryption.
	ReasonStorageLocationUnencrypted = "StorageLocationUnencrypted"
	// ReasonStorageEncryptionUnknown (Unknown): phiguard cannot tell whether
	// the location's provider encrypts at rest.
	ReasonStorageEncryptionUnknown = "StorageEncryptionUnknown"

	// ReasonStorageLocationMutable (False): the location's bucket lets a
	// backup be deleted or overwritten before its ttl (no versioning, no
	// Object Lock in compliance mode, or a retention shorter than the ttl).
	ReasonStorageLocationMutable = "StorageLocationMutable"
	// ReasonStorageImmutabilityUnknown (Unknown): PHIPolicy
	// backup.locationCredentials asks phiguard to check the location's
	// bucket, and it cannot: the Secret is missing or unreadable, or the
	// bucket cannot be read with it.
	ReasonStorageImmutabilityUnknown = "StorageImmutabilityUnknown"
	// ReasonRestoreVerified (True): the backup is fresh and the latest restore
	// drill brought the workload's objects back.
	ReasonRestoreVerified = "RestoreVerified"
	// ReasonRestoreFailed (False): the latest restore drill failed, did not
	// finish in time, or left objects missing.
	ReasonRestoreFailed = "RestoreFailed"

	// ReasonScheduleCreated (Normal Event): the Schedule was created.
	ReasonScheduleCreated = "ScheduleCreated"
	// ReasonScheduleUpdated (Normal Event): the Schedule was changed to follow the spec.
	ReasonScheduleUpdated = "ScheduleUpdated"
	// ReasonScheduleRemoved (Normal Event): the Schedule was deleted; its backups stay.
	ReasonScheduleRemoved = "ScheduleRemoved"
	// ReasonRestoreDrillStarted (Normal Event): a restore drill began.
	ReasonRestoreDrillStarted = "RestoreDrillStarted"
)

// Reasons of the AuditLogging condition and its Events.
const (
	// ReasonSidecarsPresent (True): every selected pod carries the audit sidecar.
	ReasonSidecarsPresent = "SidecarsPresent"
	// ReasonPodsWithoutSidecar (False): some do not; the message names them.
	ReasonPodsWithoutSidecar = "PodsWithoutSidecar"
	// ReasonRolloutRestarted (Normal Event): phiguard restarted a workload so
	// that its pods are re-created with the sidecar.
	ReasonRolloutRestarted = "RolloutRestarted"
)

// Reasons of the IntegrityProtected condition.
const (
	// ReasonContainersImmutable (True): every container of every selected pod
	// (phiguard's audit sidecar aside) passes the restricted Pod Security
	// Standard, has a read-only root filesystem and, unless
	// integrity.requireImageDigest is false, runs an image pinned by digest.
	ReasonContainersImmutable = "ContainersImmutable"
	// ReasonContainersMutable (False): some container does not; the message
	// names each pod and container (the first 10 pods, then a count) and each
	// check it fails.
	ReasonContainersMutable = "ContainersMutable"
)

// Reasons of the Available condition and its Events. When several findings
// hold, the condition carries the first False reason in this order and the
// message names every finding.
const (
	// ReasonRedundant (True): every selected pod belongs to a Deployment,
	// StatefulSet or ReplicaSet running at least availability.minReplicas
	// (an autoscaler's minReplicas when one targets it), exactly one
	// PodDisruptionBudget covers each pod, and each owner's pods are spread
	// over nodes or zones (on two nodes or more, or declared in its template).
	ReasonRedundant = "Redundant"
	// ReasonNoReplicatedOwner (False): some selected pods belong to no
	// Deployment or StatefulSet (a bare pod, a Job's, a DaemonSet's, another
	// controller's); the message names each pod and what owns it.
	ReasonNoReplicatedOwner = "NoReplicatedOwner"
	// ReasonTooFewReplicas (False): an owner runs fewer replicas than
	// availability.minReplicas, or an autoscaler may scale it below; the
	// message names each owner, its count and the autoscaler.
	ReasonTooFewReplicas = "TooFewReplicas"
	// ReasonDisruptionBudgetNameTaken (False, Enforce): a PodDisruptionBudget
	// phiguard does not own has the name phiguard's needs and covers none of
	// the selected pods; phiguard leaves it alone.
	ReasonDisruptionBudgetNameTaken = "DisruptionBudgetNameTaken"
	// ReasonNoDisruptionBudget (False): some selected pods are covered by no
	// PodDisruptionBudget; the message names them, and the budgets covering
	// the others (phiguard generates none beside a budget it does not own).
	ReasonNoDisruptionBudget = "NoDisruptionBudget"
	// ReasonOverlappingDisruptionBudgets (False): some selected pods are
	// matched by more than one PodDisruptionBudget, which the eviction API
	// refuses to evict at all; the message names each pod and its budgets.
	ReasonOverlappingDisruptionBudgets = "OverlappingDisruptionBudgets"
	// ReasonPodsOnOneNode (False): every selected pod of an owner runs on one
	// node and its pod template declares no spread; the message names the
	// owner and the node.
	ReasonPodsOnOneNode = "PodsOnOneNode"
	// ReasonOwnerNotFound (Unknown): the ReplicaSet, Deployment or
	// StatefulSet a selected pod names as its controller is not in the
	// cluster (being created or deleted), so its replicas cannot be judged.
	ReasonOwnerNotFound = "OwnerNotFound"
	// ReasonPodsNotScheduled (Unknown): an owner's pods are seen on fewer than
	// two nodes, some are not scheduled yet, and its template declares no
	// spread, so where they will run cannot be told yet.
	ReasonPodsNotScheduled = "PodsNotScheduled"

	// ReasonDisruptionBudgetCreated (Normal Event, Enforce): phiguard created
	// its PodDisruptionBudget for the workload.
	ReasonDisruptionBudgetCreated = "DisruptionBudgetCreated"
	// ReasonDisruptionBudgetUpdated (Enforce): phiguard changed its
	// PodDisruptionBudget to what it keeps: Normal when the workload's
	// selector changed, Warning when it reverted someone's edit (named).
	ReasonDisruptionBudgetUpdated = "DisruptionBudgetUpdated"
	// ReasonDisruptionBudgetRemoved (Normal Event): phiguard deleted the
	// PodDisruptionBudget it generated, because a budget it does not own came
	// to cover selected pods, or because the mode left Enforce.
	ReasonDisruptionBudgetRemoved = "DisruptionBudgetRemoved"
)

// Reasons of the TransmissionSecure condition and its Events. When several
// findings hold at once the condition carries the first in this order (edge,
// then inside the cluster) and its message names every one.
const (
	// ReasonEncryptedInTransit (True): every way in from outside the cluster
	// that phiguard reads (Ingresses, HTTPRoutes and GRPCRoutes, LoadBalancer
	// and NodePort Services) terminates TLS, and every selected pod is
	// encrypted inside the cluster (Istio mTLS STRICT, Linkerd, or Services
	// that declare TLS on every port).
	ReasonEncryptedInTransit = "EncryptedInTransit"
	// ReasonIngressWithoutTLS (False): an Ingress sends a host (or its default
	// backend) to a Service of the pods, and its spec.tls does not list the
	// host; the message names the Ingress and host.
	ReasonIngressWithoutTLS = "IngressWithoutTLS"
	// ReasonRouteOnPlainListener (False): an HTTPRoute or GRPCRoute to a
	// Service of the pods attaches to a Gateway listener whose protocol is not
	// HTTPS or TLS; the message names the route, Gateway and listener.
	ReasonRouteOnPlainListener = "RouteOnPlainListener"
	// ReasonServiceExposedWithoutTLS (False): a LoadBalancer or NodePort
	// Service (or one with externalIPs) selecting the pods exposes a port
	// whose appProtocol does not declare TLS; the message names Service and port.
	ReasonServiceExposedWithoutTLS = "ServiceExposedWithoutTLS"
	// ReasonPeerAuthenticationPermissive (False): a meshed pod is not under
	// Istio mTLS STRICT (no PeerAuthentication covers it, Istio's default is
	// PERMISSIVE; or the one in effect, or a port-level override, is
	// PERMISSIVE or DISABLE); the message names the PeerAuthentication and pods.
	ReasonPeerAuthenticationPermissive = "PeerAuthenticationPermissive"
	// ReasonPeerAuthenticationNameTaken (False): a PeerAuthentication phiguard
	// does not own has the name phiguard's would take, so Enforce applies none.
	ReasonPeerAuthenticationNameTaken = "PeerAuthenticationNameTaken"
	// ReasonPodsOutsideMesh (False): Istio is installed but some selected pods
	// are in no mesh (no istio-proxy sidecar, not ambient, no linkerd-proxy)
	// and their Services do not declare TLS on every port; the message names them.
	ReasonPodsOutsideMesh = "PodsOutsideMesh"
	// ReasonNoInClusterEncryption (False): no service mesh is installed and the
	// pods' Services do not declare TLS on every port; an Addressable decision
	// is the honest answer when the traffic is protected another way.
	ReasonNoInClusterEncryption = "NoInClusterEncryption"
	// ReasonRouteParentNotJudged (Unknown): a route to a Service of the pods
	// attaches to a parent phiguard does not read (a ListenerSet, another
	// kind), so it cannot say whether TLS is terminated; nothing else failed.
	ReasonRouteParentNotJudged = "RouteParentNotJudged"
	// ReasonPeerAuthenticationCreated (Normal Event): phiguard created the
	// workload's STRICT PeerAuthentication.
	ReasonPeerAuthenticationCreated = "PeerAuthenticationCreated"
	// ReasonPeerAuthenticationUpdated (Normal Event): it was changed to follow the spec.
	ReasonPeerAuthenticationUpdated = "PeerAuthenticationUpdated"
	// ReasonPeerAuthenticationDrifted (Warning Event): someone changed or
	// deleted it, and phiguard put it back.
	ReasonPeerAuthenticationDrifted = "PeerAuthenticationDrifted"
	// ReasonPeerAuthenticationRemoved (Normal Event): the mode left Enforce and
	// phiguard deleted its PeerAuthentication.
	ReasonPeerAuthenticationRemoved = "PeerAuthenticationRemoved"
)

// Reasons of the AccessControlled condition and of its break-glass Events.
// When several findings hold, the condition carries the first False reason in
// this order and the message names every finding.
const (
	// ReasonLeastPrivilege (True): every selected pod runs as a ServiceAccount
	// of its own (not default, existing, used by no pod outside the workload),
	// without its token mounted (unless accessControl.allowTokenAutomount),
	// and the RBAC that applies to it, resolved as the apiserver resolves it,
	// grants no wildcard verb or resource, no Secrets outside its namespace,
	// no escalate, bind or impersonate, and no create pods/exec. The message
	// also names who may exec into, attach to, port-forward to or debug the
	// namespace's pods.
	ReasonLeastPrivilege = "LeastPrivilege"
	// ReasonExcessivePrivilege (False): some rule that applies to a selected
	// pod's ServiceAccount grants one of the above; the message names each
	// binding, its role and subject, the rule and what it grants.
	ReasonExcessivePrivilege = "ExcessivePrivilege"
	// ReasonServiceAccountMissing (False): a selected pod runs as a
	// ServiceAccount that does not exist.
	ReasonServiceAccountMissing = "ServiceAccountMissing"
	// ReasonDefaultServiceAccount (False): a selected pod runs as its
	// namespace's default ServiceAccount.
	ReasonDefaultServiceAccount = "DefaultServiceAccount"
	// ReasonSharedServiceAccount (False): a pod of the namespace the workload
	// does not select runs as a selected pod's ServiceAccount; the message
	// names those pods.
	ReasonSharedServiceAccount = "SharedServiceAccount"
	// ReasonTokenMounted (False): a selected pod mounts its ServiceAccount's
	// token (automountServiceAccountToken in effect, or a projected
	// serviceAccountToken volume a container mounts) and
	// accessControl.allowTokenAutomount is false.
	ReasonTokenMounted = "TokenMounted"
	// ReasonEmergencyAccess (Event, action "BreakGlass"): someone execed
	// into, attached to, port-forwarded to or added an ephemeral container to
	// a selected pod and was admitted; Normal for a member of
	// accessControl.emergencyAccessGroups, Warning for anyone else (Audit).
	// The note names the user, the pod, the container and the command.
	ReasonEmergencyAccess = "EmergencyAccess"
	// ReasonEmergencyAccessDenied (Warning Event, action "BreakGlass"): such
	// an access was refused (Enforce) because the user is in none of
	// accessControl.emergencyAccessGroups.
	ReasonEmergencyAccessDenied = "EmergencyAccessDenied"
)

// Reasons of the Events about a labelled object's coverage (action
// "Coverage", recorded on the labelled Deployment, StatefulSet, Service or
// Namespace).
const (
	// ReasonCoverageCreated (Normal): a PHIWorkload was generated for a labelled object.
	ReasonCoverageCreated = "CoverageCreated"
	// ReasonCoverageRemoved (Warning): the label was removed or the object
	// deleted, and its pods are no longer covered.
	ReasonCoverageRemoved = "CoverageRemoved"
	// ReasonCoverageInterrupted (Warning): the generated PHIWorkload was deleted
	// while its object is still labelled; phiguard generates it again.
	ReasonCoverageInterrupted = "CoverageInterrupted"
	// ReasonCoveredByWorkload (Normal): another PHIWorkload (hand-written, or
	// the Namespace's) covers the same pods, so none is generated.
	ReasonCoveredByWorkload = "CoveredByWorkload"
	// ReasonCoverageNotPossible (Warning): the object is labelled but cannot be
	// covered (exempt namespace, a Service without a selector).
	ReasonCoverageNotPossible = "CoverageNotPossible"
	// ReasonWorkloadNameTaken (Warning): a PHIWorkload phiguard did not
	// generate has the name the generated one needs.
	ReasonWorkloadNameTaken = "WorkloadNameTaken"
)

// Reasons of the Events phiguard records for what its admission webhooks did,
// on the PHIWorkload whose safeguard required it.
const (
	// ReasonAdmissionDenied (Warning): a webhook refused a request; the
	// message names the object and what to fix.
	ReasonAdmissionDenied = "AdmissionDenied"
	// ReasonAdmissionWarned (Warning): a webhook admitted a request with a
	// warning (Audit mode, or a rule that opens the workload widely).
	ReasonAdmissionWarned = "AdmissionWarned"
)

// Reasons of the PHIPolicy's EvidenceSinkDegraded condition.
const (
	// ReasonEvidenceStored (holds: the sink is not degraded): every segment
	// of evidence is stored.
	ReasonEvidenceStored = "EvidenceStored"
	// ReasonEvidenceSinkUnavailable (True): the sink cannot be written; the
	// records wait in the on-disk buffer, or are dropped once it is full (the
	// message says which).
	ReasonEvidenceSinkUnavailable = "EvidenceSinkUnavailable"
	// ReasonEvidenceEphemeral (True): evidence is kept in a directory that
	// does not outlive the pod (an emptyDir); mount a PersistentVolumeClaim or
	// use an S3 bucket with Object Lock.
	ReasonEvidenceEphemeral = "EvidenceEphemeral"
	// ReasonEvidenceDisabled (True): the manager runs with --evidence-sink=none.
	ReasonEvidenceDisabled = "EvidenceDisabled"
)
