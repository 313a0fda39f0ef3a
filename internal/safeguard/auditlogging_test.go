package safeguard

import (
	"os"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

func auditSpec(t *testing.T) *phiguardv1alpha1.AuditLoggingSpec {
	t.Helper()
	return auditSpecOf(t, &phiguardv1alpha1.SafeguardSettings{}, nil)
}

// auditSpecOf returns the effective audit settings of a workload's settings
// under a PHIPolicy (which may be nil), as the webhook and the reconciler see them.
func auditSpecOf(t *testing.T, workload *phiguardv1alpha1.SafeguardSettings, pol *phiguardv1alpha1.PHIPolicy) *phiguardv1alpha1.AuditLoggingSpec {
	t.Helper()
	s, _, err := New(Options{}).Effective(workload, pol)
	if err != nil {
		t.Fatal(err)
	}
	return s.AuditLogging
}

// restrictedApp is an app pod that passes the restricted Pod Security
// Standard on its own, as apps typically do: runAsNonRoot for the whole pod,
// and its UID on its container (so nothing gives the sidecar a UID).
func restrictedApp() *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "records-0"}, Spec: corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1", SecurityContext: &corev1.SecurityContext{
			RunAsUser: ptr.To[int64](1000), AllowPrivilegeEscalation: ptr.To(false),
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}},
	}}
}

func TestInjectAuditSidecarIsIdempotent(t *testing.T) {
	g := NewWithT(t)
	spec := auditSpec(t)
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app"}, {Name: "cache"}, {Name: "proxy"}}}}

	g.Expect(InjectAuditSidecar(pod, "records", spec)).To(BeEmpty())
	once := pod.DeepCopy()
	g.Expect(InjectAuditSidecar(pod, "records", spec)).To(BeEmpty())
	g.Expect(pod).To(Equal(once), "a second injection changes nothing")

	g.Expect(once.Spec.InitContainers).To(HaveLen(1))
	g.Expect(once.Spec.Volumes).To(ConsistOf(
		corev1.Volume{Name: AuditVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: AuditStateVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}))
	for _, c := range once.Spec.Containers {
		g.Expect(c.VolumeMounts).To(ConsistOf(corev1.VolumeMount{Name: AuditVolumeName, MountPath: DefaultAuditLogPath}))
	}
	g.Expect(once.Spec.InitContainers[0].Image).To(Equal(DefaultAuditSidecarImage))
	g.Expect(once.Spec.InitContainers[0].Resources.Requests.Memory().String()).To(Equal("32Mi"))
	g.Expect(once.Annotations).To(Equal(map[string]string{AuditInjectedAnnotation: "records/" + DefaultAuditSidecarImage}))
	g.Expect(AuditSidecarProblem(once, DefaultAuditSidecarImage)).To(BeEmpty(), "what phiguard injects is what it counts")
}

func TestInjectAuditSidecarOnReinvocationMountsNewContainersOnly(t *testing.T) {
	g := NewWithT(t)
	spec := auditSpec(t)
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	InjectAuditSidecar(pod, "records", spec)
	// A later webhook adds a container, and one that already uses the path.
	pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "mesh-proxy"},
		corev1.Container{Name: "own-logs", VolumeMounts: []corev1.VolumeMount{{Name: "mine", MountPath: DefaultAuditLogPath}}})

	g.Expect(InjectAuditSidecar(pod, "records", spec)).To(BeEmpty())
	g.Expect(pod.Spec.InitContainers).To(HaveLen(1))
	g.Expect(pod.Spec.Volumes).To(HaveLen(2))
	g.Expect(pod.Spec.Containers[1].VolumeMounts).To(ConsistOf(HaveField("Name", AuditVolumeName)))
	g.Expect(pod.Spec.Containers[2].VolumeMounts).To(ConsistOf(HaveField("Name", "mine")), "a container's own mount at the path is kept")
}

// nonRootWithoutUID lists the containers that must run as non-root (their own
// runAsNonRoot, or the pod's) but have no non-zero UID (their own runAsUser,
// or the pod's): the kubelet refuses to start such a container when its image
// runs as root.
func nonRootWithoutUID(pod *corev1.Pod) []string {
	var out []string
	psc := ptr.Deref(pod.Spec.SecurityContext, corev1.PodSecurityContext{})
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			sc := ptr.Deref(c.SecurityContext, corev1.SecurityContext{})
			nonRoot, uid := psc.RunAsNonRoot, psc.RunAsUser
			if sc.RunAsNonRoot != nil {
				nonRoot = sc.RunAsNonRoot
			}
			if sc.RunAsUser != nil {
				uid = sc.RunAsUser
			}
			if ptr.Deref(nonRoot, false) && ptr.Deref(uid, 0) == 0 {
				out = append(out, c.Name)
			}
		}
	}
	return out
}

func TestInjectedPodIsRestrictedAndItsSidecarHasANonZeroUID(t *testing.T) {
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	for name, spec := range map[string]*phiguardv1alpha1.AuditLoggingSpec{
		"built-in settings": auditSpec(t),
		"a UID and GID of the policy's": auditSpecOf(t, &phiguardv1alpha1.SafeguardSettings{}, &phiguardv1alpha1.PHIPolicy{
			Spec: phiguardv1alpha1.PHIPolicySpec{Defaults: phiguardv1alpha1.SafeguardSettings{AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{
				Sidecar: &phiguardv1alpha1.AuditSidecar{Image: "registry.example/forwarder:2", RunAsUser: ptr.To[int64](10001), RunAsGroup: ptr.To[int64](10002)}}}}}),
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			pod := restrictedApp()
			g.Expect(policy.AggregateCheckResults(evaluator.EvaluatePod(restricted, &pod.ObjectMeta, &pod.Spec)).Allowed).To(BeTrue(),
				"the app alone is restricted")

			InjectAuditSidecar(pod, "records", spec)
			agg := policy.AggregateCheckResults(evaluator.EvaluatePod(restricted, &pod.ObjectMeta, &pod.Spec))
			g.Expect(agg.ForbiddenDetail()).To(BeEmpty())
			g.Expect(agg.Allowed).To(BeTrue())
			g.Expect(nonRootWithoutUID(pod)).To(BeEmpty())

			sc := pod.Spec.InitContainers[0].SecurityContext
			g.Expect(sc.RunAsUser).To(HaveValue(Equal(*spec.Sidecar.RunAsUser)))
			g.Expect(sc.RunAsGroup).To(HaveValue(Equal(*spec.Sidecar.RunAsGroup)))
			g.Expect(pod.Spec.Containers[0].SecurityContext.RunAsUser).To(HaveValue(Equal(int64(1000))), "the app's own UID is kept")
			g.Expect(pod.Spec.SecurityContext.RunAsUser).To(BeNil(), "the pod's settings are the app's")
		})
	}
}

func TestBuiltInSidecarRunsAs65532(t *testing.T) {
	g := NewWithT(t)
	pod := restrictedApp()
	InjectAuditSidecar(pod, "records", auditSpec(t))
	sc := pod.Spec.InitContainers[0].SecurityContext
	g.Expect(sc.RunAsNonRoot).To(HaveValue(BeTrue()))
	g.Expect(sc.RunAsUser).To(HaveValue(Equal(int64(65532))))
	g.Expect(sc.RunAsGroup).To(HaveValue(Equal(int64(65532))))
}

func TestInjectAuditSidecarSetsTheFSGroupOnlyWhenThePodHasNone(t *testing.T) {
	g := NewWithT(t)
	spec := auditSpec(t)

	bare := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	InjectAuditSidecar(bare, "records", spec)
	g.Expect(bare.Spec.SecurityContext).To(Equal(&corev1.PodSecurityContext{FSGroup: ptr.To[int64](65532)}),
		"the sidecar's group owns the log volume")

	app := restrictedApp()
	InjectAuditSidecar(app, "records", spec)
	g.Expect(app.Spec.SecurityContext).To(Equal(&corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true), FSGroup: ptr.To[int64](65532),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}}), "a pod without an fsGroup gets the sidecar's, and nothing else")

	own := restrictedApp()
	own.Spec.SecurityContext.FSGroup = ptr.To[int64](2000)
	want := own.Spec.SecurityContext.DeepCopy()
	InjectAuditSidecar(own, "records", spec)
	g.Expect(own.Spec.SecurityContext).To(Equal(want), "the app's fsGroup is never changed")
}

func TestDefaultAuditSidecarImageIsPinnedByTagAndDigest(t *testing.T) {
	g := NewWithT(t)
	g.Expect(DefaultAuditSidecarImage).To(MatchRegexp(`^cr\.fluentbit\.io/fluent/fluent-bit:3\.2\.4@sha256:[0-9a-f]{64}$`))
	g.Expect(auditSpec(t).Sidecar.Image).To(Equal(DefaultAuditSidecarImage))
}

func TestFluentBitArgs(t *testing.T) {
	tail := []string{"-i", "tail", "-p", "path=/var/log/records-audit/*.log", "-p", "db=/var/lib/phiguard-audit/tail.db", "-p", "read_from_head=true"}
	for name, tc := range map[string]struct {
		out  *phiguardv1alpha1.AuditOutput
		want []string
	}{
		"no output: stdout": {nil, []string{"-o", "stdout", "-m", "*", "-p", "format=json_lines"}},
		"stdout": {&phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputStdout},
			[]string{"-o", "stdout", "-m", "*", "-p", "format=json_lines"}},
		"forward": {&phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputForward, Host: "fluentd.logging.svc", Port: 24224},
			[]string{"-o", "forward", "-m", "*", "-p", "host=fluentd.logging.svc", "-p", "port=24224"}},
		"http, tls by default": {&phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputHTTP, Host: "siem.example", Port: 8443, URI: "/ingest/audit"},
			[]string{"-o", "http", "-m", "*", "-p", "host=siem.example", "-p", "port=8443", "-p", "uri=/ingest/audit", "-p", "tls=on", "-p", "format=json"}},
		"http without tls": {&phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputHTTP, Host: "10.0.0.7", Port: 8080, URI: "/", TLS: ptr.To(false)},
			[]string{"-o", "http", "-m", "*", "-p", "host=10.0.0.7", "-p", "port=8080", "-p", "uri=/", "-p", "tls=off", "-p", "format=json"}},
		"s3": {&phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputS3, Bucket: "clinic-audit", Region: "eu-west-1"},
			[]string{"-o", "s3", "-m", "*", "-p", "bucket=clinic-audit", "-p", "region=eu-west-1", "-p", "store_dir=/var/lib/phiguard-audit/s3"}},
		"fields of another type are ignored": {&phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputForward, Host: "agg", Port: 24224,
			URI: "/from-the-policy", Bucket: "from-the-policy", Region: "us-east-1"},
			[]string{"-o", "forward", "-m", "*", "-p", "host=agg", "-p", "port=24224"}},
	} {
		t.Run(name, func(t *testing.T) {
			NewWithT(t).Expect(FluentBitArgs("/var/log/records-audit/", tc.out)).To(Equal(append(tail, tc.want...)))
		})
	}
}

func TestSidecarArgsFollowTheEffectiveLogPathAndOutput(t *testing.T) {
	g := NewWithT(t)
	pol := &phiguardv1alpha1.PHIPolicy{Spec: phiguardv1alpha1.PHIPolicySpec{Defaults: phiguardv1alpha1.SafeguardSettings{
		AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{Sidecar: &phiguardv1alpha1.AuditSidecar{Image: DefaultAuditSidecarImage,
			Output: &phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputS3, Bucket: "clinic-audit", Region: "us-east-1"}}}}}}
	spec := auditSpecOf(t, &phiguardv1alpha1.SafeguardSettings{AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{LogPath: "/var/log/records"}}, pol)

	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	InjectAuditSidecar(pod, "records", spec)
	g.Expect(pod.Spec.InitContainers[0].Args).To(Equal([]string{
		"-i", "tail", "-p", "path=/var/log/records/*.log", "-p", "db=/var/lib/phiguard-audit/tail.db", "-p", "read_from_head=true",
		"-o", "s3", "-m", "*", "-p", "bucket=clinic-audit", "-p", "region=us-east-1", "-p", "store_dir=/var/lib/phiguard-audit/s3"}),
		"the policy's output, tailing the workload's log path")
	g.Expect(pod.Spec.InitContainers[0].VolumeMounts).To(Equal([]corev1.VolumeMount{
		{Name: AuditVolumeName, MountPath: "/var/log/records", ReadOnly: true},
		{Name: AuditStateVolumeName, MountPath: AuditStatePath}}))

	withArgs := func(args ...string) *phiguardv1alpha1.AuditLoggingSpec {
		return auditSpecOf(t, &phiguardv1alpha1.SafeguardSettings{AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{
			Sidecar: &phiguardv1alpha1.AuditSidecar{Image: "registry.example/forwarder:2", Args: args}}}, pol)
	}
	own := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}}
	InjectAuditSidecar(own, "records", withArgs("--watch", "/var/log/phiguard-audit"))
	g.Expect(own.Spec.InitContainers[0].Args).To(Equal([]string{"--watch", "/var/log/phiguard-audit"}), "args replace the built command line")
}

func TestAuditSidecarProblem(t *testing.T) {
	const image, old = "registry.example/forwarder:2", "registry.example/forwarder:1"
	pod := func(annotations map[string]string, init, app []corev1.Container) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "records-0", Annotations: annotations},
			Spec: corev1.PodSpec{InitContainers: init, Containers: append([]corev1.Container{{Name: "app", Image: "registry.example/records:1"}}, app...)}}
	}
	sidecar := func(img string) []corev1.Container {
		return []corev1.Container{{Name: AuditSidecarName, Image: img, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}}
	}
	annotated := func(v string) map[string]string { return map[string]string{AuditInjectedAnnotation: v} }
	for name, tc := range map[string]struct {
		pod  *corev1.Pod
		want string
	}{
		"injected":                            {pod(annotated("records/"+image), sidecar(image), nil), ""},
		"injected by an overlapping workload": {pod(annotated("records-v2/"+image), sidecar(image), nil), ""},
		"as an app container":                 {pod(annotated("records/"+image), nil, sidecar(image)), ""},
		"no sidecar":                          {pod(nil, nil, nil), "no phiguard-audit container"},
		"another container's name":            {pod(annotated("records/"+image), []corev1.Container{{Name: "audit", Image: image}}, nil), "no phiguard-audit container"},
		"the name, no annotation":             {pod(nil, sidecar(image), nil), "no phiguard.io/audit-sidecar annotation"},
		"an annotation without an image": {pod(annotated("records"), sidecar(image), nil),
			`annotation phiguard.io/audit-sidecar="records" does not name an image (<workload>/<image>)`},
		"an image the annotation does not name": {pod(annotated("records/"+image), sidecar("registry.example/lookalike:1"), nil),
			"container phiguard-audit has image registry.example/lookalike:1, annotation says " + image},
		"settings changed after injection": {pod(annotated("records/"+old), sidecar(old), nil),
			"container phiguard-audit has image " + old + ", the settings say " + image + " (changed after the pod was created; re-creating the pod brings it)"},
	} {
		t.Run(name, func(t *testing.T) {
			NewWithT(t).Expect(AuditSidecarProblem(tc.pod, image)).To(Equal(tc.want))
		})
	}
}

func TestInjectAuditSidecarReplacesAContainerThatOnlyHasTheName(t *testing.T) {
	g := NewWithT(t)
	spec := auditSpec(t)
	pod := &corev1.Pod{Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "migrate", Image: "registry.example/migrate:1"}},
		Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"},
			{Name: AuditSidecarName, Image: "registry.example/lookalike:1"}}}}

	g.Expect(InjectAuditSidecar(pod, "records", spec)).To(Equal("no phiguard.io/audit-sidecar annotation"))
	g.Expect(pod.Spec.Containers).To(HaveExactElements(HaveField("Name", "app")), "the look-alike is gone")
	g.Expect(pod.Spec.InitContainers).To(HaveExactElements(HaveField("Name", "migrate"),
		And(HaveField("Name", AuditSidecarName), HaveField("Image", DefaultAuditSidecarImage))))
	g.Expect(pod.Annotations).To(HaveKeyWithValue(AuditInjectedAnnotation, "records/"+DefaultAuditSidecarImage))
	g.Expect(AuditSidecarProblem(pod, DefaultAuditSidecarImage)).To(BeEmpty())
}

// The CRD's CEL rule on logPath names the state path as a literal (markers
// cannot name a constant); this holds the two together.
func TestCRDKeepsLogPathAwayFromTheStatePath(t *testing.T) {
	g := NewWithT(t)
	raw, err := os.ReadFile("../../config/crd/bases/compliance.phiguard.io_phiworkloads.yaml")
	g.Expect(err).NotTo(HaveOccurred())
	var crd apiextensionsv1.CustomResourceDefinition
	g.Expect(yaml.Unmarshal(raw, &crd)).To(Succeed())
	logPath := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["auditLogging"].Properties["logPath"]
	g.Expect(logPath.XValidations).To(ContainElement(apiextensionsv1.ValidationRule{
		Rule:    "self != '" + AuditStatePath + "' && !self.startsWith('" + AuditStatePath + "/') && !'" + AuditStatePath + "'.startsWith(self + '/')",
		Message: "auditLogging.logPath must not be, contain or lie in " + AuditStatePath + ": the sidecar keeps its own state there",
	}))
}
