package safeguard

import (
	"encoding/json"
	"testing"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// The claim, StatefulSet and pod webhooks read PHIWorkloads, pods and
// StorageClasses as the cache's own objects. Denying, warning and injecting,
// with Events (client-go's recorder) and evidence recorded about the
// workload that covers, in Enforce and then in Audit, they change none of
// them.
func TestAdmissionChangesNoSharedObject(t *testing.T) {
	g := NewWithT(t)
	ns := newNamespace(t)
	plain := ns + "-plain"
	newEBSClass(t, plain, map[string]string{"type": "gp3"})
	w := newWorkload(t, ns, nil)
	app := map[string]string{"app": "records"}
	newPod(t, ns, "records-0", app, mounting("mounted"))

	cs, err := kubernetes.NewForConfig(testCfg)
	g.Expect(err).NotTo(HaveOccurred())
	// Recording builds each Event from the workload, synchronously; sending
	// them to the apiserver is not what this test is about.
	broadcaster := events.NewBroadcaster(&events.EventSinkImpl{Interface: cs.EventsV1()})
	t.Cleanup(broadcaster.Shutdown)
	rec, ok := broadcaster.NewRecorder(k8s.Scheme(), "phiguard").(recorder.EventRecorder)
	g.Expect(ok).To(BeTrue())

	claim := func(name string, labels map[string]string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
			Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: ptr.To(plain)}}
	}
	sts := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"}, Spec: appsv1.StatefulSetSpec{
		Template:             corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: app}},
		VolumeClaimTemplates: []corev1.PersistentVolumeClaim{*claim("data", nil)},
	}}
	pod, err := json.Marshal(&corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "records-", Labels: app},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/records:1"}}}})
	g.Expect(err).NotTo(HaveOccurred())
	podRequest := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "pod", Operation: admissionv1.Create,
		Namespace: ns, Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Object: runtime.RawExtension{Raw: pod},
		UserInfo: authenticationv1.UserInfo{Username: "dev@example.org"}}}
	ctx := admission.NewContextWithRequest(t.Context(), admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "claim", Operation: admissionv1.Create, Namespace: ns, Name: "labelled",
		Kind: metav1.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"}, UserInfo: authenticationv1.UserInfo{Username: "dev@example.org"}}})

	// admit runs every request once over a new reader and returns the errors
	// and warnings of the validators, and the pod webhook's answer.
	admit := func() ([]error, [][]string, admission.Response) {
		t.Helper()
		r := newSharedReader()
		env := AdmissionEnv{Reader: r, Registry: New(Options{}), Clock: clock.RealClock{}, Recorder: rec, Evidence: &takenRecords{}}
		enc := &encryptionAdmission{env}
		errs, warnings := make([]error, 0, 4), make([][]string, 0, 4)
		for _, c := range []*corev1.PersistentVolumeClaim{claim("labelled", app), claim("mounted", nil), claim("other", nil)} {
			warned, err := claimValidator{enc}.ValidateCreate(ctx, c)
			errs, warnings = append(errs, err), append(warnings, warned)
		}
		warned, err := statefulSetValidator{enc}.ValidateCreate(ctx, sts)
		errs, warnings = append(errs, err), append(warnings, warned)
		resp := (&auditInjector{AdmissionEnv: env, decoder: admission.NewDecoder(k8s.Scheme())}).Handle(t.Context(), podRequest)

		g.Expect(r.changed()).To(BeEmpty(), "admission changed objects it read from the cache without copies")
		g.Expect(r.shared).To(HaveKey("PHIWorkload.compliance.phiguard.io"))
		g.Expect(r.shared).To(HaveKey("Pod"))
		g.Expect(r.shared).To(HaveKey("StorageClass.storage.k8s.io"))
		return errs, warnings, resp
	}

	errs, warnings, resp := admit()
	requires := "PHIWorkload " + ns + "/records requires encryption at rest"
	g.Expect(errs[0]).To(MatchError(ContainSubstring("PersistentVolumeClaim labelled would keep ePHI unencrypted at rest: claim labelled: StorageClass " + plain + " is not encrypted")))
	g.Expect(errs[0]).To(MatchError(ContainSubstring(requires)))
	g.Expect(errs[1]).To(MatchError(ContainSubstring("PersistentVolumeClaim mounted would keep ePHI unencrypted at rest")), "a selected pod mounts it")
	g.Expect(errs[2]).NotTo(HaveOccurred(), "no workload covers it")
	g.Expect(errs[3]).To(MatchError(ContainSubstring("StatefulSet db would keep ePHI unencrypted at rest: claim data")))
	g.Expect(warnings).To(HaveEach(BeEmpty()))
	g.Expect(resp.Allowed).To(BeTrue())
	g.Expect(resp.Patches).NotTo(BeEmpty(), "the audit sidecar is injected")

	updateWorkload(t, w, func(w *phiguardv1alpha1.PHIWorkload) {
		w.Spec.EncryptionAtRest = &phiguardv1alpha1.EncryptionAtRestSpec{Mode: phiguardv1alpha1.ModeAudit}
		w.Spec.AuditLogging = &phiguardv1alpha1.AuditLoggingSpec{Mode: phiguardv1alpha1.ModeAudit}
	})
	errs, warnings, resp = admit()
	g.Expect(errs).To(HaveEach(BeNil()))
	g.Expect(warnings[0]).To(ConsistOf(And(HavePrefix("phiguard (Audit, allowed): PersistentVolumeClaim labelled"), ContainSubstring(requires))))
	g.Expect(warnings[1]).To(HaveLen(1))
	g.Expect(warnings[2]).To(BeEmpty())
	g.Expect(warnings[3]).To(HaveLen(1))
	g.Expect(resp.Allowed).To(BeTrue())
	g.Expect(resp.Patches).To(BeEmpty())
	g.Expect(resp.Warnings).To(ConsistOf(HavePrefix("phiguard (Audit): PHIWorkload " + ns + "/records selects this pod")))
}
