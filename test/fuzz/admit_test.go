package fuzz

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// What the targets that build PHIWorkloads share: admitting one as the
// apiserver and phiguard's PHIWorkload webhook would.

// newWorkloadValidator is phiguard's PHIWorkload webhook, deciding in a
// cluster without a PHIPolicy.
func newWorkloadValidator(registry safeguard.Registry) (*workloadValidator, error) {
	reader, err := newWorld(worldWithoutPolicy)
	if err != nil {
		return nil, err
	}
	return &workloadValidator{reader: reader, registry: registry}, nil
}

// workloadValidator holds what the PHIWorkload webhook reads.
type workloadValidator struct {
	reader   client.Reader
	registry safeguard.Registry
}

// admitWorkload returns w as the apiserver would store it and the manager
// decode it, and whether both the CRD and phiguard's webhook admit it.
func admitWorkload(ctx context.Context, t *testing.T, crd *crdValidator, v *workloadValidator, w *phiguardv1alpha1.PHIWorkload) (*phiguardv1alpha1.PHIWorkload, bool) {
	t.Helper()
	raw, err := json.Marshal(w)
	if err != nil {
		t.Fatalf("encoding a PHIWorkload: %v", err)
	}
	return admitWorkloadJSON(ctx, t, crd, v, raw)
}

// admitWorkloadJSON is admitWorkload for a PHIWorkload's JSON.
func admitWorkloadJSON(ctx context.Context, t *testing.T, crd *crdValidator, v *workloadValidator, raw []byte) (*phiguardv1alpha1.PHIWorkload, bool) {
	t.Helper()
	u, err := crd.admit(ctx, raw)
	if err != nil {
		return nil, false
	}
	stored := &phiguardv1alpha1.PHIWorkload{}
	if err := decodeStored(u, stored); err != nil {
		// The webhook decodes the object first: it answers 400, and its
		// failurePolicy (Fail) refuses the request.
		return nil, false
	}
	// What the apiserver fills in on a create.
	stored.UID, stored.Generation, stored.CreationTimestamp = "5f0c1e7a-3a52-4b8e-9d51-0d6c3f0a9b2e", 1, metav1.NewTime(now)
	webhook := newPHIWorkloadWebhook(v.reader, v.registry)
	if _, err := webhook.ValidateCreate(admission.NewContextWithRequest(ctx, createRequest(stored)), stored); err != nil {
		return nil, false
	}
	return stored, true
}

// createRequest is the admission request that creates w, by an approver of
// decisions.
func createRequest(w *phiguardv1alpha1.PHIWorkload) admission.Request {
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "create", Operation: admissionv1.Create, Namespace: w.Namespace, Name: w.Name,
		Kind:     metav1.GroupVersionKind(phiguardv1alpha1.GroupVersion.WithKind("PHIWorkload")),
		UserInfo: authenticationv1.UserInfo{Username: "security-officer@clinic.example"},
	}}
}

// specJSON is a workload's spec, for messages.
func specJSON(w *phiguardv1alpha1.PHIWorkload) string {
	return asJSON(w.Spec)
}

func asJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%+v", v)
	}
	return string(data)
}
