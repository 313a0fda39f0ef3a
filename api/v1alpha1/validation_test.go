package v1alpha1_test

import (
	"fmt"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// workload builds a PHIWorkload from the YAML of its spec, as a user would write it.
func workload(name, spec string) *unstructured.Unstructured {
	doc := fmt.Sprintf("apiVersion: compliance.phiguard.io/v1alpha1\nkind: PHIWorkload\nmetadata:\n  name: %s\n  namespace: default\nspec:\n%s",
		name, indent(spec))
	return decode(doc)
}

func policy(name, spec string) *unstructured.Unstructured {
	doc := fmt.Sprintf("apiVersion: compliance.phiguard.io/v1alpha1\nkind: PHIPolicy\nmetadata:\n  name: %s\nspec:\n%s",
		name, indent(spec))
	return decode(doc)
}

func decode(doc string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	ExpectWithOffset(2, yaml.Unmarshal([]byte(doc), &u.Object)).To(Succeed())
	return u
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i := range lines {
		lines[i] = "  " + lines[i]
	}
	return strings.Join(lines, "\n") + "\n"
}

const selector = "selector:\n  matchLabels:\n    app: records\n"

// ingress is a networkIsolation block with one ingress rule whose from list is peers (YAML items).
func ingress(peers string) string {
	return "networkIsolation:\n  ingress:\n  - from:\n" + indent(indent(peers))
}

// ingressPorts is a networkIsolation block with one ingress rule from a pod selector, to ports.
func ingressPorts(ports string) string {
	return "networkIsolation:\n  ingress:\n  - from: [{podSelector: {matchLabels: {app: web}}}]\n    ports: " + ports + "\n"
}

// decision is a valid decision for safeguard, in spec YAML.
func decision(safeguard string) string {
	return fmt.Sprintf(`decisions:
- safeguard: %s
  kind: NotReasonable
  justification: traffic never leaves the node; TLS adds no protection here
  approvedBy: security-officer@clinic.example
  expires: "2031-01-01T00:00:00Z"
`, safeguard)
}

var _ = Describe("PHIWorkload validation", func() {
	n := 0
	name := func() string { n++; return fmt.Sprintf("w%d", n) }

	DescribeTable("rejects bad input with a message that says what to fix",
		func(spec string, wantMessage string) {
			err := k8s.Create(ctx, workload(name(), spec))
			Expect(err).To(HaveOccurred(), "the apiserver accepted:\n%s", spec)
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("missing selector", "networkIsolation:\n  mode: Enforce\n", "spec.selector: Required value"),
		Entry("empty selector", "selector: {}\n", "spec.selector is empty: give matchLabels or matchExpressions"),
		Entry("selector with empty matchLabels", "selector:\n  matchLabels: {}\n", "spec.selector is empty"),
		Entry("empty selector names the explicit alternative", "selector: {}\n", "or set spec.namespaceWide: true"),
		Entry("namespaceWide with a selector", selector+"namespaceWide: true\n",
			"spec.namespaceWide covers every pod in the namespace: leave spec.selector empty"),
		// YAML 1.1 (which kubectl speaks) reads a bare Off as the boolean false.
		Entry("unquoted Off, read by YAML as false", selector+"encryptionAtRest:\n  mode: Off\n",
			"spec.encryptionAtRest.mode in body must be of type string"),
		Entry("unknown mode", selector+"networkIsolation:\n  mode: Sometimes\n", `Unsupported value: "Sometimes"`),
		Entry("addressable encryption off without a decision", selector+"encryptionAtRest:\n  mode: \"Off\"\n",
			"encryptionAtRest.mode is Off without a decision: add an entry to spec.decisions with safeguard EncryptedAtRest"),
		Entry("addressable transmission off with a decision for another safeguard",
			selector+"transmissionSecurity:\n  mode: \"Off\"\n"+decision("EncryptedAtRest"),
			"transmissionSecurity.mode is Off without a decision"),
		Entry("required network isolation off", selector+"networkIsolation:\n  mode: \"Off\"\n",
			"networkIsolation.mode cannot be Off: network isolation is a Required HIPAA safeguard (§164.312(e)(1)); use Audit"),
		Entry("required backup off", selector+"backup:\n  mode: \"Off\"\n", "backup.mode cannot be Off"),
		Entry("required audit logging off", selector+"auditLogging:\n  mode: \"Off\"\n", "auditLogging.mode cannot be Off"),
		Entry("required access control off", selector+"accessControl:\n  mode: \"Off\"\n", "accessControl.mode cannot be Off"),
		Entry("required integrity off", selector+"integrity:\n  mode: \"Off\"\n", "integrity.mode cannot be Off"),
		Entry("required availability off", selector+"availability:\n  mode: \"Off\"\n", "availability.mode cannot be Off"),
		Entry("decision for a Required safeguard", selector+decision("NetworkIsolated"),
			"decision for NetworkIsolated is not allowed: only Addressable safeguards (EncryptedAtRest, TransmissionSecure) may be turned off"),
		Entry("decision for an unknown safeguard", selector+decision("Telepathy"), `Unsupported value: "Telepathy"`),
		Entry("decision with a short justification", selector+`decisions:
- safeguard: EncryptedAtRest
  kind: NotReasonable
  justification: because
  approvedBy: ciso
  expires: "2031-01-01T00:00:00Z"
`, "justification: Invalid value: \"because\": spec.decisions[0].justification in body should be at least 20 chars long"),
		Entry("decision without justification", selector+`decisions:
- safeguard: EncryptedAtRest
  kind: NotReasonable
  approvedBy: ciso
  expires: "2031-01-01T00:00:00Z"
`, "spec.decisions[0].justification: Required value"),
		Entry("decision without approver", selector+`decisions:
- safeguard: EncryptedAtRest
  kind: NotReasonable
  justification: disks are encrypted by the hypervisor layer
  expires: "2031-01-01T00:00:00Z"
`, "spec.decisions[0].approvedBy: Required value"),
		Entry("decision without expiry", selector+`decisions:
- safeguard: EncryptedAtRest
  kind: NotReasonable
  justification: disks are encrypted by the hypervisor layer
  approvedBy: ciso
`, "spec.decisions[0].expires: Required value"),
		Entry("decision with a malformed expiry", selector+`decisions:
- safeguard: EncryptedAtRest
  kind: NotReasonable
  justification: disks are encrypted by the hypervisor layer
  approvedBy: ciso
  expires: next year
`, "spec.decisions[0].expires"),
		Entry("alternative without the alternative measure", selector+`decisions:
- safeguard: EncryptedAtRest
  kind: Alternative
  justification: disks are encrypted by the hypervisor layer
  approvedBy: ciso
  expires: "2031-01-01T00:00:00Z"
`, "a decision of kind Alternative must describe the measure implemented instead in alternativeMeasure"),
		Entry("two decisions for one safeguard", selector+decision("EncryptedAtRest")+`- safeguard: EncryptedAtRest
  kind: NotReasonable
  justification: disks are encrypted by the hypervisor layer
  approvedBy: ciso
  expires: "2031-01-01T00:00:00Z"
`, `spec.decisions[1]: Duplicate value`),
		Entry("cron with four fields", selector+"backup:\n  schedule: \"0 2 * *\"\n",
			`backup.schedule must be a five-field cron expression such as "0 2 * * *" or a descriptor`),
		Entry("cron in words", selector+"backup:\n  schedule: every night\n", "backup.schedule must be a five-field cron expression"),
		Entry("unknown cron descriptor", selector+"backup:\n  schedule: \"@fortnightly\"\n", "backup.schedule must be a five-field cron expression"),
		Entry("ttl in words", selector+"backup:\n  ttl: 6 years\n", `backup.ttl must be a duration such as "52560h"`),
		Entry("ttl in days", selector+"backup:\n  ttl: 2190d\n", `backup.ttl must be a duration`),
		Entry("rpo without a unit", selector+"backup:\n  rpo: \"25\"\n", `backup.rpo must be a duration such as "25h"`),
		Entry("ttl longer than a duration can hold", selector+"backup:\n  ttl: 10000000h\n", `backup.ttl must be a duration such as "52560h"`),
		Entry("minReplicas zero", selector+"availability:\n  minReplicas: 0\n", "spec.availability.minReplicas: Invalid value: 0"),
		Entry("peer with both an ipBlock and a podSelector", selector+ingress("- ipBlock: {cidr: 203.0.113.0/24}\n  podSelector: {matchLabels: {app: web}}"),
			"a peer is either an ipBlock or a podSelector and/or namespaceSelector"),
		Entry("empty peer", selector+ingress("- {}"), "a peer is either an ipBlock or a podSelector and/or namespaceSelector"),
		Entry("ingress rule without peers", selector+"networkIsolation:\n  ingress:\n  - ports: [{port: 443}]\n",
			"spec.networkIsolation.ingress[0].from: Required value"),
		Entry("egress rule with an empty peer list", selector+"networkIsolation:\n  egress:\n  - to: []\n",
			"spec.networkIsolation.egress[0].to: Invalid value: 0: spec.networkIsolation.egress[0].to in body should have at least 1 items"),
		Entry("malformed CIDR", selector+ingress("- ipBlock: {cidr: 203.0.113.0/33}"),
			"ipBlock.cidr must be a CIDR such as 203.0.113.0/24"),
		Entry("an address, not a CIDR", selector+ingress("- ipBlock: {cidr: 203.0.113.7}"), "ipBlock.cidr must be a CIDR"),
		Entry("except outside the block", selector+ingress("- ipBlock: {cidr: 203.0.113.0/24, except: [198.51.100.0/25]}"),
			"each ipBlock.except must be a CIDR strictly inside ipBlock.cidr"),
		Entry("except equal to the block", selector+ingress("- ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.0/24]}"),
			"each ipBlock.except must be a CIDR strictly inside ipBlock.cidr"),
		Entry("malformed except", selector+ingress("- ipBlock: {cidr: 203.0.113.0/24, except: [bogus]}"),
			"each ipBlock.except entry must be a CIDR"),
		Entry("port zero", selector+ingressPorts("[{port: 0}]"), "port must be a number from 1 to 65535 or a container port's name"),
		Entry("port too high", selector+ingressPorts("[{port: 70000}]"), "port must be a number from 1 to 65535"),
		Entry("port name with capitals", selector+ingressPorts("[{port: HTTP_Port}]"), "port must be a number from 1 to 65535 or a container port's name"),
		Entry("port name too long", selector+ingressPorts("[{port: a-very-long-port-name}]"), "spec.networkIsolation.ingress[0].ports[0].port"),
		Entry("endPort with a named port", selector+ingressPorts("[{port: http, endPort: 9000}]"),
			"endPort needs a numeric port that is not greater than it"),
		Entry("endPort below port", selector+ingressPorts("[{port: 9000, endPort: 8000}]"), "endPort needs a numeric port that is not greater than it"),
		Entry("sidecar without an image", selector+"auditLogging:\n  sidecar: {args: [-v]}\n", "spec.auditLogging.sidecar.image: Required value"),
		Entry("sidecar image with a space", selector+"auditLogging:\n  sidecar: {image: \"fluent bit\"}\n",
			"auditLogging.sidecar.image must not contain whitespace"),
		Entry("sidecar env name starting with a digit", selector+"auditLogging:\n  sidecar: {image: fluent-bit, env: [{name: 1BAD, value: x}]}\n",
			"an environment variable name consists of letters, digits"),
		Entry("sidecar cpu request above its limit", selector+"auditLogging:\n  sidecar: {image: fluent-bit, resources: {requests: {cpu: \"2\"}, limits: {cpu: 500m}}}\n",
			"the sidecar's cpu request must not exceed its limit"),
		Entry("sidecar memory that is not a quantity", selector+"auditLogging:\n  sidecar: {image: fluent-bit, resources: {limits: {memory: lots}}}\n",
			"memory must be a quantity such as 64Mi"),
		Entry("relative log path", selector+"auditLogging:\n  logPath: var/log/audit\n", "auditLogging.logPath must be an absolute path"),
		Entry("unknown protocol", selector+ingressPorts("[{protocol: ICMP, port: 8}]"), `Unsupported value: "ICMP"`),
	)

	It("rejects a name longer than 63 characters, which could not label what phiguard creates", func() {
		err := k8s.Create(ctx, workload(strings.Repeat("n", 64), selector))
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).To(ContainSubstring("a PHIWorkload name is at most 63 characters"))
	})

	DescribeTable("accepts valid input",
		func(spec string) {
			Expect(k8s.Create(ctx, workload(name(), spec))).To(Succeed())
		},
		Entry("selector only", selector),
		Entry("namespace-wide with an empty selector", "selector: {}\nnamespaceWide: true\n"),
		Entry("matchExpressions selector", "selector:\n  matchExpressions:\n  - {key: app, operator: In, values: [records]}\n"),
		Entry("addressable safeguard off with a decision", selector+"transmissionSecurity:\n  mode: \"Off\"\n"+decision("TransmissionSecure")),
		Entry("every mode set", selector+`networkIsolation: {mode: Enforce, allowDNS: false}
encryptionAtRest: {mode: Audit}
backup: {mode: Enforce, schedule: "30 1 * * 1-5", ttl: 52560h, rpo: 90m, veleroNamespace: velero}
auditLogging: {mode: Audit, restartNonCompliant: true}
transmissionSecurity: {mode: Enforce}
accessControl: {mode: Enforce}
integrity: {mode: Audit}
availability: {mode: Enforce, minReplicas: 3}
`),
		Entry("cron descriptor", selector+"backup:\n  schedule: \"@daily\"\n"),
		Entry("a full audit sidecar", selector+`auditLogging:
  mode: Enforce
  logPath: /var/log/audit
  restartNonCompliant: true
  sidecar:
    image: registry.example/audit-forwarder@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
    args: [--input, /var/log/audit]
    env: [{name: SIEM_ENDPOINT, value: "https://siem.example:6514"}]
    resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {cpu: 100m, memory: 64Mi}}
`),
		Entry("every kind of peer and port", selector+`networkIsolation:
  ingress:
  - from:
    - podSelector: {matchLabels: {app: web}}
    - namespaceSelector: {matchLabels: {team: billing}}
      podSelector: {matchLabels: {app: api}}
    - ipBlock: {cidr: 203.0.113.0/24, except: [203.0.113.128/25]}
    - ipBlock: {cidr: "2001:db8::/48", except: ["2001:db8:0:1::/64"]}
    ports: [{port: http}, {protocol: TCP, port: 8000, endPort: 8100}, {protocol: UDP, port: 5353}]
  egress:
  - to: [{namespaceSelector: {}}]
    ports: [{protocol: SCTP}]
`),
		Entry("cron interval", selector+"backup:\n  schedule: \"@every 6h30m\"\n"),
		Entry("alternative with its measure", selector+`encryptionAtRest:
  mode: "Off"
decisions:
- safeguard: EncryptedAtRest
  kind: Alternative
  alternativeMeasure: volumes sit on a self-encrypting SAN with keys in the HSM
  justification: the storage array encrypts every block it writes
  approvedBy: ciso
  expires: "2031-01-01T00:00:00Z"
`),
	)
})

var _ = Describe("PHIPolicy validation", func() {
	It("accepts defaults on the policy named default", func() {
		p := policy("default", "defaults:\n  backup: {rpo: 12h}\nexemptNamespaces: [legacy-lab]\n")
		Expect(k8s.Create(ctx, p)).To(Succeed())
		Expect(k8s.Delete(ctx, p)).To(Succeed())
	})

	DescribeTable("rejects bad input",
		func(name, spec, wantMessage string) {
			err := k8s.Create(ctx, policy(name, spec))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(wantMessage))
		},
		Entry("a policy that is not named default", "org", "exemptNamespaces: [lab]\n",
			`only a PHIPolicy named "default" applies; name it default`),
		Entry("addressable safeguard off by default", "default", "defaults:\n  encryptionAtRest: {mode: \"Off\"}\n",
			"defaults.encryptionAtRest.mode cannot be Off: turning an Addressable safeguard off takes a decision documented on each PHIWorkload"),
		Entry("required safeguard off by default", "default", "defaults:\n  auditLogging: {mode: \"Off\"}\n",
			"auditLogging.mode cannot be Off"),
		Entry("a ruleset that does not exist", "default", "ruleset: Proposed2025\n",
			`spec.ruleset: Unsupported value: "Proposed2025": supported values: "SecurityRule2013", "ProposedRule2025"`),
		Entry("addressable safeguard off by default, said in the words of the proposed rule", "default",
			"ruleset: ProposedRule2025\ndefaults:\n  transmissionSecurity: {mode: \"Off\"}\n",
			"defaults.transmissionSecurity.mode cannot be Off: under ruleset ProposedRule2025 (HHS NPRM 90 FR 898) every safeguard is Required and no decision turns one off; use Audit to report without enforcing"),
		Entry("a minimum TTL longer than a duration can hold, which the manager could not read", "default",
			"backup:\n  minimumTTL: 10000000h\n",
			`backup.minimumTTL must be a duration such as "2160h" (units h, m, s; at most three parts of at most 99999 each)`),
		Entry("a decision lifetime of more parts than a duration can add up", "default",
			"decisions:\n  maxLifetime: 99999h99999h99999h99999h\n", "decisions.maxLifetime must be a duration"),
		Entry("addressable safeguard off by default, under the rule in force named explicitly", "default",
			"ruleset: SecurityRule2013\ndefaults:\n  encryptionAtRest: {mode: \"Off\"}\n",
			"defaults.encryptionAtRest.mode cannot be Off: turning an Addressable safeguard off takes a decision documented on each PHIWorkload"),
	)

	DescribeTable("stores the ruleset, SecurityRule2013 when none is given",
		func(spec, want string) {
			p := policy("default", spec)
			Expect(k8s.Create(ctx, p)).To(Succeed())
			DeferCleanup(func() { Expect(k8s.Delete(ctx, p)).To(Succeed()) })
			got, found, err := unstructured.NestedString(p.Object, "spec", "ruleset")
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(BeTrue())
			Expect(got).To(Equal(want))
		},
		Entry("none given", "exemptNamespaces: [lab]\n", "SecurityRule2013"),
		Entry("the proposed rule", "ruleset: ProposedRule2025\n", "ProposedRule2025"),
	)
})
