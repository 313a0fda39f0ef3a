// Package ssa is the one way phiguard writes an object it owns: server-side
// apply as the field manager "phiguard", made only when the fields phiguard
// applied last differ from those it would apply now.
//
// The comparison is of phiguard's own fields, as the apiserver records them in
// managedFields, never of the whole stored object. So a steady state writes
// nothing; a field someone else adds (a label, a safeguard setting) is not
// phiguard's and is kept; and a field of phiguard's that someone changes or
// removes is no longer phiguard's, so it is missing from the extract, the
// comparison differs, and the apply, with ForceOwnership, puts it back.
package ssa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/managedfields"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
)

// FieldManager is the field manager of every object phiguard applies.
const FieldManager = "phiguard"

// Extractor returns the fields of a stored object that FieldManager applied,
// as an apply configuration of the same type as the desired one, so that the
// two compare equal when nothing is to be written.
type Extractor func(client.Object) (runtime.ApplyConfiguration, error)

// Apply applies desired as FieldManager, with ForceOwnership, unless existing
// (the stored object, nil when there is none) already holds exactly the fields
// desired sets, as FieldManager's own. changed says whether it applied.
//
// desired must hold only what phiguard sets, with the object's apiVersion,
// kind, name and namespace; after an apply it holds the stored object as the
// apiserver returned it. A field applied with its zero value but dropped when
// the stored object is read (a false bool with omitempty, for instance) never
// compares equal: leave such fields out of desired.
func Apply(ctx context.Context, c client.Client, existing client.Object, desired runtime.ApplyConfiguration, extract Extractor) (changed bool, err error) {
	if !absent(existing) {
		owned, err := extract(existing)
		if err != nil {
			return false, fmt.Errorf("extracting the fields %s applied to %s: %w", FieldManager, describe(existing), err)
		}
		if equality.Semantic.DeepEqual(owned, desired) {
			return false, nil
		}
	}
	if err := c.Apply(ctx, desired, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return false, fmt.Errorf("applying %s: %w", describeApply(desired), err)
	}
	return true, nil
}

// Generated makes an Extractor of a generated Extract function, such as
// ExtractPHIWorkload of phiguard's apply configurations or ExtractNetworkPolicy
// of client-go's.
func Generated[O client.Object, A runtime.ApplyConfiguration](extract func(O, string) (A, error)) Extractor {
	return func(obj client.Object) (runtime.ApplyConfiguration, error) {
		o, ok := obj.(O)
		if !ok {
			var want O
			return nil, fmt.Errorf("cannot extract %T with the extractor of %T", obj, want)
		}
		return extract(o, FieldManager)
	}
}

// Unstructured is the Extractor of kinds without generated apply
// configurations (Velero's Schedule), for a desired object given as
// client.ApplyConfigurationFromUnstructured.
func Unstructured(obj client.Object) (runtime.ApplyConfiguration, error) {
	u, err := ExtractUnstructured(obj)
	if err != nil {
		return nil, err
	}
	return client.ApplyConfigurationFromUnstructured(u), nil
}

// keepAtomic copies from obj into out, whole, each map or list FieldManager
// owns as a leaf: one the CRD marks atomic (a label selector, say,
// x-kubernetes-map-type: atomic) is a single field in managedFields, which
// the deduced schema would otherwise read as a map with no owned field.
func keepAtomic(obj, out *unstructured.Unstructured) error {
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager != FieldManager || mf.Operation != metav1.ManagedFieldsOperationApply || mf.Subresource != "" || mf.FieldsV1 == nil {
			continue
		}
		var set fieldpath.Set
		if err := set.FromJSON(mf.FieldsV1.GetRawReader()); err != nil {
			return fmt.Errorf("reading managedFields: %w", err)
		}
		var errs []error
		set.Leaves().Iterate(func(p fieldpath.Path) {
			fields := make([]string, 0, len(p))
			for _, e := range p {
				if e.FieldName == nil {
					return // a path through a list item: the schema's to read
				}
				fields = append(fields, *e.FieldName)
			}
			v, found, err := unstructured.NestedFieldNoCopy(obj.Object, fields...)
			if err != nil || !found {
				return
			}
			switch v.(type) {
			case map[string]any, []any:
				if err := unstructured.SetNestedField(out.Object, runtime.DeepCopyJSONValue(v), fields...); err != nil {
					errs = append(errs, err)
				}
			}
		})
		return errors.Join(errs...)
	}
	return nil
}

// ExtractUnstructured returns the fields of obj that FieldManager applied (the
// managedFields entry of an Apply to the object itself, not to a subresource),
// with obj's apiVersion, kind, name and namespace. obj is unstructured, or a
// typed object that carries its apiVersion and kind. With no such entry, the
// result holds only those four.
//
// It reads obj with objectType: metadata as the apiserver reads it, the rest
// deduced from the content.
func ExtractUnstructured(obj client.Object) (*unstructured.Unstructured, error) {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Empty() {
		return nil, fmt.Errorf("cannot extract from %s: it carries no apiVersion and kind", describe(obj))
	}
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		if err != nil {
			return nil, fmt.Errorf("converting %s to unstructured: %w", describe(obj), err)
		}
		u = &unstructured.Unstructured{Object: m}
	}
	out := &unstructured.Unstructured{Object: map[string]any{}}
	if err := managedfields.ExtractInto(u, objectType, FieldManager, &out.Object, ""); err != nil {
		return nil, fmt.Errorf("extracting the fields %s applied to %s: %w", FieldManager, describe(obj), err)
	}
	if err := keepAtomic(u, out); err != nil {
		return nil, fmt.Errorf("extracting the fields %s applied to %s: %w", FieldManager, describe(obj), err)
	}
	out.SetGroupVersionKind(gvk)
	out.SetName(obj.GetName())
	if ns := obj.GetNamespace(); ns != "" {
		out.SetNamespace(ns)
	}
	return out, nil
}

// objectType is the structure ExtractUnstructured reads an object with. The
// apiserver keeps managed fields of a custom resource by its CRD's schema,
// which phiguard does not have; typed.DeducedParseableType, which deduces the
// structure from the content (maps field by field, lists whole), matches it
// for the fields of a CRD without list-type markers, such as Velero's. It
// does not match metadata, whose finalizers are a set and whose owner
// references are a list keyed by uid: deduced, owning one finalizer would
// extract them all, and the comparison would differ whenever another
// controller holds one. So metadata is described here as the apiserver
// describes it, and everything else is deduced.
var objectType = func() typed.ParseableType {
	parser, err := typed.NewParser(`types:
- name: object
  map:
    fields:
    - name: metadata
      type:
        namedType: objectMeta
    elementType:
      namedType: __untyped_deduced_
    elementRelationship: separable
- name: objectMeta
  map:
    fields:
    - name: finalizers
      type:
        list:
          elementType:
            scalar: string
          elementRelationship: associative
    - name: ownerReferences
      type:
        list:
          elementType:
            namedType: ownerReference
          elementRelationship: associative
          keys:
          - uid
    elementType:
      namedType: __untyped_deduced_
    elementRelationship: separable
- name: ownerReference
  map:
    fields:
    - name: uid
      type:
        scalar: string
    elementType:
      namedType: __untyped_atomic_
    elementRelationship: atomic
- name: __untyped_atomic_
  scalar: untyped
  list:
    elementType:
      namedType: __untyped_atomic_
    elementRelationship: atomic
  map:
    elementType:
      namedType: __untyped_atomic_
    elementRelationship: atomic
- name: __untyped_deduced_
  scalar: untyped
  list:
    elementType:
      namedType: __untyped_atomic_
    elementRelationship: atomic
  map:
    elementType:
      namedType: __untyped_deduced_
    elementRelationship: separable
`)
	if err != nil {
		panic(fmt.Sprintf("parsing the object schema: %v", err))
	}
	return parser.Type("object")
}()

// LabelSelector is s as an apply configuration; an empty s is an empty
// selector ({}), not a missing one.
func LabelSelector(s *metav1.LabelSelector) *metav1ac.LabelSelectorApplyConfiguration {
	ac := metav1ac.LabelSelector()
	if len(s.MatchLabels) > 0 {
		ac.WithMatchLabels(s.MatchLabels)
	}
	for _, r := range s.MatchExpressions {
		ac.WithMatchExpressions(metav1ac.LabelSelectorRequirement().WithKey(r.Key).WithOperator(r.Operator).WithValues(r.Values...))
	}
	return ac
}

// absent says whether obj is nil, or a nil pointer of an object type (a
// *PHIWorkload that was not found, passed as a client.Object).
func absent(obj client.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// describe names an object in an error: its type, namespace and name.
// describeApply names what an apply configuration applies, as "Kind
// namespace/name"; the Go type when it does not say.
func describeApply(ac runtime.ApplyConfiguration) string {
	named, ok := ac.(interface {
		GetKind() *string
		GetName() *string
		GetNamespace() *string
	})
	if !ok || named.GetKind() == nil || named.GetName() == nil {
		return fmt.Sprintf("%T", ac)
	}
	key := client.ObjectKey{Name: *named.GetName()}
	if ns := named.GetNamespace(); ns != nil {
		key.Namespace = *ns
	}
	return *named.GetKind() + " " + key.String()
}

func describe(obj client.Object) string {
	return fmt.Sprintf("%T %s", obj, client.ObjectKeyFromObject(obj))
}

// Typed returns the object an apply configuration describes, as the typed
// object T the apiserver would store from it (fields it does not set stay
// zero), by a JSON round trip: apply configurations share their types' JSON.
func Typed[T any](ac runtime.ApplyConfiguration) (*T, error) {
	data, err := json.Marshal(ac)
	if err != nil {
		return nil, fmt.Errorf("encoding an apply configuration: %w", err)
	}
	out := new(T)
	if err := json.Unmarshal(data, out); err != nil {
		return nil, fmt.Errorf("decoding an apply configuration as %T: %w", out, err)
	}
	return out, nil
}
