package safeguard

import (
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// withSidecar gives a pod the built-in audit sidecar, as the webhook injects
// it for the workload records.
func withSidecar(p *corev1.Pod) { withSidecarImage(DefaultAuditSidecarImage)(p) }

// withSidecarImage gives a pod the audit sidecar of an image and the annotation
// naming it, as the webhook injects it for the workload records.
func withSidecarImage(image string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		InjectAuditSidecar(p, "records", &phiguardv1alpha1.AuditLoggingSpec{LogPath: DefaultAuditLogPath,
			Sidecar: &phiguardv1alpha1.AuditSidecar{Image: image}})
	}
}

func optedOut(p *corev1.Pod) {
	p.Annotations = map[string]string{AuditOptOutAnnotation: "false"}
}

// controlledBy makes owner the controller of a pod or ReplicaSet, as the
// controller-manager (which envtest does not run) would.
func controlledBy(obj metav1.Object, kind string, owner client.Object) {
	obj.SetOwnerReferences([]metav1.OwnerReference{{APIVersion: appsv1.SchemeGroupVersion.String(), Kind: kind,
		Name: owner.GetName(), UID: owner.GetUID(), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}})
}

func TestAuditLoggingNamesThePodsWithoutTheSidecar(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	labels := map[string]string{"app": "records"}
	newPod(t, ns, "records-b", labels, nil)
	newPod(t, ns, "records-a", labels, nil)
	newPod(t, ns, "records-c", labels, withSidecar)
	newPod(t, ns, "records-d", labels, optedOut)
	// A container with the sidecar's name proves nothing by itself.
	newPod(t, ns, "records-e", labels, func(p *corev1.Pod) {
		p.Spec.InitContainers = []corev1.Container{{Name: AuditSidecarName, Image: DefaultAuditSidecarImage,
			RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
	})
	newPod(t, ns, "records-f", labels, func(p *corev1.Pod) {
		withSidecar(p)
		p.Spec.InitContainers[0].Image = "registry.example/lookalike:1"
	})
	newPod(t, ns, "other-0", map[string]string{"app": "other"}, nil) // not selected
	c, writes := countingClient(t)

	r := AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsWithoutSidecar))
	g.Expect(r.Message).To(Equal("5 of 6 selected pods lack the audit sidecar: records-a (no phiguard-audit container), " +
		"records-b (no phiguard-audit container), records-d (opted out with phiguard.io/inject-audit-sidecar=false), " +
		"records-e (no phiguard.io/audit-sidecar annotation), " +
		"records-f (container phiguard-audit has image registry.example/lookalike:1, annotation says " + DefaultAuditSidecarImage + "); " +
		"pods created before the PHIWorkload, before its sidecar settings changed or while phiguard was down get it when re-created"))
	g.Expect(r.Events).To(BeEmpty(), "restartNonCompliant is off by default")
	g.Expect(writes.N()).To(BeZero())
}

func TestAuditLoggingNamesBothImagesWhenTheSettingsChangedAfterInjection(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	labels := map[string]string{"app": "records"}
	newPod(t, ns, "records-0", labels, withSidecar)
	c, _ := countingClient(t)

	r := AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonSidecarsPresent))
	g.Expect(r.Message).To(Equal("all 1 selected pods carry the audit sidecar " + DefaultAuditSidecarImage))

	const newer = "registry.example/forwarder@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{Sidecar: &phiguardv1alpha1.AuditSidecar{Image: newer}}
	})
	r = AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsWithoutSidecar))
	g.Expect(r.Message).To(Equal("1 of 1 selected pods lack the audit sidecar: records-0 (container phiguard-audit has image " +
		DefaultAuditSidecarImage + ", the settings say " + newer + " (changed after the pod was created; re-creating the pod brings it)); " +
		"pods created before the PHIWorkload, before its sidecar settings changed or while phiguard was down get it when re-created"))
}

func TestAuditLoggingJudgesNothingWhenNoPodIsSelected(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, nil)
	newPod(t, ns, "other-0", map[string]string{"app": "other"}, withSidecar)
	c, _ := countingClient(t)

	r := AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, time.Now()))
	g.Expect(r.Status).To(Equal(metav1.ConditionUnknown), "not \"all 0 selected pods carry the audit sidecar\"")
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonNoPodsSelected))
	g.Expect(r.Message).To(Equal("spec.selector matches no pod in namespace " + ns + ", so there is nothing to judge; check the selector (app=records)"))
}

// The apiserver refuses, with the CRD's messages, an audit output without the
// fields its type needs, a root UID, and args with an output. Dry-run: the
// PHIPolicy named default would otherwise apply to every test in the package.
func TestAuditSidecarSettingsAreValidatedByTheCRD(t *testing.T) {
	ns := newNamespace(t)
	workload := func(sc *phiguardv1alpha1.AuditSidecar) client.Object {
		return &phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
				SafeguardSettings: phiguardv1alpha1.SafeguardSettings{AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{Sidecar: sc}}},
		}
	}
	policy := func(sc *phiguardv1alpha1.AuditSidecar) client.Object {
		return &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
			Spec: phiguardv1alpha1.PHIPolicySpec{Defaults: phiguardv1alpha1.SafeguardSettings{
				AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{Sidecar: sc}}}}
	}
	output := func(o phiguardv1alpha1.AuditOutput) *phiguardv1alpha1.AuditSidecar {
		return &phiguardv1alpha1.AuditSidecar{Image: DefaultAuditSidecarImage, Output: &o}
	}
	for name, tc := range map[string]struct {
		obj  client.Object
		want string // "" when it is accepted
	}{
		"forward without a port": {workload(output(phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputForward, Host: "fluentd.logging"})),
			"an audit output of type forward needs host and port"},
		"http without a uri, in the policy": {policy(output(phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputHTTP, Host: "siem.example", Port: 443})),
			"an audit output of type http needs host, port and uri"},
		"s3 without a region": {workload(output(phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputS3, Bucket: "clinic-audit"})),
			"an audit output of type s3 needs bucket and region"},
		"stdout with a host": {workload(output(phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputStdout, Host: "siem.example"})),
			"host and port belong to audit outputs of type forward or http"},
		"an unknown type": {workload(output(phiguardv1alpha1.AuditOutput{Type: "syslog"})),
			`spec.auditLogging.sidecar.output.type: Unsupported value: "syslog"`},
		"args and an output": {workload(&phiguardv1alpha1.AuditSidecar{Image: "registry.example/forwarder:2", Args: []string{"-v"},
			Output: &phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputStdout}}),
			"set args (the sidecar's whole command line, for an image of your own) or output (phiguard builds Fluent Bit's command line), not both"},
		"runAsUser 0": {workload(&phiguardv1alpha1.AuditSidecar{Image: DefaultAuditSidecarImage, RunAsUser: ptr.To[int64](0)}),
			"spec.auditLogging.sidecar.runAsUser: Invalid value: 0: spec.auditLogging.sidecar.runAsUser in body should be greater than or equal to 1"},
		"runAsGroup 0, in the policy": {policy(&phiguardv1alpha1.AuditSidecar{Image: DefaultAuditSidecarImage, RunAsGroup: ptr.To[int64](0)}),
			"spec.defaults.auditLogging.sidecar.runAsGroup: Invalid value: 0: spec.defaults.auditLogging.sidecar.runAsGroup in body should be greater than or equal to 1"},
		"a logPath in the sidecar's state": {&phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "records"},
			Spec: phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "records"}},
				SafeguardSettings: phiguardv1alpha1.SafeguardSettings{AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{LogPath: "/var/lib"}}}},
			"auditLogging.logPath must not be, contain or lie in /var/lib/phiguard-audit: the sidecar keeps its own state there"},
		"every output type with its fields, in the policy": {policy(output(phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputHTTP,
			Host: "siem.example", Port: 443, URI: "/ingest", TLS: ptr.To(true)})), ""},
		"forward": {workload(output(phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputForward, Host: "10.0.0.7", Port: 24224})), ""},
		"s3":      {workload(output(phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputS3, Bucket: "clinic-audit", Region: "us-gov-west-1"})), ""},
		"a UID and GID": {workload(&phiguardv1alpha1.AuditSidecar{Image: DefaultAuditSidecarImage,
			RunAsUser: ptr.To[int64](1), RunAsGroup: ptr.To[int64](2147483647)}), ""},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			err := k8s.Create(t.Context(), tc.obj, client.DryRunAll)
			if tc.want == "" {
				g.Expect(err).NotTo(HaveOccurred())
				return
			}
			g.Expect(err).To(MatchError(ContainSubstring(tc.want)))
		})
	}
}

func TestAuditLoggingRestartsTheOwningDeploymentOncePerGeneration(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	w := newWorkload(t, ns, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{RestartNonCompliant: ptr.To(true)}
	})
	labels := map[string]string{"app": "records"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}}},
		},
	}
	create(t, dep)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "api-5d4f8"},
		Spec:       appsv1.ReplicaSetSpec{Selector: dep.Spec.Selector, Template: dep.Spec.Template},
	}
	controlledBy(rs, "Deployment", dep)
	create(t, rs)
	for _, name := range []string{"api-5d4f8-x1", "api-5d4f8-x2"} {
		newPod(t, ns, name, labels, func(p *corev1.Pod) { controlledBy(p, "ReplicaSet", rs) })
	}
	c, writes := countingClient(t)

	first := time.Date(2026, 3, 1, 9, 0, 0, 123456789, time.UTC)
	r := AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, first))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Status).To(Equal(metav1.ConditionFalse))
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsWithoutSidecar))
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRolloutRestarted}), "two pods, one Deployment, one restart")
	g.Expect(r.Events[0].Message).To(Equal("restarted Deployment api so that its pods are re-created with the audit sidecar"))
	g.Expect(writes.N()).To(Equal(int64(1)))
	get(t, dep)
	g.Expect(dep.Spec.Template.Annotations).To(Equal(map[string]string{"kubectl.kubernetes.io/restartedAt": "2026-03-01T09:00:00.123456789Z"}))
	g.Expect(r.Events[0].Related).To(HaveValue(Equal(corev1.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment",
		Namespace: ns, Name: "api", UID: dep.UID, ResourceVersion: dep.ResourceVersion})))

	// The pods are still the old ones (no controller-manager rolls them), but
	// this generation has restarted the Deployment already.
	r = AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, first.Add(time.Minute)))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(r.Reason).To(Equal(phiguardv1alpha1.ReasonPodsWithoutSidecar))
	g.Expect(r.Events).To(BeEmpty())
	g.Expect(writes.N()).To(Equal(int64(1)))

	// A new generation of the workload restarts it once more.
	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) { w.Spec.AuditLogging.LogPath = "/var/log/records-audit" })
	second := first.Add(time.Hour)
	r = AuditLogging{}.Reconcile(t.Context(), scopeAt(t, c, w, second))
	g.Expect(r.Err).NotTo(HaveOccurred())
	g.Expect(eventReasons(r.Events)).To(Equal([]string{phiguardv1alpha1.ReasonRolloutRestarted}))
	g.Expect(writes.N()).To(Equal(int64(2)))
	get(t, dep)
	g.Expect(dep.Spec.Template.Annotations).To(HaveKeyWithValue("kubectl.kubernetes.io/restartedAt", "2026-03-01T10:00:00.123456789Z"))
}
