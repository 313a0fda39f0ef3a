package safeguard

import (
	"context"
	"errors"
	"sync"
	"testing"

	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/evidence"
)

// takenRecords keeps the records an admission takes.
type takenRecords struct {
	mu   sync.Mutex
	recs []evidence.Record
}

func (t *takenRecords) Record(r evidence.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recs = append(t.recs, r)
}

func TestAdmissionEvidence(t *testing.T) {
	g := NewWithT(t)
	taken := &takenRecords{}
	env := AdmissionEnv{Evidence: taken}
	w := &phiguardv1alpha1.PHIWorkload{ObjectMeta: metav1.ObjectMeta{Namespace: "clinic", Name: "records", UID: "w-uid", Generation: 4}}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create, Kind: metav1.GroupVersionKind{Version: "v1", Kind: "PersistentVolumeClaim"},
		Namespace: "clinic", Name: "data", UserInfo: authenticationv1.UserInfo{Username: "dev@example.org"},
	}}
	ctx := admission.NewContextWithRequest(context.Background(), req)

	env.Record(ctx, w, errors.New("StorageClass standard is not encrypted"), nil)
	env.Record(ctx, w, nil, []string{"Audit: not encrypted"})
	env.Record(ctx, w, nil, nil) // admitted without a word: nothing to record
	dry := true
	req.DryRun = &dry
	env.Record(admission.NewContextWithRequest(context.Background(), req), w, errors.New("dry run"), nil)
	env.recordAdmissionEvidence(w, phiguardv1alpha1.ReasonEmergencyAccess, "admitted: alice exec", "alice",
		&corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "clinic", Name: "records-0", UID: "p-uid"})

	wl := &evidence.Workload{Namespace: "clinic", Name: "records", UID: "w-uid", Generation: 4}
	claim := []evidence.Object{{APIVersion: "v1", Kind: "PersistentVolumeClaim", Namespace: "clinic", Name: "data"}}
	g.Expect(taken.recs).To(Equal([]evidence.Record{{
		Kind: evidence.KindAdmission, Workload: wl, Result: "Denied", Reason: phiguardv1alpha1.ReasonAdmissionDenied,
		Message: "denied dev@example.org's create of PersistentVolumeClaim clinic/data: StorageClass standard is not encrypted",
		Actor:   "dev@example.org", Objects: claim,
	}, {
		Kind: evidence.KindAdmission, Workload: wl, Result: "Warned", Reason: phiguardv1alpha1.ReasonAdmissionWarned,
		Message: "admitted dev@example.org's create of PersistentVolumeClaim clinic/data with warnings: Audit: not encrypted",
		Actor:   "dev@example.org", Objects: claim,
	}, {
		Kind: evidence.KindEmergencyAccess, Workload: wl, Safeguard: string(phiguardv1alpha1.AccessControlled), Section: "§164.312(a)(2)(ii)",
		Result: "Admitted", Reason: phiguardv1alpha1.ReasonEmergencyAccess, Message: "admitted: alice exec", Actor: "alice",
		Objects: []evidence.Object{{APIVersion: "v1", Kind: "Pod", Namespace: "clinic", Name: "records-0", UID: "p-uid"}},
	}}))
}
