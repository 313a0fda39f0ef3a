package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Mode says what phiguard does about one safeguard. In YAML write "Off" in
// quotes: YAML 1.1, which kubectl speaks, reads a bare Off as the boolean false.
// +kubebuilder:validation:Enum=Enforce;Audit;Off
type Mode string

const (
	// ModeEnforce creates, mutates or denies so that the safeguard holds.
	ModeEnforce Mode = "Enforce"
	// ModeAudit only observes and reports; nothing in the cluster is changed.
	ModeAudit Mode = "Audit"
	// ModeOff turns the safeguard off. Only Addressable safeguards may be off, and
	// only with a documented decision (see Decision); under the PHIPolicy's
	// ruleset ProposedRule2025 none may.
	ModeOff Mode = "Off"
)

// SafeguardName names one safeguard. It is also the type of the safeguard's
// condition in status.
// +kubebuilder:validation:Enum=NetworkIsolated;EncryptedAtRest;BackupScheduled;AuditLogging;TransmissionSecure;AccessControlled;IntegrityProtected;Available
type SafeguardName string

// The safeguards, in the order phiguard evaluates them. Each is a condition
// type on PHIWorkload status; for each, True means the safeguard holds.
const (
	// NetworkIsolated is True when every selected pod is isolated by a
	// default-deny NetworkPolicy in both directions. HIPAA §164.312(e)(1), Required.
	NetworkIsolated SafeguardName = "NetworkIsolated"
	// EncryptedAtRest is True when every volume claim of the selected pods uses an
	// encrypted StorageClass. HIPAA §164.312(a)(2)(iv), Addressable.
	EncryptedAtRest SafeguardName = "EncryptedAtRest"
	// BackupScheduled is True when a backup schedule covers the workload and the
	// last successful backup is within the recovery point objective.
	// HIPAA §164.308(a)(7)(ii)(A), Required.
	BackupScheduled SafeguardName = "BackupScheduled"
	// AuditLogging is True when every selected pod carries the audit sidecar.
	// HIPAA §164.312(b), Required.
	AuditLogging SafeguardName = "AuditLogging"
	// TransmissionSecure is True when traffic to the selected pods is encrypted in
	// transit (TLS on Ingress, mesh mTLS). HIPAA §164.312(e)(2)(ii), Addressable.
	TransmissionSecure SafeguardName = "TransmissionSecure"
	// AccessControlled is True when the selected pods run under a dedicated
	// ServiceAccount without unneeded token mounts or wildcard RBAC.
	// HIPAA §164.312(a)(1), Required.
	AccessControlled SafeguardName = "AccessControlled"
	// IntegrityProtected is True when the selected pods cannot alter their own
	// software: read-only root filesystem, no privilege, images pinned by digest.
	// HIPAA §164.312(c)(1), Required.
	IntegrityProtected SafeguardName = "IntegrityProtected"
	// Available is True when the workload survives the loss of a pod: at least two
	// replicas and a PodDisruptionBudget. HIPAA §164.308(a)(7)(ii)(C), Required.
	Available SafeguardName = "Available"
)

// SafeguardSettings holds one block per safeguard. Every field is optional: a
// field left empty on a PHIWorkload is taken from the PHIPolicy named "default",
// and one left empty there from phiguard's built-in defaults. Each block is a
// pointer to a struct with a Mode field, tagged with its safeguard's name
// (`safeguard:"<SafeguardName>"`): Mode and SetMode find a block by that tag.
type SafeguardSettings struct {
	// networkIsolation generates default-deny NetworkPolicies for the selected pods.
	// +optional
	NetworkIsolation *NetworkIsolationSpec `json:"networkIsolation,omitempty" safeguard:"NetworkIsolated"`

	// encryptionAtRest requires encrypted StorageClasses for the pods' volume claims.
	// +optional
	EncryptionAtRest *EncryptionAtRestSpec `json:"encryptionAtRest,omitempty" safeguard:"EncryptedAtRest"`

	// backup schedules Velero backups of the workload and checks their freshness.
	// +optional
	Backup *BackupSpec `json:"backup,omitempty" safeguard:"BackupScheduled"`

	// auditLogging injects an audit sidecar into the selected pods.
	// +optional
	AuditLogging *AuditLoggingSpec `json:"auditLogging,omitempty" safeguard:"AuditLogging"`

	// transmissionSecurity requires TLS (or mesh mTLS) in front of the selected pods.
	// +optional
	TransmissionSecurity *TransmissionSecuritySpec `json:"transmissionSecurity,omitempty" safeguard:"TransmissionSecure"`

	// accessControl requires dedicated ServiceAccounts and least-privilege RBAC.
	// +optional
	AccessControl *AccessControlSpec `json:"accessControl,omitempty" safeguard:"AccessControlled"`

	// integrity requires immutable, unprivileged, digest-pinned containers.
	// +optional
	Integrity *IntegritySpec `json:"integrity,omitempty" safeguard:"IntegrityProtected"`

	// availability requires redundancy and a PodDisruptionBudget.
	// +optional
	Availability *AvailabilitySpec `json:"availability,omitempty" safeguard:"Available"`
}

// NetworkIsolationSpec configures the NetworkIsolated safeguard (Required).
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Off'",message="networkIsolation.mode cannot be Off: network isolation is a Required HIPAA safeguard (§164.312(e)(1)); use Audit to report without enforcing"
type NetworkIsolationSpec struct {
	// mode is Enforce, Audit or Off. Built-in default: Enforce.
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// allowDNS lets the selected pods resolve names through kube-dns
	// (egress UDP and TCP port 53 to kube-system). Built-in default: true.
	// +optional
	AllowDNS *bool `json:"allowDNS,omitempty"`

	// allowSameWorkload lets the selected pods talk to each other.
	// Built-in default: true.
	// +optional
	AllowSameWorkload *bool `json:"allowSameWorkload,omitempty"`

	// ingress lists who may connect to the selected pods. Nothing else may.
	// A list set on the workload replaces the policy's list as a whole.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Ingress []NetworkIngressRule `json:"ingress,omitempty"`

	// egress lists where the selected pods may connect. Nothing else is reachable
	// (but DNS, when allowDNS is true). A list set on the workload replaces the
	// policy's list as a whole.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Egress []NetworkEgressRule `json:"egress,omitempty"`
}

// NetworkIngressRule allows traffic from some peers to some ports of the
// selected pods.
type NetworkIngressRule struct {
	// from lists the peers that may connect. At least one is needed: to allow any
	// source, say so with an ipBlock of 0.0.0.0/0 (and ::/0).
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	From []NetworkPeer `json:"from"`

	// ports lists the ports of the selected pods the peers may reach. Empty
	// means every port.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Ports []NetworkPort `json:"ports,omitempty"`
}

// NetworkEgressRule allows traffic from the selected pods to some peers' ports.
type NetworkEgressRule struct {
	// to lists the peers the selected pods may reach. At least one is needed: to
	// allow any destination, say so with an ipBlock of 0.0.0.0/0 (and ::/0).
	// +required
	// +listType=atomic
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	To []NetworkPeer `json:"to"`

	// ports lists the ports of the peers that may be reached. Empty means every port.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Ports []NetworkPort `json:"ports,omitempty"`
}

// NetworkPeer is one side of an allowed connection: pods chosen by selectors,
// or addresses in an IP block, as in a NetworkPolicy.
// +kubebuilder:validation:XValidation:rule="has(self.ipBlock) != (has(self.podSelector) || has(self.namespaceSelector))",message="a peer is either an ipBlock or a podSelector and/or namespaceSelector: give exactly one of the two kinds"
type NetworkPeer struct {
	// podSelector selects pods: in the PHIWorkload's namespace, or in the
	// namespaces namespaceSelector selects when that is set too.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`

	// namespaceSelector selects namespaces (all their pods, or those podSelector selects).
	// An empty selector ({}) selects every namespace.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// ipBlock selects addresses outside the cluster's pod network.
	// +optional
	IPBlock *IPBlock `json:"ipBlock,omitempty"`
}

// IPBlock is a CIDR with optional exceptions.
// +kubebuilder:validation:XValidation:rule="!has(self.except) || !isCIDR(self.cidr) || self.except.all(e, !isCIDR(e) || (cidr(self.cidr).containsCIDR(e) && cidr(e).prefixLength() > cidr(self.cidr).prefixLength()))",message="each ipBlock.except must be a CIDR strictly inside ipBlock.cidr"
type IPBlock struct {
	// cidr is the block, such as 203.0.113.0/24 or 2001:db8::/48.
	// +required
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="isCIDR(self)",message="ipBlock.cidr must be a CIDR such as 203.0.113.0/24 or 2001:db8::/48"
	CIDR string `json:"cidr"`

	// except lists CIDRs inside cidr that are not allowed.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.all(e, isCIDR(e))",message="each ipBlock.except entry must be a CIDR such as 203.0.113.128/25"
	Except []string `json:"except,omitempty"`
}

// NetworkPort is a protocol and a port or range of ports.
// +kubebuilder:validation:XValidation:rule="!has(self.endPort) || (has(self.port) && type(self.port) == int && self.endPort >= self.port)",message="endPort needs a numeric port that is not greater than it"
type NetworkPort struct {
	// protocol is TCP, UDP or SCTP.
	// +optional
	// +kubebuilder:default=TCP
	// +kubebuilder:validation:Enum=TCP;UDP;SCTP
	Protocol corev1.Protocol `json:"protocol,omitempty"`

	// port is a port number (1-65535) or the name of a container port. Empty
	// means every port of the protocol.
	// +optional
	// +kubebuilder:validation:XIntOrString
	// +kubebuilder:validation:MaxLength=15
	// +kubebuilder:validation:XValidation:rule="type(self) == int ? (self >= 1 && self <= 65535) : (self.matches('^[a-z0-9]([a-z0-9-]*[a-z0-9])?$') && self.matches('[a-z]') && size(self) <= 15)",message="port must be a number from 1 to 65535 or a container port's name (at most 15 lowercase letters, digits and '-', with a letter)"
	Port *intstr.IntOrString `json:"port,omitempty"`

	// endPort makes the rule cover the range port..endPort.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	EndPort *int32 `json:"endPort,omitempty"`
}

// EncryptionAtRestSpec configures the EncryptedAtRest safeguard (Addressable).
type EncryptionAtRestSpec struct {
	// mode is Enforce, Audit or Off. Off needs a decision for EncryptedAtRest.
	// Built-in default: Enforce.
	// +optional
	Mode Mode `json:"mode,omitempty"`
}

// BackupSpec configures the BackupScheduled safeguard (Required).
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Off'",message="backup.mode cannot be Off: a data backup plan is a Required HIPAA safeguard (§164.308(a)(7)(ii)(A)); use Audit to report without enforcing"
type BackupSpec struct {
	// mode is Enforce, Audit or Off. Built-in default: Enforce.
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// schedule is when backups run, as a five-field cron expression
	// ("0 2 * * *") or a descriptor ("@daily", "@every 6h").
	// Built-in default: "0 2 * * *".
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|@every [0-9]+(ns|us|ms|s|m|h)([0-9]+(ns|us|ms|s|m|h))*|[0-9A-Za-z*/,?-]+( +[0-9A-Za-z*/,?-]+){4})$')",message="backup.schedule must be a five-field cron expression such as \"0 2 * * *\" or a descriptor such as \"@daily\" or \"@every 6h\""
	Schedule string `json:"schedule,omitempty"`

	// ttl is how long each backup is kept, as a duration such as "52560h".
	// HIPAA asks for six years of documentation (§164.316(b)(2)).
	// Built-in default: 52560h (six years).
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h)){1,3}$')",message="backup.ttl must be a duration such as \"52560h\" or \"720h30m\" (units h, m, s; at most three parts of at most 99999 each)"
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// rpo (recovery point objective) is the greatest age the last successful
	// backup may have before the safeguard fails. Built-in default: 25h.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]{1,5}([.][0-9]+)?(ns|us|ms|s|m|h)){1,3}$')",message="backup.rpo must be a duration such as \"25h\" or \"90m\" (units h, m, s; at most three parts of at most 99999 each)"
	RPO *metav1.Duration `json:"rpo,omitempty"`

	// storageLocation is the Velero BackupStorageLocation to write to.
	// Empty means Velero's default location.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	StorageLocation string `json:"storageLocation,omitempty"`

	// veleroNamespace is the namespace Velero runs in and reads Schedules from.
	// Built-in default: velero.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	VeleroNamespace string `json:"veleroNamespace,omitempty"`

	// restoreTest is when phiguard proves that the backups can be brought
	// back (§164.308(a)(7)(ii)(B), disaster recovery; (D), testing and
	// revision): a restore drill restores the latest Completed backup into a
	// scratch namespace (phiguard-drill-<hash>), checks that the workload's
	// Deployments, StatefulSets, Services, ConfigMaps and claims came back,
	// records the result and deletes the scratch namespace. A cron expression
	// or descriptor, as schedule; the first drill runs as soon as a backup has
	// completed. Empty (the built-in default) runs no drills; a PHIPolicy can
	// set it for every workload in defaults.backup.restoreTest.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule="self.matches('^(@(annually|yearly|monthly|weekly|daily|midnight|hourly)|@every [0-9]+(ns|us|ms|s|m|h)([0-9]+(ns|us|ms|s|m|h))*|[0-9A-Za-z*/,?-]+( +[0-9A-Za-z*/,?-]+){4})$')",message="backup.restoreTest must be a five-field cron expression such as \"0 3 * * 0\" or a descriptor such as \"@weekly\" or \"@every 24h\""
	RestoreTest string `json:"restoreTest,omitempty"`

	// volumes says how volume data is backed up: Snapshot (the storage
	// provider's snapshots) or FileSystem (Velero's file-system backup, for
	// storage without snapshots). Built-in default: Snapshot.
	// +optional
	// +kubebuilder:validation:Enum=Snapshot;FileSystem
	Volumes BackupVolumes `json:"volumes,omitempty"`
}

// BackupVolumes says how volume data is backed up.
type BackupVolumes string

const (
	// BackupVolumesSnapshot backs volumes up with the provider's snapshots.
	BackupVolumesSnapshot BackupVolumes = "Snapshot"
	// BackupVolumesFileSystem backs volumes up with Velero's file-system backup.
	BackupVolumesFileSystem BackupVolumes = "FileSystem"
)

// AuditLoggingSpec configures the AuditLogging safeguard (Required).
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Off'",message="auditLogging.mode cannot be Off: audit controls are a Required HIPAA safeguard (§164.312(b)); use Audit to report without enforcing"
type AuditLoggingSpec struct {
	// mode is Enforce, Audit or Off. Built-in default: Enforce.
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// restartNonCompliant rolls the owning Deployment, StatefulSet or DaemonSet
	// when it has pods created without the sidecar, at most once per generation
	// of the PHIWorkload. Built-in default: false.
	// +optional
	RestartNonCompliant *bool `json:"restartNonCompliant,omitempty"`

	// sidecar is the audit sidecar injected into the selected pods. Its security
	// context is always restricted (non-root with a non-zero UID, read-only root
	// filesystem, no privilege escalation, all capabilities dropped) and cannot
	// be loosened. Built-in default: Fluent Bit, pinned by digest, running as
	// 65532:65532 and tailing the log directory to its stdout.
	// +optional
	Sidecar *AuditSidecar `json:"sidecar,omitempty"`

	// logPath is where the app containers write audit logs: the shared log
	// volume is mounted there, read-write. The sidecar reads it at the same
	// path. Built-in default: /var/log/phiguard-audit.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') && !self.contains(':') && self != '/'",message="auditLogging.logPath must be an absolute path other than / and without ':' (for example /var/log/audit)"
	// +kubebuilder:validation:XValidation:rule="self != '/var/lib/phiguard-audit' && !self.startsWith('/var/lib/phiguard-audit/') && !'/var/lib/phiguard-audit'.startsWith(self + '/')",message="auditLogging.logPath must not be, contain or lie in /var/lib/phiguard-audit: the sidecar keeps its own state there"
	LogPath string `json:"logPath,omitempty"`
}

// AuditSidecar is the container that forwards a pod's audit logs.
// +kubebuilder:validation:XValidation:rule="!has(self.args) || !has(self.output)",message="auditLogging.sidecar: set args (the sidecar's whole command line, for an image of your own) or output (phiguard builds Fluent Bit's command line), not both"
type AuditSidecar struct {
	// image is the sidecar's image; pin it by digest where you can.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="!self.matches('[[:space:]]')",message="auditLogging.sidecar.image must not contain whitespace"
	Image string `json:"image"`

	// args are the sidecar's whole command line, for an image of your own (or
	// Fluent Bit configured by hand). When set, output is not used. Built-in
	// default: none, so that phiguard builds Fluent Bit's arguments from logPath
	// and output.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Args []string `json:"args,omitempty"`

	// output is where the built-in Fluent Bit sends the audit logs it tails,
	// turned by phiguard into Fluent Bit's command-line arguments. Not used when
	// args is set. Built-in default: stdout, from where the node's log pipeline
	// must collect it.
	// +optional
	Output *AuditOutput `json:"output,omitempty"`

	// runAsUser is the UID the sidecar runs as. It is never 0: the sidecar always
	// runs as non-root, and the kubelet refuses a runAsNonRoot container whose
	// image runs as root unless a non-zero UID is set. Built-in default: 65532.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	RunAsUser *int64 `json:"runAsUser,omitempty"`

	// runAsGroup is the GID the sidecar runs as; never 0. When the pod sets no
	// fsGroup, phiguard sets the pod's fsGroup to it, so that the sidecar can
	// read log files the app containers make group-readable. Built-in default:
	// 65532.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=2147483647
	RunAsGroup *int64 `json:"runAsGroup,omitempty"`

	// env are literal environment variables of the sidecar (values only: the
	// sidecar's credentials belong in a Secret the image reads from a file).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=64
	Env []AuditSidecarEnv `json:"env,omitempty"`

	// resources are the sidecar's requests and limits.
	// +optional
	Resources *AuditSidecarResources `json:"resources,omitempty"`
}

// AuditOutputType names the Fluent Bit output plugin the sidecar sends to.
// +kubebuilder:validation:Enum=stdout;forward;http;s3
type AuditOutputType string

const (
	// AuditOutputStdout writes the records to the sidecar's stdout, one JSON
	// object a line; the node's log pipeline must collect them.
	AuditOutputStdout AuditOutputType = "stdout"
	// AuditOutputForward sends them with the Fluentd forward protocol to a
	// Fluentd or Fluent Bit aggregator (host, port).
	AuditOutputForward AuditOutputType = "forward"
	// AuditOutputHTTP POSTs them as JSON to an HTTP endpoint (host, port, uri,
	// tls).
	AuditOutputHTTP AuditOutputType = "http"
	// AuditOutputS3 uploads them to an S3 bucket (bucket, region), with the
	// credentials the pod has (an IAM role for its ServiceAccount, say).
	AuditOutputS3 AuditOutputType = "s3"
)

// AuditOutput is where the built-in Fluent Bit sends the audit logs. Each type
// requires its fields, and a field of another type is refused.
// +kubebuilder:validation:XValidation:rule="self.type != 'forward' || (has(self.host) && has(self.port))",message="an audit output of type forward needs host and port"
// +kubebuilder:validation:XValidation:rule="self.type != 'http' || (has(self.host) && has(self.port) && has(self.uri))",message="an audit output of type http needs host, port and uri"
// +kubebuilder:validation:XValidation:rule="self.type != 's3' || (has(self.bucket) && has(self.region))",message="an audit output of type s3 needs bucket and region"
// +kubebuilder:validation:XValidation:rule="self.type in ['forward', 'http'] || (!has(self.host) && !has(self.port))",message="host and port belong to audit outputs of type forward or http"
// +kubebuilder:validation:XValidation:rule="self.type == 'http' || (!has(self.uri) && !has(self.tls))",message="uri and tls belong to audit outputs of type http"
// +kubebuilder:validation:XValidation:rule="self.type == 's3' || (!has(self.bucket) && !has(self.region))",message="bucket and region belong to audit outputs of type s3"
type AuditOutput struct {
	// type is stdout, forward, http or s3.
	// +required
	Type AuditOutputType `json:"type"`

	// host is the aggregator's or endpoint's DNS name or IP address (forward, http).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9]([-A-Za-z0-9.:]*[A-Za-z0-9])?$')",message="host must be a DNS name or an IP address"
	Host string `json:"host,omitempty"`

	// port is the aggregator's or endpoint's port (forward, http).
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port,omitempty"`

	// uri is the HTTP path the records are POSTed to (http).
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="self.startsWith('/') && !self.matches('[[:space:]]')",message="uri must be a path starting with / and without whitespace"
	URI string `json:"uri,omitempty"`

	// tls encrypts the connection to the endpoint (http). Built-in default:
	// true; audit logs of ePHI workloads leave the pod in clear text only when
	// this is false.
	// +optional
	TLS *bool `json:"tls,omitempty"`

	// bucket is the S3 bucket the records are uploaded to (s3).
	// +optional
	// +kubebuilder:validation:MinLength=3
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9][a-z0-9.-]*[a-z0-9]$')",message="bucket must be an S3 bucket name: lowercase letters, digits, '.' and '-'"
	Bucket string `json:"bucket,omitempty"`

	// region is the bucket's AWS region, such as us-east-1 (s3).
	// +optional
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z]{2}(-[a-z]+)+-[0-9]+$')",message="region must be an AWS region such as us-east-1"
	Region string `json:"region,omitempty"`
}

// AuditSidecarEnv is one environment variable of the sidecar.
type AuditSidecarEnv struct {
	// name of the variable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:XValidation:rule="self.matches('^[-._a-zA-Z][-._a-zA-Z0-9]*$')",message="an environment variable name consists of letters, digits, '_', '-' and '.', and does not start with a digit"
	Name string `json:"name"`

	// value of the variable.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value,omitempty"`
}

// AuditSidecarResources are the sidecar's CPU and memory requests and limits.
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || !has(self.requests.cpu) || !has(self.limits.cpu) || quantity(self.requests.cpu).compareTo(quantity(self.limits.cpu)) <= 0",message="the sidecar's cpu request must not exceed its limit"
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || !has(self.requests.memory) || !has(self.limits.memory) || quantity(self.requests.memory).compareTo(quantity(self.limits.memory)) <= 0",message="the sidecar's memory request must not exceed its limit"
type AuditSidecarResources struct {
	// requests are the minimum resources the sidecar needs.
	// +optional
	Requests *CPUMemory `json:"requests,omitempty"`
	// limits are the most the sidecar may use.
	// +optional
	Limits *CPUMemory `json:"limits,omitempty"`
}

// CPUMemory is an amount of CPU and memory.
type CPUMemory struct {
	// cpu, such as 50m.
	// +optional
	// +kubebuilder:validation:XValidation:rule="isQuantity(self)",message="cpu must be a quantity such as 50m or 1"
	// +kubebuilder:validation:MaxLength=32
	CPU string `json:"cpu,omitempty"`
	// memory, such as 64Mi.
	// +optional
	// +kubebuilder:validation:XValidation:rule="isQuantity(self)",message="memory must be a quantity such as 64Mi"
	// +kubebuilder:validation:MaxLength=32
	Memory string `json:"memory,omitempty"`
}

// TransmissionSecuritySpec configures the TransmissionSecure safeguard (Addressable).
type TransmissionSecuritySpec struct {
	// mode is Enforce, Audit or Off. Off needs a decision for TransmissionSecure.
	// Built-in default: Enforce.
	// +optional
	Mode Mode `json:"mode,omitempty"`
}

// AccessControlSpec configures the AccessControlled safeguard (Required).
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Off'",message="accessControl.mode cannot be Off: access control is a Required HIPAA safeguard (§164.312(a)(1)); use Audit to report without enforcing"
type AccessControlSpec struct {
	// mode is Enforce, Audit or Off. Built-in default: Audit.
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// allowTokenAutomount permits the pods to mount a ServiceAccount token.
	// Built-in default: false.
	// +optional
	AllowTokenAutomount *bool `json:"allowTokenAutomount,omitempty"`

	// emergencyAccessGroups are the groups whose members may exec into,
	// attach to, port-forward to or add ephemeral containers to the selected
	// pods (break-glass access). In Enforce mode everyone else is refused; in
	// Audit mode everyone is admitted. Either way every such access is
	// recorded as an Event on the PHIWorkload naming the user, pod, container
	// and command. Built-in default: none.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=253
	EmergencyAccessGroups []string `json:"emergencyAccessGroups,omitempty"`
}

// IntegritySpec configures the IntegrityProtected safeguard (Required).
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Off'",message="integrity.mode cannot be Off: integrity controls are a Required HIPAA safeguard (§164.312(c)(1)); use Audit to report without enforcing"
type IntegritySpec struct {
	// mode is Enforce, Audit or Off. Built-in default: Audit.
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// requireImageDigest requires every container image to be pinned by digest.
	// Built-in default: true.
	// +optional
	RequireImageDigest *bool `json:"requireImageDigest,omitempty"`
}

// AvailabilitySpec configures the Available safeguard (Required).
// +kubebuilder:validation:XValidation:rule="!has(self.mode) || self.mode != 'Off'",message="availability.mode cannot be Off: an emergency mode operation plan is a Required HIPAA safeguard (§164.308(a)(7)(ii)(C)); use Audit to report without enforcing"
type AvailabilitySpec struct {
	// mode is Enforce, Audit or Off. Built-in default: Audit.
	// +optional
	Mode Mode `json:"mode,omitempty"`

	// minReplicas is the least number of replicas the owning workload must run.
	// Built-in default: 2.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MinReplicas *int32 `json:"minReplicas,omitempty"`
}

// DecisionKind says why an Addressable safeguard is not implemented as specified.
// +kubebuilder:validation:Enum=Alternative;NotReasonable
type DecisionKind string

const (
	// DecisionAlternative means an equivalent alternative measure is implemented instead
	// (HIPAA §164.306(d)(3)(ii)(B)(2)).
	DecisionAlternative DecisionKind = "Alternative"
	// DecisionNotReasonable means the specification is not reasonable and appropriate
	// for this workload, and why is documented (§164.306(d)(3)(ii)(B)(1)).
	DecisionNotReasonable DecisionKind = "NotReasonable"
)

// MinJustificationLength is the fewest characters a decision's justification
// may have: a Decision's, and the one that lets a Namespace lose its
// phiguard.io/ephi label. The CRD's MinLength marker on
// Decision.Justification must say the same number (markers cannot name a
// constant); a test of the generated CRD holds them together.
const MinJustificationLength = 20

// Decision documents why an Addressable safeguard is turned off for a workload.
// HIPAA lets an organisation not implement an Addressable specification only when
// it documents why; the decision is kept with the workload and expires so that it
// is reviewed. Under the PHIPolicy's ruleset ProposedRule2025 there is no
// Addressable specification: a decision that turns a safeguard off is refused
// at admission, and one admitted before does not count.
// +kubebuilder:validation:XValidation:rule="self.safeguard in ['EncryptedAtRest', 'TransmissionSecure']",messageExpression="'decision for ' + self.safeguard + ' is not allowed: only Addressable safeguards (EncryptedAtRest, TransmissionSecure) may be turned off; ' + self.safeguard + ' is Required by HIPAA, so set its mode to Audit instead'"
// +kubebuilder:validation:XValidation:rule="self.kind != 'Alternative' || (has(self.alternativeMeasure) && size(self.alternativeMeasure) > 0)",message="a decision of kind Alternative must describe the measure implemented instead in alternativeMeasure"
type Decision struct {
	// safeguard is the safeguard this decision turns off.
	// +required
	Safeguard SafeguardName `json:"safeguard"`

	// kind is Alternative (an equivalent measure is in place) or NotReasonable.
	// +required
	Kind DecisionKind `json:"kind"`

	// justification says why the safeguard is not implemented as specified, in
	// at least MinJustificationLength characters.
	// +required
	// +kubebuilder:validation:MinLength=20
	// +kubebuilder:validation:MaxLength=4096
	Justification string `json:"justification"`

	// alternativeMeasure describes what is done instead. Required for kind Alternative.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	AlternativeMeasure string `json:"alternativeMeasure,omitempty"`

	// approvedBy names who approved the decision (a person or role).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	ApprovedBy string `json:"approvedBy"`

	// expires is when the decision must be reviewed. After it the safeguard counts
	// as NonCompliant until the decision is renewed or the safeguard turned on.
	// +required
	Expires metav1.Time `json:"expires"`
}
