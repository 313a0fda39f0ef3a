package webhook_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// availabilityWorkload stores a PHIWorkload selecting app=records with
// availability in mode (minReplicas left at its built-in 2).
func availabilityWorkload(ns string, mode phiguardv1alpha1.Mode, mutate ...func(*phiguardv1alpha1.PHIWorkload)) {
	workload(ns, phiguardv1alpha1.ModeAudit, append([]func(*phiguardv1alpha1.PHIWorkload){func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.Availability = &phiguardv1alpha1.AvailabilitySpec{Mode: mode}
	}}, mutate...)...)
}

// recordsDeployment runs replicas of app=records, with a hardened container
// so that the integrity webhook has nothing to say.
func recordsDeployment(ns, name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: records},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: records},
				Spec: corev1.PodSpec{Containers: []corev1.Container{hardenedContainer("app")}}},
		},
	}
}

// spreadOverHostnames declares the spread Available accepts.
func spreadOverHostnames(spec *corev1.PodSpec) {
	spec.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: records},
	}}
}

// availabilityWarningsOf keeps the availability webhook's warnings among
// those a request got (other safeguards may warn about the same object).
func availabilityWarningsOf(all []string) []string {
	var out []string
	for _, w := range all {
		if strings.Contains(w, "(availability, ") {
			out = append(out, w)
		}
	}
	return out
}

// availabilityWarned creates obj with a dry run until the webhook's cache
// knows the workload and it warns, and returns the availability warnings.
func availabilityWarned(obj client.Object) []string {
	GinkgoHelper()
	var got []string
	Eventually(func(g Gomega) {
		warnings.take()
		g.Expect(k8s.Create(ctx, obj.DeepCopyObject().(client.Object), client.DryRunAll)).To(Succeed())
		got = availabilityWarningsOf(warnings.take())
		g.Expect(got).NotTo(BeEmpty())
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
	return got
}

func tooFewWarning(subject, ns, mode, runs string) string {
	return "phiguard: " + subject + " runs " + runs + "; PHIWorkload " + ns + "/records (availability, " + mode + ") requires at least 2 " +
		"so that ePHI stays available through the loss of a pod (HIPAA §164.308(a)(7)(ii)(C), availability.minReplicas): " +
		"set spec.replicas: 2, unless a HorizontalPodAutoscaler keeps at least 2 (its minReplicas)"
}

func noSpreadWarning(subject, ns, mode, extra string) string {
	return "phiguard: " + subject + " declares no spread over nodes, so its pods may all land on one node and be lost with it; " +
		"PHIWorkload " + ns + "/records (availability, " + mode + ") requires them on at least two nodes (HIPAA §164.308(a)(7)(ii)(C)): " +
		"add to spec.template.spec topologySpreadConstraints: [{maxSkew: 1, topologyKey: kubernetes.io/hostname, whenUnsatisfiable: DoNotSchedule, " +
		"labelSelector: {matchLabels: {app: records}}" + extra + "}], " +
		"or a podAntiAffinity on kubernetes.io/hostname whose labelSelector matches the template's labels"
}

var _ = Describe("Availability admission", func() {
	It("warns in Audit about a Deployment of one replica with no spread, and records the warnings", func() {
		ns := newNamespace()
		serviceAccount(ns, "records", ptr.To(false))
		availabilityWorkload(ns, phiguardv1alpha1.ModeAudit)
		d := recordsDeployment(ns, "api", 1)
		// A ServiceAccount of its own, so that the identity webhook records no
		// Event about the Deployment, into whose series this one would fold.
		d.Spec.Template.Spec.ServiceAccountName = "records"
		Expect(availabilityWarned(d)).To(Equal([]string{
			tooFewWarning("Deployment api", ns, "Audit", "1 replica"),
			noSpreadWarning("Deployment api", ns, "Audit", ", matchLabelKeys: [pod-template-hash]"),
		}))

		warnings.take()
		Expect(k8s.Create(ctx, d)).To(Succeed(), "never refused")
		Expect(availabilityWarningsOf(warnings.take())).To(HaveLen(2))

		By("recording the warnings as an Event on the workload, related to the Deployment")
		w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}}
		Eventually(func(g Gomega) {
			g.Expect(admissionEvents(g, w)).To(ContainElement(And(
				HaveField("Reason", phiguardv1alpha1.ReasonAdmissionWarned),
				HaveField("Related", HaveValue(And(HaveField("Kind", "Deployment"), HaveField("Name", "api")))),
				HaveField("Note", ContainSubstring("create of Deployment "+ns+"/api with warnings: phiguard: Deployment api runs 1 replica")))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

		By("an update that changes neither the replicas nor the template: no warning")
		warnings.take()
		d.Labels = map[string]string{"team": "records"}
		Expect(k8s.Update(ctx, d)).To(Succeed())
		Expect(availabilityWarningsOf(warnings.take())).To(BeEmpty())

		By("an update to 2 replicas with a declared spread: no warning")
		d.Spec.Replicas = ptr.To[int32](2)
		spreadOverHostnames(&d.Spec.Template.Spec)
		Expect(k8s.Update(ctx, d)).To(Succeed())
		Expect(availabilityWarningsOf(warnings.take())).To(BeEmpty())

		By("an update back to 1 replica: only the replicas warning")
		d.Spec.Replicas = ptr.To[int32](1)
		Expect(k8s.Update(ctx, d)).To(Succeed())
		Expect(availabilityWarningsOf(warnings.take())).To(ConsistOf(tooFewWarning("Deployment api", ns, "Audit", "1 replica")))
	})

	It("warns in Enforce too, never refusing: a StatefulSet of enough replicas but no spread", func() {
		ns := newNamespace()
		availabilityWorkload(ns, phiguardv1alpha1.ModeEnforce)
		sts := &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
			Spec: appsv1.StatefulSetSpec{
				Replicas: ptr.To[int32](3),
				Selector: &metav1.LabelSelector{MatchLabels: records},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "records", "tier": "db"}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{hardenedContainer("db")}}},
			},
		}
		Expect(availabilityWarned(sts)).To(ConsistOf(noSpreadWarning("StatefulSet db", ns, "Enforce", "")))
		Expect(k8s.Create(ctx, sts)).To(Succeed())
	})

	It("does not warn about a compliant Deployment, a template no workload covers, or replicas the workload's minReplicas allows", func() {
		ns := newNamespace()
		availabilityWorkload(ns, phiguardv1alpha1.ModeAudit)
		availabilityWarned(recordsDeployment(ns, "probe", 1))

		By("2 replicas and a topologySpreadConstraint over hostnames")
		warnings.take()
		ok := recordsDeployment(ns, "api", 2)
		spreadOverHostnames(&ok.Spec.Template.Spec)
		Expect(k8s.Create(ctx, ok)).To(Succeed())
		Expect(availabilityWarningsOf(warnings.take())).To(BeEmpty())

		By("a pod template the workload does not select")
		batch := recordsDeployment(ns, "batch", 1)
		batch.Spec.Selector.MatchLabels = map[string]string{"app": "batch"}
		batch.Spec.Template.Labels = map[string]string{"app": "batch"}
		Expect(k8s.Create(ctx, batch)).To(Succeed())
		Expect(availabilityWarningsOf(warnings.take())).To(BeEmpty())

		By("a workload whose availability.minReplicas is 1 (availability cannot be Off: it is Required)")
		single := newNamespace()
		availabilityWorkload(single, phiguardv1alpha1.ModeAudit, func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Availability.MinReplicas = ptr.To[int32](1)
		})
		one := recordsDeployment(single, "api", 1)
		Expect(availabilityWarned(one)).To(ConsistOf(noSpreadWarning("Deployment api", single, "Audit", ", matchLabelKeys: [pod-template-hash]")),
			"only the spread: one replica is enough")
		spreadOverHostnames(&one.Spec.Template.Spec)
		Expect(k8s.Create(ctx, one)).To(Succeed())
		Expect(availabilityWarningsOf(warnings.take())).To(BeEmpty())
	})
})
