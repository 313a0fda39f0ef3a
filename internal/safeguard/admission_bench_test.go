package safeguard

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The benchmarks time the claim webhook in process, from the AdmissionReview
// request to the response, over a namespace with 5 PHIWorkloads, 50 pods and
// 20 StorageClasses held in memory by memReader, which answers as the
// manager's cache does (deep copies, namespace and label filters). The fake
// client would measure its own JSON round trips instead.
// They report the median and 99th percentile besides the mean:
//
//	go test ./internal/safeguard/ -run '^$' -bench . -benchmem

func benchWorld(b *testing.B) (*runtime.Scheme, client.Reader) {
	b.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	if err := phiguardv1alpha1.AddToScheme(scheme); err != nil {
		b.Fatal(err)
	}
	objs := make([]client.Object, 0, 1+5+50+20)
	objs = append(objs, &phiguardv1alpha1.PHIPolicy{ObjectMeta: metav1.ObjectMeta{Name: "default"},
		Spec: phiguardv1alpha1.PHIPolicySpec{ExemptNamespaces: []string{"legacy"}}})
	for i := range 5 {
		objs = append(objs, &phiguardv1alpha1.PHIWorkload{
			ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: fmt.Sprintf("app-%d", i)},
			Spec:       phiguardv1alpha1.PHIWorkloadSpec{Selector: metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", i)}}},
		})
	}
	for i := range 50 {
		objs = append(objs, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: fmt.Sprintf("pod-%d", i),
			Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%5)}},
			Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: fmt.Sprintf("data-%d", i)}}}}}})
	}
	for i := range 20 {
		params := map[string]string{}
		if i%2 == 0 {
			params["encrypted"] = "true"
		}
		objs = append(objs, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("class-%d", i)},
			Provisioner: "ebs.csi.aws.com", Parameters: params})
	}
	return scheme, &memReader{objs: objs}
}

// memReader is a client.Reader over a fixed set of objects.
type memReader struct{ objs []client.Object }

func (m *memReader) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	for _, o := range m.objs {
		if reflect.TypeOf(o) == reflect.TypeOf(obj) && o.GetName() == key.Name && o.GetNamespace() == key.Namespace {
			reflect.ValueOf(obj).Elem().Set(reflect.ValueOf(o.DeepCopyObject()).Elem())
			return nil
		}
	}
	return apierrors.NewNotFound(schema.GroupResource{}, key.Name)
}

func (m *memReader) List(_ context.Context, list client.ObjectList, opts ...client.ListOption) error {
	o := (&client.ListOptions{}).ApplyOptions(opts)
	items := reflect.ValueOf(list).Elem().FieldByName("Items")
	itemType := reflect.PointerTo(items.Type().Elem())
	// As the cache does: the matching objects (deep copies unless the caller
	// asked for the stored objects themselves), then a list of exactly them.
	var matched []runtime.Object
	for _, obj := range m.objs {
		if reflect.TypeOf(obj) != itemType || (o.Namespace != "" && obj.GetNamespace() != o.Namespace) ||
			(o.LabelSelector != nil && !o.LabelSelector.Matches(labels.Set(obj.GetLabels()))) {
			continue
		}
		item := runtime.Object(obj)
		if o.UnsafeDisableDeepCopy == nil || !*o.UnsafeDisableDeepCopy {
			item = obj.DeepCopyObject()
		}
		matched = append(matched, item)
	}
	out := reflect.MakeSlice(items.Type(), 0, len(matched))
	for _, item := range matched {
		out = reflect.Append(out, reflect.ValueOf(item).Elem())
	}
	items.Set(out)
	return nil
}

func claimRequest(b *testing.B, claimLabels map[string]string, class string) admission.Request {
	b.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "new-data", Labels: claimLabels},
		Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(class),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}},
	}
	raw, err := json.Marshal(pvc)
	if err != nil {
		b.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "bench", Operation: admissionv1.Create, Namespace: "clinic", Name: "new-data",
		Kind:     metav1.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"},
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"},
		Object:   runtime.RawExtension{Raw: raw},
	}}
}

func benchAdmission(b *testing.B, req admission.Request, wantAllowed bool) {
	scheme, reader := benchWorld(b)
	wh := admission.WithValidator[*corev1.PersistentVolumeClaim](scheme, claimValidator{&encryptionAdmission{AdmissionEnv{Reader: reader, ExemptNamespaces: []string{"kube-system"}, Registry: New(Options{})}}})
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp := wh.Handle(b.Context(), req)
		lat = append(lat, time.Since(start))
		if resp.Allowed != wantAllowed {
			b.Fatalf("allowed = %v, want %v: %v", resp.Allowed, wantAllowed, resp.Result)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkClaimDenied: a claim labelled for a workload, on an unencrypted class.
func BenchmarkClaimDenied(b *testing.B) {
	benchAdmission(b, claimRequest(b, map[string]string{"app": "app-3"}, "class-1"), false)
}

// BenchmarkClaimUncovered: a claim no workload covers, the costliest allow
// (each workload's pods are checked for a mount of it).
func BenchmarkClaimUncovered(b *testing.B) {
	benchAdmission(b, claimRequest(b, map[string]string{"app": "other"}, "class-1"), true)
}

// BenchmarkPodInjection: a pod with 3 containers that a workload in Enforce
// mode selects gets the sidecar, the volume and 3 mounts (a JSON patch).
func BenchmarkPodInjection(b *testing.B) {
	scheme, reader := benchWorld(b)
	injector := &auditInjector{AdmissionEnv: AdmissionEnv{Reader: reader, ExemptNamespaces: []string{"kube-system"}, Registry: New(Options{})}, decoder: admission.NewDecoder(scheme)}
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", GenerateName: "app-2-", Labels: map[string]string{"app": "app-2"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "app", Image: "registry.example/app:1"}, {Name: "cache", Image: "registry.example/cache:1"},
			{Name: "proxy", Image: "registry.example/proxy:1"}}},
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		b.Fatal(err)
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "bench", Operation: admissionv1.Create, Namespace: "clinic",
		Kind:     metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Object:   runtime.RawExtension{Raw: raw},
	}}
	lat := make([]time.Duration, 0, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		resp := injector.Handle(b.Context(), req)
		lat = append(lat, time.Since(start))
		if !resp.Allowed || len(resp.Patches) == 0 {
			b.Fatalf("want an allowed response with patches: %+v", resp.Result)
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
