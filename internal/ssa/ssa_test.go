package ssa_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	phiguardv1alpha1ac "github.com/phiguard/phiguard/api/v1alpha1/applyconfiguration/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/ssa"
)

// Covers the decision to write: Apply compares the fields phiguard applied,
// as recorded in managedFields, with those it wants, and applies (as
// "phiguard", forced) only when they differ; ExtractUnstructured returns
// phiguard's applied fields of an object without generated apply
// configurations. The managedFields are written here as the apiserver writes
// them; the envtest suites check them against a real one.

const (
	coverageFinalizer = "compliance.phiguard.io/coverage-record"
	otherFinalizer    = "compliance.phiguard.io/safeguards"
	ownerUID          = "6b8d1c7e-0000-4000-8000-000000000001"
)

// fields is a FieldsV1 set: "f:<field>", "k:<key>" and "v:<value>" to a set
// of the paths below, "." when the node itself is owned.
type fields map[string]any

// without returns a copy of f without the path.
func (f fields) without(path ...string) fields {
	out := fields{}
	for k, v := range f {
		out[k] = v
	}
	if len(path) == 1 {
		delete(out, path[0])
	} else {
		out[path[0]] = out[path[0]].(fields).without(path[1:]...)
	}
	return out
}

// entry is a managedFields entry.
func entry(t *testing.T, manager string, op metav1.ManagedFieldsOperationType, subresource string, f fields) metav1.ManagedFieldsEntry {
	t.Helper()
	raw, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Subresource: subresource, APIVersion: "compliance.phiguard.io/v1alpha1",
		FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(string(raw))}
}

// workloadApplied is what phiguard applies to a generated PHIWorkload.
var workloadApplied = fields{
	"f:metadata": fields{
		"f:annotations":     fields{".": fields{}, "f:phiguard.io/source": fields{}},
		"f:finalizers":      fields{".": fields{}, `v:"` + coverageFinalizer + `"`: fields{}},
		"f:labels":          fields{".": fields{}, "f:app.kubernetes.io/managed-by": fields{}, "f:phiguard.io/generated-from": fields{}},
		"f:ownerReferences": fields{".": fields{}, `k:{"uid":"` + ownerUID + `"}`: fields{}},
	},
	"f:spec": fields{".": fields{}, "f:selector": fields{".": fields{}, "f:matchLabels": fields{".": fields{}, "f:app": fields{}}}},
}

// storedWorkload is a generated PHIWorkload as read back: phiguard applied
// applied; phiguard's other controller added its finalizer by a patch (an
// Update of the same manager) and wrote the status; a person added a label
// and a safeguard setting.
func storedWorkload(t *testing.T, applied fields) *phiguardv1alpha1.PHIWorkload {
	return &phiguardv1alpha1.PHIWorkload{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "clinic", Name: "deploy-api", UID: "6b8d1c7e-0000-4000-8000-000000000002",
			Labels: map[string]string{
				phiguardv1alpha1.ManagedByLabel: phiguardv1alpha1.ManagedByValue, phiguardv1alpha1.GeneratedFromLabel: "Deployment", "team": "billing"},
			Annotations: map[string]string{phiguardv1alpha1.SourceAnnotation: "Deployment/api"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "api", UID: ownerUID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}},
			Finalizers: []string{coverageFinalizer, otherFinalizer},
			ManagedFields: []metav1.ManagedFieldsEntry{
				entry(t, "phiguard", metav1.ManagedFieldsOperationApply, "", applied),
				entry(t, "phiguard", metav1.ManagedFieldsOperationUpdate, "", fields{
					"f:metadata": fields{"f:finalizers": fields{`v:"` + otherFinalizer + `"`: fields{}}}}),
				entry(t, "kubectl-edit", metav1.ManagedFieldsOperationUpdate, "", fields{
					"f:metadata": fields{"f:labels": fields{"f:team": fields{}}},
					"f:spec":     fields{"f:integrity": fields{".": fields{}, "f:mode": fields{}}}}),
				entry(t, "phiguard", metav1.ManagedFieldsOperationUpdate, "status", fields{
					"f:status": fields{".": fields{}, "f:matchedPods": fields{}}}),
			},
		},
		Spec: phiguardv1alpha1.PHIWorkloadSpec{
			Selector:          metav1.LabelSelector{MatchLabels: map[string]string{"app": "api"}},
			SafeguardSettings: phiguardv1alpha1.SafeguardSettings{Integrity: &phiguardv1alpha1.IntegritySpec{Mode: phiguardv1alpha1.ModeEnforce}},
		},
		Status: phiguardv1alpha1.PHIWorkloadStatus{MatchedPods: 2},
	}
}

// desiredWorkload is what phiguard applies to it.
func desiredWorkload() *phiguardv1alpha1ac.PHIWorkloadApplyConfiguration {
	return phiguardv1alpha1ac.PHIWorkload("deploy-api", "clinic").
		WithLabels(map[string]string{phiguardv1alpha1.ManagedByLabel: phiguardv1alpha1.ManagedByValue, phiguardv1alpha1.GeneratedFromLabel: "Deployment"}).
		WithAnnotations(map[string]string{phiguardv1alpha1.SourceAnnotation: "Deployment/api"}).
		WithOwnerReferences(metav1ac.OwnerReference().WithAPIVersion("apps/v1").WithKind("Deployment").WithName("api").WithUID(ownerUID).
			WithController(true).WithBlockOwnerDeletion(false)).
		WithFinalizers(coverageFinalizer).
		WithSpec(phiguardv1alpha1ac.PHIWorkloadSpec().WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app": "api"})))
}

// applies is a client that records the applies it is asked for.
type applies struct {
	client.Client
	calls []client.ApplyOptions
	err   error
}

func newApplies(err error) *applies {
	a := &applies{err: err}
	a.Client = fake.NewClientBuilder().WithInterceptorFuncs(interceptor.Funcs{
		Apply: func(_ context.Context, _ client.WithWatch, _ runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			var o client.ApplyOptions
			a.calls = append(a.calls, *o.ApplyOptions(opts))
			return a.err
		},
	}).Build()
	return a
}

func TestApply(t *testing.T) {
	extract := ssa.Generated(phiguardv1alpha1ac.ExtractPHIWorkload)
	tests := []struct {
		name      string
		existing  func(t *testing.T) client.Object
		desired   func() *phiguardv1alpha1ac.PHIWorkloadApplyConfiguration
		wantApply bool
	}{
		{
			name:     "steady: phiguard's fields as wanted, others' fields and entries ignored",
			existing: func(t *testing.T) client.Object { return storedWorkload(t, workloadApplied) },
		},
		{
			name:      "none stored",
			existing:  func(*testing.T) client.Object { return nil },
			wantApply: true,
		},
		{
			name:      "none stored, as a nil *PHIWorkload",
			existing:  func(*testing.T) client.Object { return (*phiguardv1alpha1.PHIWorkload)(nil) },
			wantApply: true,
		},
		{
			name: "generated-from label changed by hand: no longer phiguard's",
			existing: func(t *testing.T) client.Object {
				w := storedWorkload(t, workloadApplied.without("f:metadata", "f:labels", "f:phiguard.io/generated-from"))
				w.Labels[phiguardv1alpha1.GeneratedFromLabel] = "Hand"
				return w
			},
			wantApply: true,
		},
		{
			name: "coverage finalizer removed by hand",
			existing: func(t *testing.T) client.Object {
				w := storedWorkload(t, workloadApplied.without("f:metadata", "f:finalizers", `v:"`+coverageFinalizer+`"`))
				w.Finalizers = []string{otherFinalizer}
				return w
			},
			wantApply: true,
		},
		{
			name: "owner reference removed by hand",
			existing: func(t *testing.T) client.Object {
				w := storedWorkload(t, workloadApplied.without("f:metadata", "f:ownerReferences"))
				w.OwnerReferences = nil
				return w
			},
			wantApply: true,
		},
		{
			name: "selector changed by hand",
			existing: func(t *testing.T) client.Object {
				w := storedWorkload(t, workloadApplied.without("f:spec", "f:selector", "f:matchLabels", "f:app"))
				w.Spec.Selector.MatchLabels = map[string]string{"app": "other"}
				return w
			},
			wantApply: true,
		},
		{
			name:     "the selector phiguard wants changed",
			existing: func(t *testing.T) client.Object { return storedWorkload(t, workloadApplied) },
			desired: func() *phiguardv1alpha1ac.PHIWorkloadApplyConfiguration {
				return desiredWorkload().WithSpec(phiguardv1alpha1ac.PHIWorkloadSpec().
					WithSelector(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app": "api-v2"})))
			},
			wantApply: true,
		},
		{
			name:     "a field phiguard applied is no longer wanted: the apply removes it",
			existing: func(t *testing.T) client.Object { return storedWorkload(t, workloadApplied) },
			desired: func() *phiguardv1alpha1ac.PHIWorkloadApplyConfiguration {
				d := desiredWorkload()
				d.Annotations = nil
				return d
			},
			wantApply: true,
		},
		{
			name: "the same values, but set by a patch, not applied",
			existing: func(t *testing.T) client.Object {
				w := storedWorkload(t, workloadApplied)
				w.ManagedFields[0].Operation = metav1.ManagedFieldsOperationUpdate
				return w
			},
			wantApply: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			desired := desiredWorkload()
			if tt.desired != nil {
				desired = tt.desired()
			}
			c := newApplies(nil)
			changed, err := ssa.Apply(context.Background(), c, tt.existing(t), desired, extract)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(changed).To(Equal(tt.wantApply))
			if !tt.wantApply {
				g.Expect(c.calls).To(BeEmpty())
				return
			}
			g.Expect(c.calls).To(HaveLen(1))
			g.Expect(c.calls[0].FieldManager).To(Equal(ssa.FieldManager))
			g.Expect(c.calls[0].Force).To(HaveValue(BeTrue()), "a field someone took is taken back")
		})
	}
}

func TestApplyErrors(t *testing.T) {
	t.Run("an object the extractor cannot read: no apply", func(t *testing.T) {
		g := NewWithT(t)
		c := newApplies(nil)
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(phiguardv1alpha1.GroupVersion.WithKind("PHIWorkload"))
		_, err := ssa.Apply(context.Background(), c, u, desiredWorkload(), ssa.Generated(phiguardv1alpha1ac.ExtractPHIWorkload))
		g.Expect(err).To(MatchError(ContainSubstring("cannot extract *unstructured.Unstructured")))
		g.Expect(c.calls).To(BeEmpty())
	})
	t.Run("a failed apply is not a change", func(t *testing.T) {
		g := NewWithT(t)
		refused := errors.New("refused")
		c := newApplies(refused)
		changed, err := ssa.Apply(context.Background(), c, nil, desiredWorkload(), ssa.Generated(phiguardv1alpha1ac.ExtractPHIWorkload))
		g.Expect(err).To(MatchError(refused))
		g.Expect(err).To(MatchError("applying PHIWorkload clinic/deploy-api: refused"), "named as a user knows it, not by its Go type")
		g.Expect(changed).To(BeFalse())
	})
}

// scheduleApplied is what phiguard applies to a Velero Schedule, with a
// finalizer and an owner reference to show that metadata is read as the
// apiserver keeps it: item by item, not as whole lists.
var scheduleApplied = fields{
	"f:metadata": fields{
		"f:labels":          fields{".": fields{}, "f:app.kubernetes.io/managed-by": fields{}, "f:phiguard.io/workload": fields{}},
		"f:finalizers":      fields{".": fields{}, `v:"phiguard.io/schedule"`: fields{}},
		"f:ownerReferences": fields{".": fields{}, `k:{"uid":"` + ownerUID + `"}`: fields{}},
	},
	"f:spec": fields{".": fields{},
		"f:schedule":                   fields{},
		"f:useOwnerReferencesInBackup": fields{},
		"f:template": fields{".": fields{},
			"f:includedNamespaces": fields{},
			"f:labelSelector":      fields{".": fields{}, "f:matchLabels": fields{".": fields{}, "f:app": fields{}}},
			"f:ttl":                fields{},
		},
	},
}

// storedSchedule is the Schedule as read back: Velero added a finalizer and
// an owner reference, paused it and wrote its status; someone excluded a
// resource.
func storedSchedule(t *testing.T) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "velero.io/v1", "kind": "Schedule",
		"metadata": map[string]any{
			"namespace": "velero", "name": "phiguard-clinic-records", "uid": "6b8d1c7e-0000-4000-8000-000000000003",
			"resourceVersion": "42", "generation": int64(3),
			"labels":     map[string]any{"app.kubernetes.io/managed-by": "phiguard", "phiguard.io/workload": "records", "team": "billing"},
			"finalizers": []any{"phiguard.io/schedule", "velero.io/schedule"},
			"ownerReferences": []any{
				map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": ownerUID},
				map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "6b8d1c7e-0000-4000-8000-000000000004"},
			},
		},
		"spec": map[string]any{
			"schedule": "0 */6 * * *", "useOwnerReferencesInBackup": false, "paused": true,
			"template": map[string]any{
				"includedNamespaces": []any{"clinic"},
				"excludedResources":  []any{"secrets"},
				"labelSelector":      map[string]any{"matchLabels": map[string]any{"app": "records"}},
				"ttl":                "720h0m0s",
			},
		},
		"status": map[string]any{"phase": "Enabled"},
	}}
	u.SetManagedFields([]metav1.ManagedFieldsEntry{
		entry(t, "phiguard", metav1.ManagedFieldsOperationApply, "", scheduleApplied),
		entry(t, "phiguard", metav1.ManagedFieldsOperationUpdate, "", fields{"f:spec": fields{"f:template": fields{"f:excludedResources": fields{}}}}),
		entry(t, "velero-server", metav1.ManagedFieldsOperationUpdate, "", fields{
			"f:metadata": fields{
				"f:finalizers":      fields{`v:"velero.io/schedule"`: fields{}},
				"f:ownerReferences": fields{`k:{"uid":"6b8d1c7e-0000-4000-8000-000000000004"}`: fields{}},
			},
			"f:spec": fields{"f:paused": fields{}},
		}),
		entry(t, "velero-server", metav1.ManagedFieldsOperationUpdate, "status", fields{"f:status": fields{".": fields{}, "f:phase": fields{}}}),
	})
	return u
}

// desiredSchedule is what phiguard applies: exactly scheduleApplied.
func desiredSchedule() *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "velero.io/v1", "kind": "Schedule",
		"metadata": map[string]any{
			"namespace": "velero", "name": "phiguard-clinic-records",
			"labels":     map[string]any{"app.kubernetes.io/managed-by": "phiguard", "phiguard.io/workload": "records"},
			"finalizers": []any{"phiguard.io/schedule"},
			"ownerReferences": []any{
				map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": ownerUID},
			},
		},
		"spec": map[string]any{
			"schedule": "0 */6 * * *", "useOwnerReferencesInBackup": false,
			"template": map[string]any{
				"includedNamespaces": []any{"clinic"},
				"labelSelector":      map[string]any{"matchLabels": map[string]any{"app": "records"}},
				"ttl":                "720h0m0s",
			},
		},
	}}
}

func TestExtractUnstructured(t *testing.T) {
	t.Run("unstructured: only what phiguard applied, one finalizer and owner reference of several", func(t *testing.T) {
		g := NewWithT(t)
		got, err := ssa.ExtractUnstructured(storedSchedule(t))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Object).To(Equal(desiredSchedule().Object))
	})

	t.Run("typed, with its apiVersion and kind: the same", func(t *testing.T) {
		g := NewWithT(t)
		var s velerov1.Schedule
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(storedSchedule(t).Object, &s)).To(Succeed())
		got, err := ssa.ExtractUnstructured(&s)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Object).To(Equal(desiredSchedule().Object))
	})

	t.Run("typed, without apiVersion and kind: an error, not a comparison that always differs", func(t *testing.T) {
		g := NewWithT(t)
		s := &velerov1.Schedule{ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: "x"}}
		_, err := ssa.ExtractUnstructured(s)
		g.Expect(err).To(MatchError(ContainSubstring("no apiVersion and kind")))
	})

	// Velero's CRD marks the label selector x-kubernetes-map-type: atomic, so
	// the apiserver records it as one field with nothing under it.
	t.Run("an atomic map is owned whole", func(t *testing.T) {
		g := NewWithT(t)
		s := storedSchedule(t)
		managed := s.GetManagedFields()
		managed[0] = entry(t, "phiguard", metav1.ManagedFieldsOperationApply, "", fields{"f:spec": fields{".": fields{},
			"f:template": fields{".": fields{}, "f:labelSelector": fields{}}}})
		s.SetManagedFields(managed)
		got, err := ssa.ExtractUnstructured(s)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Object).To(Equal(map[string]any{"apiVersion": "velero.io/v1", "kind": "Schedule",
			"metadata": map[string]any{"namespace": "velero", "name": "phiguard-clinic-records"},
			"spec": map[string]any{"template": map[string]any{
				"labelSelector": map[string]any{"matchLabels": map[string]any{"app": "records"}}}}}))
	})

	t.Run("never applied by phiguard: the identity only", func(t *testing.T) {
		g := NewWithT(t)
		s := storedSchedule(t)
		s.SetManagedFields(s.GetManagedFields()[1:])
		got, err := ssa.ExtractUnstructured(s)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got.Object).To(Equal(map[string]any{"apiVersion": "velero.io/v1", "kind": "Schedule",
			"metadata": map[string]any{"namespace": "velero", "name": "phiguard-clinic-records"}}))
	})
}

func TestApplyUnstructured(t *testing.T) {
	t.Run("steady", func(t *testing.T) {
		g := NewWithT(t)
		c := newApplies(nil)
		changed, err := ssa.Apply(context.Background(), c, storedSchedule(t), client.ApplyConfigurationFromUnstructured(desiredSchedule()), ssa.Unstructured)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(changed).To(BeFalse())
		g.Expect(c.calls).To(BeEmpty())
	})
	t.Run("the cron expression phiguard wants changed", func(t *testing.T) {
		g := NewWithT(t)
		c := newApplies(nil)
		want := desiredSchedule()
		g.Expect(unstructured.SetNestedField(want.Object, "0 */4 * * *", "spec", "schedule")).To(Succeed())
		changed, err := ssa.Apply(context.Background(), c, storedSchedule(t), client.ApplyConfigurationFromUnstructured(want), ssa.Unstructured)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(changed).To(BeTrue())
		g.Expect(c.calls).To(HaveLen(1))
	})
}

func TestLabelSelector(t *testing.T) {
	g := NewWithT(t)
	g.Expect(ssa.LabelSelector(&metav1.LabelSelector{
		MatchLabels: map[string]string{"app": "api"},
		MatchExpressions: []metav1.LabelSelectorRequirement{
			{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"web", "db"}},
			{Key: "canary", Operator: metav1.LabelSelectorOpDoesNotExist},
		},
	})).To(Equal(metav1ac.LabelSelector().WithMatchLabels(map[string]string{"app": "api"}).WithMatchExpressions(
		metav1ac.LabelSelectorRequirement().WithKey("tier").WithOperator(metav1.LabelSelectorOpIn).WithValues("web", "db"),
		metav1ac.LabelSelectorRequirement().WithKey("canary").WithOperator(metav1.LabelSelectorOpDoesNotExist),
	)))
	g.Expect(ssa.LabelSelector(&metav1.LabelSelector{})).To(Equal(metav1ac.LabelSelector()), "empty, not nil: the CRD requires spec.selector")
}
