package safeguard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/ssa"
)

// The audit sidecar's defaults and the names phiguard gives what it injects.
const (
	// DefaultAuditSidecarImage is the built-in sidecar: Fluent Bit 3.2.4, pinned
	// by the digest of its multi-architecture image index as well as its tag (the
	// runtime pulls by the digest; the tag says which release it is).
	DefaultAuditSidecarImage = "cr.fluentbit.io/fluent/fluent-bit:3.2.4@sha256:a185ac0516e1f35568ff0662f12c4ada0ea38c4300ed223d0fde485599dff5b5"
	// DefaultAuditSidecarUser is the built-in UID and GID of the sidecar:
	// distroless's "nonroot". Fluent Bit's image runs as root unless told
	// otherwise, and the kubelet refuses a runAsNonRoot container without a
	// non-zero UID whose image runs as root.
	DefaultAuditSidecarUser int64 = 65532
	// DefaultAuditLogPath is where app containers write audit logs by default.
	DefaultAuditLogPath = "/var/log/phiguard-audit"
	// AuditSidecarName is the name of the injected container.
	AuditSidecarName = "phiguard-audit"
	// AuditVolumeName is the name of the shared emptyDir log volume.
	AuditVolumeName = "phiguard-audit-logs"
	// AuditStateVolumeName is the name of the sidecar's own writable emptyDir,
	// mounted at AuditStatePath: Fluent Bit keeps there how far it has read each
	// log file (so that a restarted sidecar neither skips nor repeats lines) and
	// the S3 output buffers its uploads. The root filesystem stays read-only.
	AuditStateVolumeName = "phiguard-audit-state"
	// AuditStatePath is where the sidecar mounts its state volume. The CRD
	// refuses a logPath at, above or below it (a CEL rule names the same path).
	AuditStatePath = "/var/lib/phiguard-audit"
	// AuditInjectedAnnotation records, on a pod, the PHIWorkload and image of the
	// sidecar phiguard injected: "<workload>/<image>".
	AuditInjectedAnnotation = "phiguard.io/audit-sidecar"
	// AuditOptOutAnnotation set to "false" on a pod (or its template) keeps
	// phiguard from injecting the sidecar. The pod is still reported.
	AuditOptOutAnnotation = "phiguard.io/inject-audit-sidecar"
	// restartedAtAnnotation is the template annotation `kubectl rollout restart` sets.
	restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
	// restartedForAnnotation records on a workload which PHIWorkload generation
	// last restarted it, so that each generation restarts it at most once.
	restartedForAnnotation = "phiguard.io/restarted-for"
)

// auditSidecarContainer returns the container named phiguard-audit, among the
// init containers (where phiguard injects it) or the app containers, or nil.
func auditSidecarContainer(pod *corev1.Pod) *corev1.Container {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		if i := slices.IndexFunc(list, func(c corev1.Container) bool { return c.Name == AuditSidecarName }); i >= 0 {
			return &list[i]
		}
	}
	return nil
}

// AuditSidecarProblem says why the pod does not carry phiguard's audit sidecar
// as the effective settings want it, or "" when it does. A name alone proves
// nothing: the container phiguard-audit must run image, and the pod must carry
// the annotation phiguard writes when it injects (phiguard.io/audit-sidecar:
// <workload>/<image>) naming the same image. When the settings' image changed
// after the pod was created, the pod runs the old one: that is a problem too
// (both images are named), and the pod gets the new image when it is
// re-created. The annotation's workload is not compared: a pod two
// PHIWorkloads select carries the sidecar of one of them, which serves both
// when their images agree.
func AuditSidecarProblem(pod *corev1.Pod, image string) string {
	c := auditSidecarContainer(pod)
	if c == nil {
		return "no " + AuditSidecarName + " container"
	}
	annotation, ok := pod.Annotations[AuditInjectedAnnotation]
	if !ok {
		return "no " + AuditInjectedAnnotation + " annotation"
	}
	_, annotated, ok := strings.Cut(annotation, "/")
	switch {
	case !ok || annotated == "":
		return fmt.Sprintf("annotation %s=%q does not name an image (<workload>/<image>)", AuditInjectedAnnotation, annotation)
	case c.Image != annotated:
		return fmt.Sprintf("container %s has image %s, annotation says %s", AuditSidecarName, c.Image, annotated)
	case c.Image != image:
		return fmt.Sprintf("container %s has image %s, the settings say %s (changed after the pod was created; re-creating the pod brings it)",
			AuditSidecarName, c.Image, image)
	}
	return ""
}

// HasAuditSidecar says whether the pod carries phiguard's audit sidecar as
// spec (the effective settings) wants it: see AuditSidecarProblem.
func HasAuditSidecar(pod *corev1.Pod, spec *phiguardv1alpha1.AuditLoggingSpec) bool {
	return AuditSidecarProblem(pod, spec.Sidecar.Image) == ""
}

// OptedOut says whether the pod asked not to get the sidecar.
func OptedOut(pod *corev1.Pod) bool {
	return strings.EqualFold(pod.Annotations[AuditOptOutAnnotation], "false")
}

// InjectAuditSidecar adds what audit logging needs to a pod, each part only if
// it is missing, so that injecting twice changes nothing: the log volume and
// the sidecar's state volume, the sidecar as a native sidecar (an init
// container that keeps running), the log volume mounted read-write at the log
// path in every app container, the pod's fsGroup when it sets none, and an
// annotation naming the workload and image. spec holds the effective settings.
//
// A container named phiguard-audit that is not phiguard's current sidecar (see
// AuditSidecarProblem) is replaced by it, and the annotation rewritten; what
// it replaced is returned ("" when nothing), for the webhook to warn about.
func InjectAuditSidecar(pod *corev1.Pod, workload string, spec *phiguardv1alpha1.AuditLoggingSpec) (replaced string) {
	for _, name := range []string{AuditVolumeName, AuditStateVolumeName} {
		if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == name }) {
			pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
				Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
		}
	}
	if problem := AuditSidecarProblem(pod, spec.Sidecar.Image); problem != "" {
		if c := auditSidecarContainer(pod); c != nil {
			replaced = problem
		}
		isSidecar := func(c corev1.Container) bool { return c.Name == AuditSidecarName }
		pod.Spec.InitContainers = slices.DeleteFunc(pod.Spec.InitContainers, isSidecar)
		pod.Spec.Containers = slices.DeleteFunc(pod.Spec.Containers, isSidecar)
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, auditSidecar(spec))
		if pod.Annotations == nil {
			pod.Annotations = map[string]string{}
		}
		pod.Annotations[AuditInjectedAnnotation] = workload + "/" + spec.Sidecar.Image
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		// A container that already uses the path (or the volume) keeps its own mount.
		if slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.Name == AuditVolumeName || m.MountPath == spec.LogPath
		}) {
			continue
		}
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: AuditVolumeName, MountPath: spec.LogPath})
	}
	// The sidecar reads what the app containers write, as another user. An
	// emptyDir's directory is world-writable (0777), so files an app makes
	// world-readable are readable whatever the pod sets. With the pod's fsGroup
	// set to the sidecar's group, the volume is group-owned by it and files
	// created in it inherit that group, so group-readable files are readable
	// too. An fsGroup the pod sets is never changed: it belongs to the app.
	if pod.Spec.SecurityContext == nil {
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if pod.Spec.SecurityContext.FSGroup == nil {
		pod.Spec.SecurityContext.FSGroup = ptr.To(auditSidecarGroup(spec.Sidecar))
	}
	return replaced
}

func auditSidecarUser(sc *phiguardv1alpha1.AuditSidecar) int64 {
	return ptr.Deref(sc.RunAsUser, DefaultAuditSidecarUser)
}

func auditSidecarGroup(sc *phiguardv1alpha1.AuditSidecar) int64 {
	return ptr.Deref(sc.RunAsGroup, DefaultAuditSidecarUser)
}

func auditSidecar(spec *phiguardv1alpha1.AuditLoggingSpec) corev1.Container {
	sc := spec.Sidecar
	args := slices.Clone(sc.Args)
	if len(args) == 0 {
		args = FluentBitArgs(spec.LogPath, sc.Output)
	}
	c := corev1.Container{
		Name:  AuditSidecarName,
		Image: sc.Image,
		Args:  args,
		// A native sidecar: it starts before the app containers, runs beside them
		// and does not keep a Job's pod from completing.
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		VolumeMounts: []corev1.VolumeMount{
			{Name: AuditVolumeName, MountPath: spec.LogPath, ReadOnly: true},
			{Name: AuditStateVolumeName, MountPath: AuditStatePath},
		},
		SecurityContext: &corev1.SecurityContext{
			// A UID as well as runAsNonRoot: the kubelet refuses to start a
			// runAsNonRoot container whose image runs as root (Fluent Bit's does)
			// unless a non-zero UID is set, and as a native sidecar it would keep
			// every app container of the pod from starting.
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To(auditSidecarUser(sc)),
			RunAsGroup:               ptr.To(auditSidecarGroup(sc)),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	for _, e := range sc.Env {
		c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	if r := sc.Resources; r != nil {
		c.Resources.Requests = resourceList(r.Requests)
		c.Resources.Limits = resourceList(r.Limits)
	}
	return c
}

// FluentBitArgs is the built-in sidecar's command line: tail the *.log files
// in logPath from their start, remember how far each was read in the state
// volume, and send every record to out (stdout when nil). Each -p sets a
// property of the plugin named before it; -m * routes every record to the
// output.
func FluentBitArgs(logPath string, out *phiguardv1alpha1.AuditOutput) []string {
	args := []string{"-i", "tail", "-p", "path=" + strings.TrimSuffix(logPath, "/") + "/*.log",
		"-p", "db=" + AuditStatePath + "/tail.db", "-p", "read_from_head=true"}
	if out == nil {
		out = &phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputStdout}
	}
	args = append(args, "-o", string(out.Type), "-m", "*")
	p := func(kv ...string) {
		for _, s := range kv {
			args = append(args, "-p", s)
		}
	}
	switch out.Type {
	case phiguardv1alpha1.AuditOutputForward:
		p("host="+out.Host, fmt.Sprintf("port=%d", out.Port))
	case phiguardv1alpha1.AuditOutputHTTP:
		tls := "on"
		if !ptr.Deref(out.TLS, true) {
			tls = "off"
		}
		p("host="+out.Host, fmt.Sprintf("port=%d", out.Port), "uri="+out.URI, "tls="+tls, "format=json")
	case phiguardv1alpha1.AuditOutputS3:
		p("bucket="+out.Bucket, "region="+out.Region, "store_dir="+AuditStatePath+"/s3")
	default: // stdout: one JSON object a line, as log pipelines parse them
		p("format=json_lines")
	}
	return args
}

func resourceList(cm *phiguardv1alpha1.CPUMemory) corev1.ResourceList {
	if cm == nil {
		return nil
	}
	out := corev1.ResourceList{}
	// The API validated both as quantities.
	if q, err := resource.ParseQuantity(cm.CPU); err == nil && cm.CPU != "" {
		out[corev1.ResourceCPU] = q
	}
	if q, err := resource.ParseQuantity(cm.Memory); err == nil && cm.Memory != "" {
		out[corev1.ResourceMemory] = q
	}
	return out
}

// AuditLogging reports which selected pods carry the audit sidecar (HIPAA
// §164.312(b), Required). The mutating webhook injects it at pod creation; the
// reconciler counts, and with restartNonCompliant rolls the owners of pods
// created without it.
type AuditLogging struct{}

// What AuditLogging reads and writes: a pod's owner, to restart it as
// `kubectl rollout restart` does (a patch of its template's annotations).
// +kubebuilder:rbac:groups=apps,resources=replicasets,verbs=get;list;watch
// +kubebuilder:rbac:groups=apps,resources=deployments;statefulsets;daemonsets,verbs=get;list;watch;patch

// Name implements Safeguard.
func (AuditLogging) Name() phiguardv1alpha1.SafeguardName { return phiguardv1alpha1.AuditLogging }

// Rule implements Safeguard.
func (AuditLogging) Rule() Rule {
	// Proposed: §164.312(d), audit trail and system log controls (the
	// proposal moves encryption to (b)).
	return Rule{Section: "§164.312(b)", Specification: phiguardv1alpha1.Required,
		ProposedSection: "§164.312(d)",
		Summary:         "ePHI pods carry the audit sidecar"}
}

// Defaults implements Safeguard: Enforce, Fluent Bit (pinned by digest, as
// 65532:65532) tailing the log path to its stdout, no restarts of the user's
// workloads. No args: the sidecar's command line is built from the effective
// logPath and output (FluentBitArgs).
func (AuditLogging) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{
		Mode: phiguardv1alpha1.ModeEnforce, RestartNonCompliant: ptr.To(false),
		LogPath: DefaultAuditLogPath,
		Sidecar: &phiguardv1alpha1.AuditSidecar{
			Image:      DefaultAuditSidecarImage,
			Output:     &phiguardv1alpha1.AuditOutput{Type: phiguardv1alpha1.AuditOutputStdout},
			RunAsUser:  ptr.To(DefaultAuditSidecarUser),
			RunAsGroup: ptr.To(DefaultAuditSidecarUser),
			Resources: &phiguardv1alpha1.AuditSidecarResources{
				Requests: &phiguardv1alpha1.CPUMemory{CPU: "10m", Memory: "32Mi"},
				Limits:   &phiguardv1alpha1.CPUMemory{CPU: "100m", Memory: "64Mi"},
			},
		},
	}
}

// Reconcile implements Safeguard.
func (a AuditLogging) Reconcile(ctx context.Context, s *Scope) Result {
	spec := s.Settings.AuditLogging
	var without []corev1.Pod
	var problems []string
	for i := range s.Pods {
		p := &s.Pods[i]
		problem := AuditSidecarProblem(p, spec.Sidecar.Image)
		if problem == "" {
			continue
		}
		if OptedOut(p) {
			problem = "opted out with " + AuditOptOutAnnotation + "=false"
		}
		without = append(without, *p)
		problems = append(problems, p.Name+" ("+problem+")")
	}
	if len(without) == 0 {
		// No pod is not "every pod carries it": a selector with a typo must not look compliant.
		return NoPods(s, Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonSidecarsPresent,
			Message: fmt.Sprintf("all %d selected pods carry the audit sidecar %s", len(s.Pods), spec.Sidecar.Image)})
	}
	slices.Sort(problems)
	r := Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonPodsWithoutSidecar,
		Message: fmt.Sprintf("%d of %d selected pods lack the audit sidecar: %s; pods created before the PHIWorkload, before its sidecar settings changed or while phiguard was down get it when re-created",
			len(without), len(s.Pods), strings.Join(named(problems), ", "))}
	if s.Mode(a.Name()) == phiguardv1alpha1.ModeEnforce && ptr.Deref(spec.RestartNonCompliant, false) {
		r.Events, r.Err = restartOwners(ctx, s, without)
	}
	return r
}

// restartOwners rolls the Deployments, StatefulSets and DaemonSets owning the
// pods, as `kubectl rollout restart` does, once per PHIWorkload generation.
// Opted-out pods are not restarted: re-creating them would not add the sidecar.
func restartOwners(ctx context.Context, s *Scope, pods []corev1.Pod) ([]Event, error) {
	stamp := fmt.Sprintf("%s/%d", s.Workload.UID, s.Workload.Generation)
	seen := map[string]bool{}
	var events []Event
	for i := range pods {
		if OptedOut(&pods[i]) {
			continue
		}
		owner, kind, err := rolloutOwner(ctx, s.Client, &pods[i])
		if err != nil {
			return events, err
		}
		if owner == nil || seen[kind+"/"+owner.GetName()] {
			continue
		}
		seen[kind+"/"+owner.GetName()] = true
		if owner.GetAnnotations()[restartedForAnnotation] == stamp {
			continue // already restarted for this generation
		}
		patch, err := restartPatch(stamp, s.Now)
		if err != nil {
			return events, err
		}
		if err := s.Client.Patch(ctx, owner, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(ssa.FieldManager)); err != nil {
			return events, fmt.Errorf("restarting %s %s: %w", kind, owner.GetName(), err)
		}
		events = append(events, Event{Reason: phiguardv1alpha1.ReasonRolloutRestarted,
			Message: fmt.Sprintf("restarted %s %s so that its pods are re-created with the audit sidecar", kind, owner.GetName()),
			Related: reference(appsv1.SchemeGroupVersion.String(), kind, owner)})
	}
	return events, nil
}

// restartPatch is the merge patch of `kubectl rollout restart`, plus the
// stamp of the PHIWorkload generation it is for.
func restartPatch(stamp string, now time.Time) ([]byte, error) {
	annotations := func(k, v string) map[string]any { return map[string]any{"annotations": map[string]string{k: v}} }
	patch, err := json.Marshal(map[string]any{
		"metadata": annotations(restartedForAnnotation, stamp),
		// Nanoseconds: two restarts within one second must still change the template.
		"spec": map[string]any{"template": map[string]any{"metadata": annotations(restartedAtAnnotation, now.UTC().Format(time.RFC3339Nano))}},
	})
	if err != nil {
		return nil, fmt.Errorf("encoding the restart patch: %w", err)
	}
	return patch, nil
}

// rolloutOwner finds the object whose restart re-creates the pod, and its
// kind: its StatefulSet or DaemonSet, or the Deployment owning its
// ReplicaSet. Nil when the pod has none (a bare pod).
func rolloutOwner(ctx context.Context, c client.Client, pod *corev1.Pod) (client.Object, string, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return nil, "", nil
	}
	key := types.NamespacedName{Namespace: pod.Namespace, Name: ref.Name}
	kind := ref.Kind
	var obj client.Object
	switch kind {
	case kindStatefulSet:
		obj = &appsv1.StatefulSet{}
	case kindDaemonSet:
		obj = &appsv1.DaemonSet{}
	case kindReplicaSet:
		var rs appsv1.ReplicaSet
		if err := c.Get(ctx, key, &rs); err != nil {
			return nil, "", client.IgnoreNotFound(fmt.Errorf("reading ReplicaSet %s: %w", ref.Name, err))
		}
		dep := metav1.GetControllerOf(&rs)
		if dep == nil || dep.Kind != kindDeployment {
			return nil, "", nil
		}
		key.Name, kind = dep.Name, dep.Kind
		obj = &appsv1.Deployment{}
	default:
		return nil, "", nil
	}
	if err := c.Get(ctx, key, obj); err != nil {
		return nil, "", client.IgnoreNotFound(fmt.Errorf("reading %s %s: %w", kind, key.Name, err))
	}
	return obj, kind, nil
}
