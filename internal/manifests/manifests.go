// Package manifests decodes multi-document YAML (or JSON) streams of
// Kubernetes objects, as kubectl, kustomize and helm write them.
package manifests

import (
	"errors"
	"fmt"
	"io"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Decode returns the objects of the stream in order, skipping empty
// documents (such as those holding only comments). Every object must have an
// apiVersion, a kind and a name; source names the stream in errors.
func Decode(r io.Reader, source string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []*unstructured.Unstructured
	for doc := 1; ; doc++ {
		obj := &unstructured.Unstructured{}
		err := dec.Decode(&obj.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decoding document %d of %s: %w", doc, source, err)
		}
		if len(obj.Object) == 0 {
			continue // an empty document, such as one holding only comments
		}
		if obj.GetAPIVersion() == "" || obj.GetKind() == "" || obj.GetName() == "" {
			return nil, fmt.Errorf("document %d of %s lacks apiVersion, kind or metadata.name", doc, source)
		}
		objs = append(objs, obj)
	}
}
