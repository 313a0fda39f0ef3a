package fuzz

import (
	"encoding/json"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// admissionSeed is one entry of FuzzAdmission's seed corpus.
type admissionSeed struct {
	choices     uint32
	object, old []byte
}

// admissionSeeds gives each route valid objects of its kind, as a user would
// write them, in namespace clinic (choice 0) where the PHIWorkloads records
// (Enforce) and portal (Audit) cover app=records and tier=web pods: a pod
// without the audit sidecar, a digest or a ServiceAccount of its own; a
// claim on an unencrypted class; workloads with one replica; a Service and
// an Ingress without TLS; a namespace losing its ephi label; a PHIWorkload
// with a decision. Each comes once as the apiserver sends it and once as
// raw bytes, with the stored object of an update or delete.
func admissionSeeds(routes []route) []admissionSeed {
	var out []admissionSeed
	for i, r := range routes {
		object, old := seedObjects(r)
		if object == nil {
			continue
		}
		for _, flags := range []uint32{0, 1 << 8} { // as the apiserver sends it, and raw
			out = append(out, admissionSeed{choices: uint32(i) | flags, object: mustJSON(object), old: mustJSON(old)})
		}
	}
	return out
}

// seedObjects returns a route's object and, for an update or delete, the
// stored one.
func seedObjects(r route) (object, old runtime.Object) {
	records := map[string]string{"app": "records"}
	ephi := map[string]string{phiguardv1alpha1.EPHILabel: phiguardv1alpha1.EPHILabelValue}
	meta := func(name string, labels map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Namespace: "clinic", Name: name, Labels: labels}
	}
	switch r.kind.Kind {
	case "Pod":
		pod := &corev1.Pod{TypeMeta: typeMeta("v1", "Pod"), ObjectMeta: meta("records-1", records), Spec: seedPodSpec()}
		if r.subresource == "ephemeralcontainers" {
			debugged := pod.DeepCopy()
			debugged.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
				Name: "debugger", Image: "busybox:1.36", Stdin: true, TTY: true}, TargetContainerName: "app"}}
			return debugged, pod
		}
		return pod, pod
	case "PodExecOptions":
		return &corev1.PodExecOptions{TypeMeta: typeMeta("v1", "PodExecOptions"), Stdin: true, TTY: true, Container: "app", Command: []string{"sh"}}, nil
	case "PodAttachOptions":
		return &corev1.PodAttachOptions{TypeMeta: typeMeta("v1", "PodAttachOptions"), Stdin: true, TTY: true, Container: "app"}, nil
	case "PodPortForwardOptions":
		return &corev1.PodPortForwardOptions{TypeMeta: typeMeta("v1", "PodPortForwardOptions"), Ports: []int32{8080}}, nil
	case "PersistentVolumeClaim":
		return &corev1.PersistentVolumeClaim{TypeMeta: typeMeta("v1", "PersistentVolumeClaim"), ObjectMeta: meta("data-records-1", records),
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("plain"), AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}}}, nil
	case "Deployment":
		d := &appsv1.Deployment{TypeMeta: typeMeta("apps/v1", "Deployment"), ObjectMeta: meta("records", ephi), Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: records}, Template: seedTemplate()}}
		return unlabelled(d), d
	case "StatefulSet":
		s := &appsv1.StatefulSet{TypeMeta: typeMeta("apps/v1", "StatefulSet"), ObjectMeta: meta("records", ephi), Spec: appsv1.StatefulSetSpec{
			Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: records}, Template: seedTemplate(),
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{ObjectMeta: metav1.ObjectMeta{Name: "data"},
				Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To("plain")}}}}}
		return unlabelled(s), s
	case "DaemonSet":
		return &appsv1.DaemonSet{TypeMeta: typeMeta("apps/v1", "DaemonSet"), ObjectMeta: meta("records-agent", nil), Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: records}, Template: seedTemplate()}}, nil
	case "Job":
		return &batchv1.Job{TypeMeta: typeMeta("batch/v1", "Job"), ObjectMeta: meta("records-export", nil), Spec: batchv1.JobSpec{Template: seedTemplate()}}, nil
	case "Service":
		s := &corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: meta("records", ephi), Spec: corev1.ServiceSpec{
			Type: corev1.ServiceTypeLoadBalancer, Selector: records, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromString("http")}}}}
		return unlabelled(s), s
	case "Ingress":
		return &networkingv1.Ingress{TypeMeta: typeMeta("networking.k8s.io/v1", "Ingress"), ObjectMeta: meta("records", nil), Spec: networkingv1.IngressSpec{
			Rules: []networkingv1.IngressRule{{Host: "records.clinic.example", IngressRuleValue: networkingv1.IngressRuleValue{HTTP: &networkingv1.HTTPIngressRuleValue{
				Paths: []networkingv1.HTTPIngressPath{{Path: "/", PathType: ptr.To(networkingv1.PathTypePrefix), Backend: networkingv1.IngressBackend{
					Service: &networkingv1.IngressServiceBackend{Name: "records", Port: networkingv1.ServiceBackendPort{Number: 80}}}}}}}}}}}, nil
	case "Namespace":
		ns := &corev1.Namespace{TypeMeta: typeMeta("v1", "Namespace"), ObjectMeta: metav1.ObjectMeta{Name: "clinic", Labels: ephi}}
		unlabelled := ns.DeepCopy()
		unlabelled.Labels = nil
		unlabelled.Annotations = map[string]string{
			phiguardv1alpha1.UnlabelJustificationAnnotation: "the clinic moved its records to the hospital's own system",
			phiguardv1alpha1.UnlabelApprovedByAnnotation:    "security-officer@clinic.example",
			phiguardv1alpha1.UnlabelExpiresAnnotation:       now.Add(24 * time.Hour).Format(time.RFC3339),
		}
		return unlabelled, ns
	case "PHIWorkload":
		w := portalWorkload()
		w.Name = "portal-2"
		changed := w.DeepCopy()
		changed.Spec.Decisions[0].Expires = metav1.NewTime(now.Add(30 * 24 * time.Hour))
		return changed, w
	}
	return nil, nil
}

// seedPodSpec is a pod as a developer first writes it: a tag rather than a
// digest, the default ServiceAccount, no security context.
func seedPodSpec() corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1.4",
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}}
}

func seedTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "records"}}, Spec: seedPodSpec()}
}

// unlabelled is obj without its labels: the phiguard.io/ephi label removed.
func unlabelled[T interface {
	runtime.Object
	metav1.Object
}](obj T) runtime.Object {
	out := obj.DeepCopyObject()
	out.(metav1.Object).SetLabels(nil)
	return out
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// mustJSON encodes a seed object; nil is no object.
func mustJSON(obj runtime.Object) []byte {
	if obj == nil {
		return nil
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		panic(err) // the seeds are this file's own objects
	}
	return raw
}
