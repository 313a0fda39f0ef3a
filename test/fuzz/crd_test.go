package fuzz

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structurallisttype "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/listtype"
	schemaobjectmeta "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/objectmeta"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// crdDir holds the CRDs `make manifests` generates from the API's markers.
const crdDir = "../../config/crd/bases"

// crdValidator admits a custom resource the way the kube-apiserver does for
// one CRD version, in-process, with the apiextensions-apiserver's own code:
// the schema's pruning and defaults, then what its customresource strategy
// validates on a create (metadata, OpenAPI schema, list types, then the
// x-kubernetes-validations CEL rules). The strategy itself is not imported:
// its package brings the apiserver's etcd storage with it.
type crdValidator struct {
	structural *structuralschema.Structural
	validate   func(ctx context.Context, u *unstructured.Unstructured) field.ErrorList
}

// newCRDValidator reads the CRD in file (under crdDir) and prepares its
// served version's schema as the apiserver's customresource handler does.
func newCRDValidator(file string) (*crdValidator, error) {
	data, err := os.ReadFile(filepath.Join(crdDir, file))
	if err != nil {
		return nil, fmt.Errorf("reading the CRD: %w", err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &crd); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", file, err)
	}
	if len(crd.Spec.Versions) != 1 {
		return nil, fmt.Errorf("%s serves %d versions; the validator knows one", file, len(crd.Spec.Versions))
	}
	version := crd.Spec.Versions[0]
	var internal apiextensionsinternal.CustomResourceValidation
	if err := apiextensionsv1.Convert_v1_CustomResourceValidation_To_apiextensions_CustomResourceValidation(version.Schema, &internal, nil); err != nil {
		return nil, fmt.Errorf("converting the schema of %s: %w", file, err)
	}
	structural, err := structuralschema.NewStructural(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("the schema of %s is not structural: %w", file, err)
	}
	if err := structuraldefaulting.PruneDefaults(structural); err != nil {
		return nil, fmt.Errorf("pruning the defaults of %s: %w", file, err)
	}
	schemaValidator, _, err := apiservervalidation.NewSchemaValidator(internal.OpenAPIV3Schema)
	if err != nil {
		return nil, fmt.Errorf("building the schema validator of %s: %w", file, err)
	}
	namespaced := crd.Spec.Scope == apiextensionsv1.NamespaceScoped
	celValidator := cel.NewValidator(structural, true, celconfig.PerCallLimit)
	return &crdValidator{structural: structural, validate: func(ctx context.Context, u *unstructured.Unstructured) field.ErrorList {
		// What the customresource registry's strategy does on a create:
		// PrepareForCreate (no status), then Validate.
		delete(u.Object, "status")
		errs := apivalidation.ValidateObjectMetaAccessor(u, namespaced, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
		errs = append(errs, apiservervalidation.ValidateCustomResource(nil, u.Object, schemaValidator)...)
		errs = append(errs, schemaobjectmeta.Validate(ctx, nil, u.Object, structural, false)...)
		errs = append(errs, structurallisttype.ValidateListSetsAndMaps(nil, structural, u.Object)...)
		if len(errs) > 0 {
			return errs // the CEL rules assume a well-typed object
		}
		celErrs, _ := celValidator.Validate(ctx, nil, structural, u.Object, nil, celconfig.RuntimeCELCostBudget)
		return celErrs
	}}, nil
}

// admit decodes raw (JSON) as a create request's object and returns what
// the apiserver would store, or why it refuses it.
func (v *crdValidator) admit(ctx context.Context, raw []byte) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(raw); err != nil { // as the apiserver decodes: whole numbers as int64
		return nil, fmt.Errorf("decoding: %w", err)
	}
	structuralpruning.Prune(u.Object, v.structural, true)
	structuraldefaulting.PruneNonNullableNullsWithoutDefaults(u.Object, v.structural)
	structuraldefaulting.Default(u.Object, v.structural)
	if errs := v.validate(ctx, u); len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return u, nil
}

// admitObject is admit for an object phiguard's Go types describe.
func (v *crdValidator) admitObject(ctx context.Context, obj any) (*unstructured.Unstructured, error) {
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encoding: %w", err)
	}
	return v.admit(ctx, raw)
}

// decodeStored decodes a stored object into out as the manager's cache
// decodes what it lists and watches: from its JSON.
func decodeStored(u *unstructured.Unstructured, out any) error {
	raw, err := u.MarshalJSON()
	if err != nil {
		return fmt.Errorf("encoding the stored object: %w", err)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("decoding %s as %T: %w", raw, out, err)
	}
	return nil
}

// TestCRDValidator checks the in-process validation against what the
// apiserver is known to do with the PHIWorkload CRD: it stores a valid
// workload with its defaults, and refuses a schema violation and a CEL rule's.
func TestCRDValidator(t *testing.T) {
	crd, err := newCRDValidator("compliance.phiguard.io_phiworkloads.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w := recordsWorkload()
	w.Spec.NetworkIsolation.Ingress[0].Ports = []phiguardv1alpha1.NetworkPort{{Port: ptr.To(intstr.FromInt32(443))}}
	stored, err := crd.admitObject(ctx, w)
	if err != nil {
		t.Fatalf("a valid workload is refused: %v", err)
	}
	rules, _, _ := unstructured.NestedSlice(stored.Object, "spec", "networkIsolation", "ingress")
	if got := rules[0].(map[string]any)["ports"].([]any)[0].(map[string]any)["protocol"]; got != "TCP" {
		t.Errorf("the schema's default protocol is not applied: %v", got)
	}

	for _, tc := range []struct {
		name, want string
		change     func(w *phiguardv1alpha1.PHIWorkload)
	}{
		{"schema enum", `spec.networkIsolation.mode: Unsupported value: "Sometimes"`, func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.NetworkIsolation.Mode = "Sometimes"
		}},
		{"CEL rule", "spec.selector is empty", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Spec.Selector = metav1.LabelSelector{}
		}},
		{"metadata", "metadata.name", func(w *phiguardv1alpha1.PHIWorkload) {
			w.Name = "Not_A_Name"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := recordsWorkload()
			tc.change(w)
			_, err := crd.admitObject(ctx, w)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
