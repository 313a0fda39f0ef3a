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
	// DefaultAuditSidecarImage is the built-in sidecar: Fluent Bit, tailing the
	// log directory to its stdout, from where the node's log pipeline ships it.
	DefaultAuditSidecarImage = "cr.fluentbit.io/fluent/fluent-bit:3.2.4"
	// DefaultAuditLogPath is where app containers write audit logs by default.
	DefaultAuditLogPath = "/var/log/phiguard-audit"
	// AuditSidecarName is the name of the injected container.
	AuditSidecarName = "phiguard-audit"
	// AuditVolumeName is the name of the shared emptyDir log volume.
	AuditVolumeName = "phiguard-audit-logs"
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

// HasAuditSidecar says whether the pod carries phiguard's audit sidecar.
func HasAuditSidecar(pod *corev1.Pod) bool {
	return slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == AuditSidecarName }) ||
		slices.ContainsFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == AuditSidecarName })
}

// OptedOut says whether the pod asked not to get the sidecar.
func OptedOut(pod *corev1.Pod) bool {
	return strings.EqualFold(pod.Annotations[AuditOptOutAnnotation], "false")
}

// InjectAuditSidecar adds what audit logging needs to a pod, each part only if
// it is missing, so that injecting twice changes nothing: the log volume, the
// sidecar as a native sidecar (an init container that keeps running), the
// volume mounted read-write at the log path in every app container, and an
// annotation naming the workload. spec holds the effective settings.
func InjectAuditSidecar(pod *corev1.Pod, workload string, spec *phiguardv1alpha1.AuditLoggingSpec) {
	if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == AuditVolumeName }) {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
			Name: AuditVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	}
	if !HasAuditSidecar(pod) {
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, auditSidecar(spec))
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
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if _, ok := pod.Annotations[AuditInjectedAnnotation]; !ok {
		pod.Annotations[AuditInjectedAnnotation] = workload + "/" + spec.Sidecar.Image
	}
}

func auditSidecar(spec *phiguardv1alpha1.AuditLoggingSpec) corev1.Container {
	sc := spec.Sidecar
	c := corev1.Container{
		Name:  AuditSidecarName,
		Image: sc.Image,
		Args:  slices.Clone(sc.Args),
		// A native sidecar: it starts before the app containers, runs beside them
		// and does not keep a Job's pod from completing.
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		VolumeMounts:  []corev1.VolumeMount{{Name: AuditVolumeName, MountPath: spec.LogPath, ReadOnly: true}},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
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
	return Rule{Section: "§164.312(b)", Specification: phiguardv1alpha1.Required,
		Summary: "ePHI pods carry the audit sidecar"}
}

// Defaults implements Safeguard: Enforce, Fluent Bit tailing the log path to
// its stdout, no restarts of the user's workloads.
func (AuditLogging) Defaults(s *phiguardv1alpha1.SafeguardSettings) {
	s.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{
		Mode: phiguardv1alpha1.ModeEnforce, RestartNonCompliant: ptr.To(false),
		LogPath: DefaultAuditLogPath,
		Sidecar: &phiguardv1alpha1.AuditSidecar{
			Image: DefaultAuditSidecarImage,
			Args:  []string{"-i", "tail", "-p", "path=" + DefaultAuditLogPath + "/*.log", "-o", "stdout"},
			Resources: &phiguardv1alpha1.AuditSidecarResources{
				Requests: &phiguardv1alpha1.CPUMemory{CPU: "10m", Memory: "32Mi"},
				Limits:   &phiguardv1alpha1.CPUMemory{CPU: "100m", Memory: "64Mi"},
			},
		},
	}
}

// Reconcile implements Safeguard.
func (a AuditLogging) Reconcile(ctx context.Context, s *Scope) Result {
	var without []corev1.Pod
	for i := range s.Pods {
		if !HasAuditSidecar(&s.Pods[i]) {
			without = append(without, s.Pods[i])
		}
	}
	if len(without) == 0 {
		return Result{Status: metav1.ConditionTrue, Reason: phiguardv1alpha1.ReasonSidecarsPresent,
			Message: fmt.Sprintf("all %d selected pods carry the audit sidecar", len(s.Pods))}
	}
	names := make([]string, 0, len(without))
	for i := range without {
		n := without[i].Name
		if OptedOut(&without[i]) {
			n += " (opted out with " + AuditOptOutAnnotation + "=false)"
		}
		names = append(names, n)
	}
	slices.Sort(names)
	r := Result{Status: metav1.ConditionFalse, Reason: phiguardv1alpha1.ReasonPodsWithoutSidecar,
		Message: fmt.Sprintf("%d of %d selected pods lack the audit sidecar: %s; pods created before the PHIWorkload (or while phiguard was down) get it when re-created",
			len(without), len(s.Pods), strings.Join(named(names), ", "))}
	spec := s.Settings.AuditLogging
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
	case "StatefulSet":
		obj = &appsv1.StatefulSet{}
	case "DaemonSet":
		obj = &appsv1.DaemonSet{}
	case "ReplicaSet":
		var rs appsv1.ReplicaSet
		if err := c.Get(ctx, key, &rs); err != nil {
			return nil, "", client.IgnoreNotFound(fmt.Errorf("reading ReplicaSet %s: %w", ref.Name, err))
		}
		dep := metav1.GetControllerOf(&rs)
		if dep == nil || dep.Kind != "Deployment" {
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
