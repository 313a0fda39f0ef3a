package webhook_test

import (
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// identityWorkload stores a PHIWorkload selecting app=records with access
// control in mode, tokens not allowed unless allowTokens.
func identityWorkload(ns string, mode phiguardv1alpha1.Mode, allowTokens bool) {
	GinkgoHelper()
	workload(ns, phiguardv1alpha1.ModeAudit, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.AccessControl = &phiguardv1alpha1.AccessControlSpec{Mode: mode, AllowTokenAutomount: ptr.To(allowTokens)}
	})
}

// serviceAccount stores a ServiceAccount; automount nil leaves
// automountServiceAccountToken unset.
func serviceAccount(ns, name string, automount *bool) {
	GinkgoHelper()
	Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		AutomountServiceAccountToken: automount})).To(Succeed())
}

// identityWarningsOf keeps the identity webhook's warnings among those a
// request got (other safeguards may warn about the same object).
func identityWarningsOf(all []string) []string {
	var out []string
	for _, w := range all {
		if strings.Contains(w, "(access control, ") {
			out = append(out, w)
		}
	}
	return out
}

// withoutIdentityWarnings drops the identity webhook's warnings from those a
// request got: a pod on the default ServiceAccount that another safeguard's
// test creates gets them too (accessControl is Audit by default).
func withoutIdentityWarnings(all []string) []string {
	var out []string
	for _, w := range all {
		if !strings.Contains(w, "(access control, ") {
			out = append(out, w)
		}
	}
	return out
}

// identityWarnedEventually creates obj with dry runs until the identity
// warnings match (the webhook's cache knows the workload and the
// ServiceAccounts).
func identityWarnedEventually(obj client.Object, match OmegaMatcher) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		warnings.take()
		g.Expect(k8s.Create(ctx, obj.DeepCopyObject().(client.Object), client.DryRunAll)).To(Succeed())
		g.Expect(identityWarningsOf(warnings.take())).To(match)
	}, 10*time.Second, 50*time.Millisecond).Should(Succeed())
}

// identityCreated creates obj (the webhook never refuses) and returns the
// identity warnings it got.
func identityCreated(obj client.Object) []string {
	GinkgoHelper()
	warnings.take()
	Expect(k8s.Create(ctx, obj)).To(Succeed(), "never refused")
	return identityWarningsOf(warnings.take())
}

func identityRequirer(ns string, mode phiguardv1alpha1.Mode) string {
	return "PHIWorkload " + ns + "/records (access control, " + string(mode) + ")"
}

func defaultSAWarning(subject, ns string, mode phiguardv1alpha1.Mode, specAt, named string) string {
	return "phiguard: " + subject + " runs as the namespace's default ServiceAccount (" + specAt + "serviceAccountName" + named + "), " +
		"which every pod that names none shares; " + identityRequirer(ns, mode) + " requires ePHI pods to run as a ServiceAccount of their own " +
		"(HIPAA §164.312(a)(1)), and reports DefaultServiceAccount until then: create a ServiceAccount for it and set " +
		specAt + "serviceAccountName to its name"
}

func missingSAWarning(subject, ns string, mode phiguardv1alpha1.Mode, specAt, sa string) string {
	return "phiguard: " + subject + " runs as ServiceAccount " + sa + " (" + specAt + "serviceAccountName: " + sa + "), which does not exist in namespace " + ns +
		"; " + identityRequirer(ns, mode) + " requires ePHI pods to run as a ServiceAccount of their own that exists (HIPAA §164.312(a)(1)), " +
		"and reports ServiceAccountMissing until then: create it (kubectl create serviceaccount " + sa + " -n " + ns + ") or set " +
		specAt + "serviceAccountName to one that exists"
}

func tokenWarning(subject, ns string, mode phiguardv1alpha1.Mode, sa, how, fix string) string {
	return "phiguard: " + subject + " would mount ServiceAccount " + sa + "'s API token in its pods (" + how + "); " + identityRequirer(ns, mode) +
		" allows no token (accessControl.allowTokenAutomount: false, HIPAA §164.312(a)(1)), and reports TokenMounted until then: " + fix +
		", or, if the pods call the Kubernetes API, set accessControl.allowTokenAutomount: true on PHIWorkload " + ns + "/records"
}

// tokenVolumeSpec runs as ServiceAccount sa and mounts a projected
// serviceAccountToken volume named token in container app.
func tokenVolumeSpec(sa string) corev1.PodSpec {
	app := hardenedContainer("app")
	app.VolumeMounts = []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/secrets/tokens"}}
	return corev1.PodSpec{
		ServiceAccountName: sa, RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{app},
		Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", Audience: "vault"}}}}}}},
	}
}

var _ = Describe("Access identity admission", func() {
	const unsetMounts = "automountServiceAccountToken unset on the pod and the ServiceAccount, which mounts it"

	It("warns in Audit about a Deployment on the default ServiceAccount with its token mounted, never refusing, and records the warnings", func() {
		ns := newNamespace()
		identityWorkload(ns, phiguardv1alpha1.ModeAudit, false)
		serviceAccount(ns, "default", nil) // as the controller-manager makes it in every namespace
		serviceAccount(ns, "records", ptr.To(false))
		d := recordsDeployment(ns, "api", 2)
		spreadOverHostnames(&d.Spec.Template.Spec) // so that Available records no Event about it, into whose series ours would fold
		want := []string{
			defaultSAWarning("Deployment api", ns, phiguardv1alpha1.ModeAudit, "spec.template.spec.", " unset"),
			tokenWarning("Deployment api", ns, phiguardv1alpha1.ModeAudit, "default", unsetMounts,
				"set spec.template.spec.automountServiceAccountToken: false"),
		}
		identityWarnedEventually(d, Equal(want))
		Expect(identityCreated(d)).To(Equal(want))

		By("recording the warnings as an Event on the workload, related to the Deployment")
		w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"}}
		Eventually(func(g Gomega) {
			g.Expect(admissionEvents(g, w)).To(ContainElement(And(
				HaveField("Reason", phiguardv1alpha1.ReasonAdmissionWarned),
				HaveField("Related", HaveValue(And(HaveField("Kind", "Deployment"), HaveField("Name", "api")))),
				HaveField("Note", ContainSubstring("create of Deployment "+ns+"/api with warnings: phiguard: Deployment api runs as the namespace's default ServiceAccount")))))
		}, 10*time.Second, 50*time.Millisecond).Should(Succeed())

		By("an update that changes neither the ServiceAccount nor the token's mounts: no warning")
		warnings.take()
		d.Spec.Replicas = ptr.To[int32](3)
		d.Spec.Template.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "debug"}}
		Expect(k8s.Update(ctx, d)).To(Succeed())
		Expect(identityWarningsOf(warnings.take())).To(BeEmpty())

		By("an update to a ServiceAccount of its own that mounts no token: no warning")
		d.Spec.Template.Spec.ServiceAccountName = "records"
		Expect(k8s.Update(ctx, d)).To(Succeed())
		Expect(identityWarningsOf(warnings.take())).To(BeEmpty())

		By("an update that mounts the token on the pods after all: only the token warning")
		d.Spec.Template.Spec.AutomountServiceAccountToken = ptr.To(true)
		Expect(k8s.Update(ctx, d)).To(Succeed())
		Expect(identityWarningsOf(warnings.take())).To(ConsistOf(tokenWarning("Deployment api", ns, phiguardv1alpha1.ModeAudit, "records",
			"automountServiceAccountToken: true on the pod", "set spec.template.spec.automountServiceAccountToken: false")))
	})

	It("warns in Enforce too, never refusing: a pod whose ServiceAccount does not exist, a Job mounting a serviceAccountToken volume", func() {
		ns := newNamespace()
		identityWorkload(ns, phiguardv1alpha1.ModeEnforce, false)
		serviceAccount(ns, "records", ptr.To(false))
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-0", Labels: records},
			Spec: corev1.PodSpec{ServiceAccountName: "ghost", AutomountServiceAccountToken: ptr.To(false),
				Containers: []corev1.Container{hardenedContainer("app")}}}
		want := []string{missingSAWarning("Pod records-0", ns, phiguardv1alpha1.ModeEnforce, "spec.", "ghost")}
		identityWarnedEventually(p, Equal(want))
		Expect(identityCreated(p)).To(Equal(want))

		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "export"},
			Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: records},
				Spec: tokenVolumeSpec("records")}}}
		want = []string{tokenWarning("Job export", ns, phiguardv1alpha1.ModeEnforce, "records",
			"serviceAccountToken volume token mounted by container app",
			"remove the serviceAccountToken volumes token from spec.template.spec.volumes and their volumeMounts")}
		identityWarnedEventually(job, Equal(want))
		Expect(identityCreated(job)).To(Equal(want))
	})

	It("does not warn about a compliant pod, tokens the workload allows, a pod it does not select, or a controller's pod", func() {
		ns := newNamespace()
		identityWorkload(ns, phiguardv1alpha1.ModeAudit, false)
		identityWarnedEventually(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe", Labels: records},
			Spec: corev1.PodSpec{Containers: []corev1.Container{hardenedContainer("app")}}}, Not(BeEmpty()))

		By("a pod on a ServiceAccount of its own that mounts no token")
		serviceAccount(ns, "records", ptr.To(false))
		ok := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-0", Labels: records},
			Spec: corev1.PodSpec{ServiceAccountName: "records", Containers: []corev1.Container{hardenedContainer("app")}}}
		identityWarnedEventually(ok, BeEmpty()) // until the cache has the ServiceAccount
		Expect(identityCreated(ok)).To(BeEmpty())

		By("a pod the workload does not select, on the default ServiceAccount")
		Expect(identityCreated(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "batch-0", Labels: map[string]string{"app": "batch"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{hardenedContainer("app")}}})).To(BeEmpty())

		By("a pod a controller owns (its owner is judged)")
		Expect(identityCreated(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records-abc12", Labels: records,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "records-abc", UID: types.UID("0f0e6d5c-1b2a-4c3d-8e9f-0a1b2c3d4e5f"),
				Controller: ptr.To(true)}}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{hardenedContainer("app")}}})).To(BeEmpty())

		By("a workload that allows tokens (accessControl.allowTokenAutomount: true): a token volume warns nothing")
		allowed := newNamespace()
		identityWorkload(allowed, phiguardv1alpha1.ModeAudit, true)
		serviceAccount(allowed, "records", nil)
		identityWarnedEventually(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: allowed, Name: "probe", Labels: records},
			Spec: corev1.PodSpec{Containers: []corev1.Container{hardenedContainer("app")}}}, Not(BeEmpty()))
		tokens := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: allowed, Name: "records-0", Labels: records}, Spec: tokenVolumeSpec("records")}
		identityWarnedEventually(tokens, BeEmpty())
		Expect(identityCreated(tokens)).To(BeEmpty())
	})
})
