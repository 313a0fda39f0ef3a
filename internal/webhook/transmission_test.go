package webhook_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// transmissionWorkload stores a PHIWorkload selecting app=records with
// transmission security in mode, and the pods records-0 (which it selects)
// and batch-0 (which it does not).
func transmissionWorkload(ns string, mode phiguardv1alpha1.Mode) {
	GinkgoHelper()
	workload(ns, phiguardv1alpha1.ModeAudit, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.TransmissionSecurity = &phiguardv1alpha1.TransmissionSecuritySpec{Mode: mode}
	})
	transmissionPods(ns)
}

func transmissionPods(ns string) {
	GinkgoHelper()
	for name, labels := range map[string]map[string]string{"records-0": records, "batch-0": {"app": "batch"}} {
		Expect(k8s.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: corev1.PodSpec{Containers: []corev1.Container{hardenedContainer("app")}}})).To(Succeed())
	}
}

// service is a Service of type typ selecting app=app, with one port per
// name=appProtocol ("" for none).
func service(ns, name, app string, typ corev1.ServiceType, ports ...[2]string) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": app}}}
	for i, p := range ports {
		port := corev1.ServicePort{Name: p[0], Port: int32(8080 + i)}
		if p[1] != "" {
			port.AppProtocol = ptr.To(p[1])
		}
		svc.Spec.Ports = append(svc.Spec.Ports, port)
	}
	return svc
}

// ingress sends each host to Service svc; tls lists the hosts spec.tls covers.
func ingress(ns, name, svc string, hosts, tls []string) *networkingv1.Ingress {
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	backend := networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc,
		Port: networkingv1.ServiceBackendPort{Number: 8080}}}
	for _, h := range hosts {
		ing.Spec.Rules = append(ing.Spec.Rules, networkingv1.IngressRule{Host: h, IngressRuleValue: networkingv1.IngressRuleValue{
			HTTP: &networkingv1.HTTPIngressRuleValue{Paths: []networkingv1.HTTPIngressPath{{Path: "/",
				PathType: ptr.To(networkingv1.PathTypePrefix), Backend: backend}}}}})
	}
	if len(tls) > 0 {
		ing.Spec.TLS = []networkingv1.IngressTLS{{Hosts: tls, SecretName: "records-tls"}}
	}
	return ing
}

// warnedEventually waits until the webhook's cache knows what it needs
// (probing with dry-run creates, which nothing stores) to warn about obj,
// and returns the warnings.
func warnedEventually(obj client.Object) []string {
	GinkgoHelper()
	var got []string
	Eventually(func(g Gomega) {
		warnings.take()
		g.Expect(k8s.Create(ctx, obj.DeepCopyObject().(client.Object), client.DryRunAll)).To(Succeed())
		got = warnings.take()
		g.Expect(got).NotTo(BeEmpty())
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	return got
}

// createdWith creates obj (the webhook never refuses) and returns the warnings it got.
func createdWith(obj client.Object) []string {
	GinkgoHelper()
	warnings.take()
	Expect(k8s.Create(ctx, obj)).To(Succeed())
	return warnings.take()
}

var _ = Describe("Transmission security admission", func() {
	const (
		serviceFix = ": serve TLS on each port and declare it with appProtocol (https, tls, kubernetes.io/wss), " +
			"or expose the pods through a TLS-terminating Ingress or Gateway instead. "
		ingressFix = ": list each host in the Ingress's spec.tls with a certificate Secret, and route by host. "
	)
	requires := func(ns string, mode phiguardv1alpha1.Mode, reason string) string {
		return "PHIWorkload " + ns + "/records requires encryption in transit (HIPAA §164.312(e)(2)(ii), transmissionSecurity.mode " +
			string(mode) + "), and its TransmissionSecure condition reports " + reason + " until then"
	}

	It("admits, in Audit, a NodePort Service and an Ingress that expose the pods without TLS, warning what to change, and records the warnings", func() {
		ns := newNamespace()
		transmissionWorkload(ns, phiguardv1alpha1.ModeAudit)

		np := service(ns, "records-np", "records", corev1.ServiceTypeNodePort, [2]string{"http", ""}, [2]string{"web", "https"}, [2]string{"ws", "kubernetes.io/ws"})
		warnedEventually(np)
		Expect(createdWith(np)).To(ConsistOf("phiguard (Audit, allowed): Service records-np would carry ePHI unencrypted: " +
			"Service records-np (NodePort) exposes port http/8080 (appProtocol unset), port ws/8082 (appProtocol kubernetes.io/ws)" +
			serviceFix + requires(ns, phiguardv1alpha1.ModeAudit, phiguardv1alpha1.ReasonServiceExposedWithoutTLS)))

		By("a ClusterIP Service is not exposed: no warning")
		Expect(createdWith(service(ns, "records", "records", corev1.ServiceTypeClusterIP, [2]string{"http", ""}))).To(BeEmpty())

		By("an Ingress with one host outside spec.tls, and a rule without a host")
		ing := ingress(ns, "public", "records", []string{"records.example.test", "admin.example.test", ""}, []string{"records.example.test"})
		warnedEventually(ing) // the webhook's cache knows Service records
		Expect(createdWith(ing)).To(ConsistOf("phiguard (Audit, allowed): Ingress public would carry ePHI unencrypted: " +
			"Ingress public serves host admin.example.test (to Service records) without TLS: spec.tls does not list it; " +
			"Ingress public has a rule without a host to Service records, which spec.tls cannot cover" +
			ingressFix + requires(ns, phiguardv1alpha1.ModeAudit, phiguardv1alpha1.ReasonIngressWithoutTLS)))

		By("an update that lists every host in spec.tls and drops the host-less rule: no warning")
		Expect(k8s.Get(ctx, client.ObjectKeyFromObject(ing), ing)).To(Succeed())
		ing.Spec.Rules = ing.Spec.Rules[:2]
		ing.Spec.TLS[0].Hosts = []string{"*.example.test"}
		warnings.take()
		Expect(k8s.Update(ctx, ing)).To(Succeed())
		Expect(warnings.take()).To(BeEmpty())

		By("recording each warning as an Event on the workload, related to the object")
		w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}}
		Eventually(func(g Gomega) {
			g.Expect(admissionEvents(g, w)).To(ContainElements(
				And(HaveField("Reason", phiguardv1alpha1.ReasonAdmissionWarned),
					HaveField("Related", HaveValue(And(HaveField("Kind", "Service"), HaveField("Name", "records-np")))),
					HaveField("Note", ContainSubstring("create of Service "+ns+"/records-np with warnings: phiguard (Audit, allowed): Service records-np"))),
				And(HaveField("Reason", phiguardv1alpha1.ReasonAdmissionWarned),
					HaveField("Related", HaveValue(And(HaveField("Kind", "Ingress"), HaveField("Name", "public")))),
					HaveField("Note", ContainSubstring("create of Ingress "+ns+"/public with warnings: phiguard (Audit, allowed): Ingress public")))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	})

	It("warns in Enforce too, never refusing, and not about what declares TLS or exposes no selected pod", func() {
		ns := newNamespace()
		transmissionWorkload(ns, phiguardv1alpha1.ModeEnforce)

		lb := service(ns, "records-lb", "records", corev1.ServiceTypeLoadBalancer, [2]string{"https", "HTTPS"}, [2]string{"grpc", "kubernetes.io/h2c"})
		Expect(warnedEventually(lb)).To(ConsistOf("phiguard (Enforce, allowed): Service records-lb would carry ePHI unencrypted: " +
			"Service records-lb (LoadBalancer) exposes port grpc/8081 (appProtocol kubernetes.io/h2c)" +
			serviceFix + requires(ns, phiguardv1alpha1.ModeEnforce, phiguardv1alpha1.ReasonServiceExposedWithoutTLS)))
		Expect(createdWith(lb)).NotTo(BeEmpty(), "admitted, with the warning")

		ext := service(ns, "records-ext", "records", corev1.ServiceTypeClusterIP, [2]string{"http", ""})
		ext.Spec.ExternalIPs = []string{"192.0.2.10"}
		Expect(createdWith(ext)).To(ConsistOf(
			"spec.externalIPs is deprecated and may no longer be implemented in some clusters", // the apiserver's own
			ContainSubstring("Service records-ext (externalIPs) exposes port http/8080 (appProtocol unset)")))

		By("no warning: TLS on every port, or pods the workload does not select")
		Expect(createdWith(service(ns, "records-tls", "records", corev1.ServiceTypeLoadBalancer,
			[2]string{"https", "https"}, [2]string{"tls", "tls"}, [2]string{"wss", "kubernetes.io/wss"}))).To(BeEmpty())
		Expect(createdWith(service(ns, "batch", "batch", corev1.ServiceTypeNodePort, [2]string{"http", ""}))).To(BeEmpty())
		Expect(createdWith(ingress(ns, "batch", "batch", []string{"batch.example.test"}, nil))).To(BeEmpty())

		By("an Ingress whose default backend is a Service selecting the pods")
		def := ingress(ns, "catch-all", "records-ext", nil, nil)
		def.Spec.DefaultBackend = &networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: "records-ext",
			Port: networkingv1.ServiceBackendPort{Number: 8080}}}
		Expect(warnedEventually(def)).To(ConsistOf("phiguard (Enforce, allowed): Ingress catch-all would carry ePHI unencrypted: " +
			"Ingress catch-all sends any host its rules do not name to Service records-ext (spec.defaultBackend), over HTTP as well" +
			ingressFix + requires(ns, phiguardv1alpha1.ModeEnforce, phiguardv1alpha1.ReasonIngressWithoutTLS)))
		Expect(createdWith(def)).NotTo(BeEmpty(), "admitted, with the warning")
	})

	It("warns nothing while transmission security is Off by a decision", func() {
		ns := newNamespace()
		off := &phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: records},
				SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
					TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeOff}},
				Decisions: []phiguardv1alpha1.Decision{{Safeguard: phiguardv1alpha1.TransmissionSecure, Kind: phiguardv1alpha1.DecisionAlternative,
					Justification: "the node pool encrypts every packet with WireGuard", AlternativeMeasure: "WireGuard between nodes",
					ApprovedBy: "ciso@clinic.example", Expires: metav1.NewTime(time.Now().Add(30 * 24 * time.Hour).Truncate(time.Second))}}},
		}
		Expect(k8s.Create(ctx, off)).To(Succeed())
		// A second workload, created after it, in Audit: once the webhook
		// warns for its pods, its cache knows the first one too.
		Expect(k8s.Create(ctx, &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "batch"},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "batch"}},
				SafeguardSettings: phiguardv1alpha1.SafeguardSettings{
					TransmissionSecurity: &phiguardv1alpha1.TransmissionSecuritySpec{Mode: phiguardv1alpha1.ModeAudit}}}})).To(Succeed())
		transmissionPods(ns)
		Expect(warnedEventually(service(ns, "batch-np", "batch", corev1.ServiceTypeNodePort, [2]string{"http", ""}))).
			To(ConsistOf(HavePrefix("phiguard (Audit, allowed): Service batch-np would carry ePHI unencrypted")))

		Expect(createdWith(service(ns, "records-np", "records", corev1.ServiceTypeNodePort, [2]string{"http", ""}))).To(BeEmpty())
		Expect(createdWith(ingress(ns, "public", "records-np", []string{"records.example.test"}, nil))).To(BeEmpty())
	})
})
