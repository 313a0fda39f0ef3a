package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
)

// Actions of a previewed object.
const (
	ActionCreate    = "create"
	ActionChange    = "change"
	ActionDelete    = "delete"
	ActionUnchanged = "unchanged"
)

// objectRef names one object (or one subresource of it) written in a preview.
type objectRef struct {
	gvk         schema.GroupVersionKind
	namespace   string
	name        string
	subresource string
}

// write is what the dry run of the writes to one object returned: the
// object as stored before (nil: it did not exist) and as the apiserver would
// store it after (nil: deleted).
type write struct {
	ref    objectRef
	before *unstructured.Unstructured
	after  *unstructured.Unstructured
}

// writeRecorder records every write made through the client newDryRunClient
// returns, each of which the apiserver only dry-runs. It is safe for
// concurrent use.
type writeRecorder struct {
	// live reads the stored objects, for what each write would change.
	live client.Client

	mu     sync.Mutex
	writes map[objectRef]*write
}

func newWriteRecorder(live client.Client) *writeRecorder {
	return &writeRecorder{live: live, writes: map[objectRef]*write{}}
}

// newDryRunClient returns a client that reads through base and sends every
// write with dryRun=All (client.NewDryRunClient), recording it in rec. The
// interceptor adds dryRun=All too, so a write is never made for real even if
// one of the two layers were bypassed.
func newDryRunClient(base client.WithWatch, rec *writeRecorder) client.Client {
	return client.NewDryRunClient(interceptor.NewClient(base, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			return rec.object(ctx, c, obj, "", func() error { return c.Create(ctx, obj, append(opts, client.DryRunAll)...) })
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			return rec.object(ctx, c, obj, "", func() error { return c.Update(ctx, obj, append(opts, client.DryRunAll)...) })
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			return rec.object(ctx, c, obj, "", func() error { return c.Patch(ctx, obj, patch, append(opts, client.DryRunAll)...) })
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			return rec.deletion(ctx, c, obj, func() error { return c.Delete(ctx, obj, append(opts, client.DryRunAll)...) })
		},
		DeleteAllOf: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteAllOfOption) error {
			return fmt.Errorf("preview cannot show which objects a delete-all-of %T would remove", obj)
		},
		Apply: func(ctx context.Context, c client.WithWatch, ac runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			return rec.apply(ctx, ac, func() error { return c.Apply(ctx, ac, append(opts, client.DryRunAll)...) })
		},
		SubResourceCreate: func(ctx context.Context, c client.Client, sub string, obj, subObj client.Object, opts ...client.SubResourceCreateOption) error {
			return rec.object(ctx, c, subObj, sub, func() error {
				return c.SubResource(sub).Create(ctx, obj, subObj, append(opts, client.DryRunAll)...)
			})
		},
		SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, opts ...client.SubResourceUpdateOption) error {
			return rec.object(ctx, c, obj, sub, func() error { return c.SubResource(sub).Update(ctx, obj, append(opts, client.DryRunAll)...) })
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			return rec.object(ctx, c, obj, sub, func() error {
				return c.SubResource(sub).Patch(ctx, obj, patch, append(opts, client.DryRunAll)...)
			})
		},
		SubResourceApply: func(ctx context.Context, c client.Client, sub string, ac runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
			return fmt.Errorf("preview cannot record a server-side apply of the %s subresource", sub)
		},
	}))
}

// object records a write of a typed or unstructured object: obj holds what
// the dry run returned once do has run.
func (r *writeRecorder) object(ctx context.Context, c client.Client, obj client.Object, sub string, do func() error) error {
	gvk, err := c.GroupVersionKindFor(obj)
	if err != nil {
		return fmt.Errorf("previewing a write of %T: %w", obj, err)
	}
	ref := objectRef{gvk: gvk, namespace: obj.GetNamespace(), name: obj.GetName(), subresource: sub}
	if err := r.remember(ctx, ref); err != nil {
		return err
	}
	if err := do(); err != nil {
		return err // the write's own error, as the caller would get it without the preview
	}
	after, err := asUnstructured(obj, gvk)
	if err != nil {
		return err
	}
	r.result(ref, after)
	return nil
}

// deletion records a delete.
func (r *writeRecorder) deletion(ctx context.Context, c client.Client, obj client.Object, do func() error) error {
	gvk, err := c.GroupVersionKindFor(obj)
	if err != nil {
		return fmt.Errorf("previewing a delete of %T: %w", obj, err)
	}
	ref := objectRef{gvk: gvk, namespace: obj.GetNamespace(), name: obj.GetName()}
	if err := r.remember(ctx, ref); err != nil {
		return err
	}
	if err := do(); err != nil {
		return err // the write's own error, as the caller would get it without the preview
	}
	r.result(ref, nil)
	return nil
}

// apply records a server-side apply: the apply configuration names the
// object, and holds what the dry run returned once do has run.
func (r *writeRecorder) apply(ctx context.Context, ac runtime.ApplyConfiguration, do func() error) error {
	desired, err := applyConfigurationObject(ac)
	if err != nil {
		return err
	}
	ref := objectRef{gvk: desired.GroupVersionKind(), namespace: desired.GetNamespace(), name: desired.GetName()}
	if err := r.remember(ctx, ref); err != nil {
		return err
	}
	if err := do(); err != nil {
		return err // the write's own error, as the caller would get it without the preview
	}
	after, err := applyConfigurationObject(ac)
	if err != nil {
		return err
	}
	r.result(ref, after)
	return nil
}

// remember reads the stored object before its first write.
func (r *writeRecorder) remember(ctx context.Context, ref objectRef) error {
	r.mu.Lock()
	_, seen := r.writes[ref]
	r.mu.Unlock()
	if seen {
		return nil
	}
	before, err := r.read(ctx, ref)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.writes[ref]; !seen {
		r.writes[ref] = &write{ref: ref, before: before}
	}
	return nil
}

// read returns the stored object a ref names; nil when there is none.
func (r *writeRecorder) read(ctx context.Context, ref objectRef) (*unstructured.Unstructured, error) {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(ref.gvk)
	switch err := r.live.Get(ctx, client.ObjectKey{Namespace: ref.namespace, Name: ref.name}, u); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading %s %s: %w", ref.gvk.Kind, namespacedName(ref.namespace, ref.name), err)
	}
	return u, nil
}

func (r *writeRecorder) result(ref objectRef, after *unstructured.Unstructured) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes[ref].after = after
}

// recorded returns what was written, in no particular order.
func (r *writeRecorder) recorded() []*write {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*write, 0, len(r.writes))
	for _, w := range r.writes {
		out = append(out, w)
	}
	return out
}

// applyConfigurationObject returns an apply configuration as the object it
// describes: apply configurations share their types' JSON, apiVersion and
// kind included.
func applyConfigurationObject(ac runtime.ApplyConfiguration) (*unstructured.Unstructured, error) {
	data, err := json.Marshal(ac)
	if err != nil {
		return nil, fmt.Errorf("encoding an apply configuration: %w", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("decoding an apply configuration: %w", err)
	}
	return u, nil
}

// asUnstructured returns a copy of obj as unstructured, with its apiVersion and kind.
func asUnstructured(obj runtime.Object, gvk schema.GroupVersionKind) (*unstructured.Unstructured, error) {
	if u, ok := obj.(*unstructured.Unstructured); ok {
		return u.DeepCopy(), nil
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("converting %T: %w", obj, err)
	}
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	return u, nil
}

// FieldChange is one field a previewed write changes, named by its path
// (lists are compared whole). Old is absent for a field the write adds, New
// for one it removes.
type FieldChange struct {
	Path string `json:"path"`
	Old  any    `json:"old,omitempty"`
	New  any    `json:"new,omitempty"`
}

// serverMetadata are the metadata fields the apiserver keeps on every object,
// which change with each write and say nothing of what the write does.
var serverMetadata = []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"}

// withoutServerFields returns a copy of obj without serverMetadata (nor
// metadata, when nothing else is left of it) and without status, which is
// not what phiguard writes to the objects it keeps.
func withoutServerFields(obj *unstructured.Unstructured) map[string]any {
	out := obj.DeepCopy().Object
	delete(out, "status")
	if md, ok := out["metadata"].(map[string]any); ok {
		for _, f := range serverMetadata {
			delete(md, f)
		}
		if len(md) == 0 {
			delete(out, "metadata")
		}
	}
	return out
}

// fieldChanges returns what differs between two versions of an object, the
// apiserver's own fields aside, sorted by path. Maps are compared field by
// field and lists whole, as structured-merge-diff deduces an object's
// structure from its content.
func fieldChanges(before, after *unstructured.Unstructured) ([]FieldChange, error) {
	lhs, rhs := withoutServerFields(before), withoutServerFields(after)
	l, err := typed.DeducedParseableType.FromUnstructured(lhs)
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", before.GetKind(), before.GetName(), err)
	}
	r, err := typed.DeducedParseableType.FromUnstructured(rhs)
	if err != nil {
		return nil, fmt.Errorf("reading %s %s: %w", after.GetKind(), after.GetName(), err)
	}
	c, err := l.Compare(r)
	if err != nil {
		return nil, fmt.Errorf("comparing two versions of %s %s: %w", after.GetKind(), after.GetName(), err)
	}
	var out []FieldChange
	add := func(set *fieldpath.Set, old, new bool) {
		set.Leaves().Iterate(func(p fieldpath.Path) {
			fields := pathFields(p)
			fc := FieldChange{Path: strings.Join(fields, ".")}
			if old {
				fc.Old, _, _ = unstructured.NestedFieldNoCopy(lhs, fields...)
			}
			if new {
				fc.New, _, _ = unstructured.NestedFieldNoCopy(rhs, fields...)
			}
			out = append(out, fc)
		})
	}
	add(c.Removed, true, false)
	add(c.Modified, true, true)
	add(c.Added, false, true)
	slices.SortFunc(out, func(a, b FieldChange) int { return cmp.Compare(a.Path, b.Path) })
	return out, nil
}

// pathFields returns the field names of a path. Deduced structure has maps
// and atomic lists only, so every element of its paths is a field name.
func pathFields(p fieldpath.Path) []string {
	out := make([]string, 0, len(p))
	for _, e := range p {
		if e.FieldName != nil {
			out = append(out, *e.FieldName)
		} else {
			out = append(out, e.String())
		}
	}
	return out
}

func namespacedName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}
