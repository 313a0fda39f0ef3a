package safeguard

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// This file checks the judgment itself, without a control plane: the
// selected pods against every NetworkPolicy that selects them, compared with
// what the workload declares (phiguard's generated policy for it).

func handWritten(name string, spec networkingv1.NetworkPolicySpec) networkingv1.NetworkPolicy {
	return networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: name}, Spec: spec}
}

var (
	ingressType = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	egressType  = []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}
	everything  = metav1.LabelSelector{}
)

func ingressFrom(peers ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyIngressRule {
	return []networkingv1.NetworkPolicyIngressRule{{From: peers}}
}

func egressTo(peers ...networkingv1.NetworkPolicyPeer) []networkingv1.NetworkPolicyEgressRule {
	return []networkingv1.NetworkPolicyEgressRule{{To: peers}}
}

func TestJudgeIsolation(t *testing.T) {
	pods := []corev1.Pod{
		// Listed out of order: the message names them sorted.
		{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records-1", Labels: map[string]string{"app": "records", "tier": "cache"}}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records-0", Labels: map[string]string{"app": "records", "tier": "db"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Ports: []corev1.ContainerPort{
				{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}}}},
	}
	declaredRules := phiguardv1alpha1.NetworkIsolationSpec{
		Ingress: []phiguardv1alpha1.NetworkIngressRule{
			{From: []phiguardv1alpha1.NetworkPeer{{PodSelector: selector("app", "web")}}, Ports: []phiguardv1alpha1.NetworkPort{tcpPort(intstr.FromString("http"))}},
			{From: []phiguardv1alpha1.NetworkPeer{{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: "198.51.100.0/24"}}}, Ports: []phiguardv1alpha1.NetworkPort{tcpPort(intstr.FromInt32(8443))}},
		},
		Egress: []phiguardv1alpha1.NetworkEgressRule{{
			To: []phiguardv1alpha1.NetworkPeer{
				{NamespaceSelector: selector(corev1.LabelMetadataName, "billing"), PodSelector: selector("app", "api")},
				{IPBlock: &phiguardv1alpha1.IPBlock{CIDR: "203.0.113.0/24", Except: []string{"203.0.113.128/25"}}},
			},
			Ports: []phiguardv1alpha1.NetworkPort{{Protocol: corev1.ProtocolTCP, Port: ptr.To(intstr.FromInt32(8000)), EndPort: ptr.To[int32](8100)}},
		}},
	}
	const wider = ", wider than networkIsolation declares; NetworkPolicies add up, so narrow or remove it, or declare what it opens in networkIsolation"
	const isolated = "all 2 selected pods are isolated in both directions by NetworkPolicies, which open them no wider than networkIsolation declares"

	cases := []struct {
		name     string
		declared phiguardv1alpha1.NetworkIsolationSpec
		// own adds phiguard's generated policy, as in Enforce.
		own      bool
		policies []networkingv1.NetworkPolicy
		status   metav1.ConditionStatus
		reason   string
		message  string
	}{{
		name: "phiguard's own policy, with the defaults, is not wider",
		own:  true, status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonPodsIsolated, message: isolated,
	}, {
		name:     "phiguard's own policy, with declared rules of every kind, is not wider",
		declared: declaredRules, own: true,
		status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonPodsIsolated, message: isolated,
	}, {
		name: "an allow-all ingress rule ({}) opens the pods to anywhere",
		own:  true,
		policies: []networkingv1.NetworkPolicy{handWritten("allow-all", networkingv1.NetworkPolicySpec{PolicyTypes: ingressType,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{}}})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/allow-all opens ingress from anywhere on any port for 2 of 2 selected pods (records-0, records-1)" + wider,
	}, {
		name: "an allow-all egress rule ({})",
		own:  true,
		policies: []networkingv1.NetworkPolicy{handWritten("egress-all", networkingv1.NetworkPolicySpec{PodSelector: *selector("app", "records"),
			PolicyTypes: egressType, Egress: []networkingv1.NetworkPolicyEgressRule{{}}})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/egress-all opens egress to anywhere on any port for 2 of 2 selected pods (records-0, records-1)" + wider,
	}, {
		name: "egress to 0.0.0.0/0",
		own:  true,
		policies: []networkingv1.NetworkPolicy{handWritten("internet", networkingv1.NetworkPolicySpec{PolicyTypes: egressType,
			Egress: egressTo(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}})})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/internet opens egress to 0.0.0.0/0 on any port for 2 of 2 selected pods (records-0, records-1)" + wider,
	}, {
		name: "ingress from every namespace ({} namespaceSelector)",
		own:  true,
		policies: []networkingv1.NetworkPolicy{handWritten("cluster", networkingv1.NetworkPolicySpec{PolicyTypes: ingressType,
			Ingress: ingressFrom(networkingv1.NetworkPolicyPeer{NamespaceSelector: &everything})})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/cluster opens ingress from any pod in any namespace on any port for 2 of 2 selected pods (records-0, records-1)" + wider,
	}, {
		name: "DNS to kube-dns in any namespace is wider than DNS in kube-system",
		own:  true,
		policies: []networkingv1.NetworkPolicy{handWritten("dns", networkingv1.NetworkPolicySpec{PolicyTypes: egressType,
			Egress: []networkingv1.NetworkPolicyEgressRule{{
				To:    []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &everything, PodSelector: selector("k8s-app", "kube-dns")}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))}},
			}}})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/dns opens egress to pods with k8s-app=kube-dns in any namespace on UDP port 53 for 2 of 2 selected pods (records-0, records-1)" + wider,
	}, {
		name:     "hand-written rules within what is declared are not wider",
		declared: declaredRules, own: true,
		policies: []networkingv1.NetworkPolicy{handWritten("narrow", networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: selector("app", "records", "tier", "cache")}}},
				{From: []networkingv1.NetworkPolicyPeer{{PodSelector: selector("app", "web", "version", "2")}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromString("http"))}}},
				{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "198.51.100.0/25"}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(8443))}}},
			},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: selector(corev1.LabelMetadataName, "kube-system"), PodSelector: selector("k8s-app", "kube-dns")}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))}}},
				{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "203.0.113.0/26"}}},
					Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(8080))}}},
			},
		})},
		status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonPodsIsolated, message: isolated,
	}, {
		name:     "a number where the declared rule names a port is covered only where the pod's port of that name has it",
		declared: declaredRules, own: true,
		policies: []networkingv1.NetworkPolicy{handWritten("web-8080", networkingv1.NetworkPolicySpec{PolicyTypes: ingressType,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: selector("app", "web")}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(8080))}}}}})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/web-8080 opens ingress from pods with app=web in namespace clinic on TCP port 8080 for 1 of 2 selected pods (records-1)" + wider,
	}, {
		name: "a policy that selects one pod names that pod",
		own:  true,
		policies: []networkingv1.NetworkPolicy{handWritten("db-from-billing", networkingv1.NetworkPolicySpec{PodSelector: *selector("tier", "db"),
			PolicyTypes: ingressType, Ingress: ingressFrom(networkingv1.NetworkPolicyPeer{NamespaceSelector: selector("team", "billing")})})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/db-from-billing opens ingress from any pod in namespaces with team=billing on any port for 1 of 2 selected pods (records-0)" + wider,
	}, {
		name: "of one policy's flows, the widest is named",
		own:  true,
		policies: []networkingv1.NetworkPolicy{handWritten("mixed", networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{PodSelector: selector("app", "web")}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(9999))}}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}},
				Ports: []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(443))}}}},
		})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/mixed opens egress to 0.0.0.0/0 on TCP port 443 for 2 of 2 selected pods (records-0, records-1)" + wider,
	}, {
		name: "several policies: the widest named with its flow, the others listed widest first",
		own:  true,
		policies: []networkingv1.NetworkPolicy{
			handWritten("a-cluster", networkingv1.NetworkPolicySpec{PolicyTypes: ingressType,
				Ingress: ingressFrom(networkingv1.NetworkPolicyPeer{NamespaceSelector: &everything})}),
			handWritten("b-internet", networkingv1.NetworkPolicySpec{PolicyTypes: egressType,
				Egress: egressTo(networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}})}),
			handWritten("c-anything", networkingv1.NetworkPolicySpec{PodSelector: *selector("tier", "cache"), PolicyTypes: ingressType,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}),
		},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/c-anything opens ingress from anywhere on any port for 1 of 2 selected pods (records-1), wider than networkIsolation declares; " +
			"so do NetworkPolicies clinic/b-internet, clinic/a-cluster; NetworkPolicies add up, so narrow or remove them, or declare what they open in networkIsolation",
	}, {
		name: "another workload's phiguard policy over some of the pods counts like any other",
		own:  true,
		policies: []networkingv1.NetworkPolicy{handWritten("phiguard-cache", networkingv1.NetworkPolicySpec{PodSelector: *selector("tier", "cache"),
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress:     ingressFrom(networkingv1.NetworkPolicyPeer{PodSelector: selector("tier", "cache")}),
			Egress:      egressTo(networkingv1.NetworkPolicyPeer{PodSelector: selector("tier", "cache")})})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonIsolationBypassed,
		message: "NetworkPolicy clinic/phiguard-cache opens ingress from pods with tier=cache in namespace clinic on any port for 1 of 2 selected pods (records-1)" + wider,
	}, {
		name: "a policy being deleted, or of another namespace, or selecting other pods, is not counted",
		own:  true,
		policies: []networkingv1.NetworkPolicy{
			{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "going", DeletionTimestamp: ptr.To(metav1.Now()), Finalizers: []string{"example.com/hold"}},
				Spec: networkingv1.NetworkPolicySpec{PolicyTypes: ingressType, Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}},
			{ObjectMeta: metav1.ObjectMeta{Namespace: "billing", Name: "allow-all"},
				Spec: networkingv1.NetworkPolicySpec{PolicyTypes: ingressType, Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}},
			handWritten("web", networkingv1.NetworkPolicySpec{PodSelector: *selector("app", "web"), PolicyTypes: ingressType,
				Ingress: []networkingv1.NetworkPolicyIngressRule{{}}}),
		},
		status: metav1.ConditionTrue, reason: phiguardv1alpha1.ReasonPodsIsolated, message: isolated,
	}, {
		name: "Audit: a pod open in a direction stays PodsNotIsolated, and a policy wider than declared is named too",
		policies: []networkingv1.NetworkPolicy{handWritten("allow-all", networkingv1.NetworkPolicySpec{PolicyTypes: ingressType,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{}}})},
		status: metav1.ConditionFalse, reason: phiguardv1alpha1.ReasonPodsNotIsolated,
		message: "2 of 2 selected pods are not isolated: records-0 (egress open), records-1 (egress open); set networkIsolation.mode to Enforce or add default-deny NetworkPolicies; " +
			"and NetworkPolicy clinic/allow-all opens ingress from anywhere on any port for 2 of 2 selected pods (records-0, records-1)" + wider,
	}}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			declared := generated(t, tc.declared)
			policies := tc.policies
			if tc.own {
				policies = append(policies, declared)
			}
			r := judgeIsolation(pods, policies, &declared).audit()
			g.Expect(r.Status).To(Equal(tc.status))
			g.Expect(r.Reason).To(Equal(tc.reason))
			g.Expect(r.Message).To(Equal(tc.message))
		})
	}
}
