package cli

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// fieldChanges names each field added, removed or changed, compares lists
// whole, and leaves out the fields the apiserver sets on every write.
func TestFieldChanges(t *testing.T) {
	before := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "a", "resourceVersion": "1", "generation": int64(1), "uid": "u1",
			"labels": map[string]any{"keep": "x", "drop": "y"}},
		"data":   map[string]any{"same": "1", "changed": "old"},
		"list":   []any{"a", "b"},
		"status": map[string]any{"phase": "Old"},
	}}
	after := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "a", "resourceVersion": "2", "generation": int64(2), "uid": "u1",
			"labels": map[string]any{"keep": "x"}, "managedFields": []any{map[string]any{"manager": "phiguard"}}},
		"data":   map[string]any{"same": "1", "changed": "new", "added": "z"},
		"list":   []any{"a", "c"},
		"status": map[string]any{"phase": "New"},
	}}
	got, err := fieldChanges(before, after)
	if err != nil {
		t.Fatal(err)
	}
	want := []FieldChange{
		{Path: "data.added", New: "z"},
		{Path: "data.changed", Old: "old", New: "new"},
		{Path: "list", Old: []any{"a", "b"}, New: []any{"a", "c"}},
		{Path: "metadata.labels.drop", Old: "y"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fieldChanges:\n got %#v\nwant %#v", got, want)
	}
	if same, err := fieldChanges(before, before.DeepCopy()); err != nil || len(same) != 0 {
		t.Errorf("an object compared with itself: %v, %v", same, err)
	}
}
