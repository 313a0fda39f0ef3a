package main

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/phiguard/phiguard/internal/manifests"
)

func TestDecodeManifests(t *testing.T) {
	const doc = `# leading comment only
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: clinic}
---
---
apiVersion: v1
kind: Namespace
metadata:
  name: clinic
`
	objs, err := manifests.Decode(strings.NewReader(doc), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); got != "Pod clinic/a, Namespace clinic" {
		t.Errorf("decoded %s", got)
	}

	if _, err := manifests.Decode(strings.NewReader("kind: Pod\nmetadata: {name: a}\n"), "bad.yaml"); err == nil ||
		!strings.Contains(err.Error(), "document 1 of bad.yaml lacks apiVersion") {
		t.Errorf("error = %v, want one naming the document and the missing field", err)
	}
	if _, err := manifests.Decode(strings.NewReader("a: [\n"), "broken.yaml"); err == nil ||
		!strings.Contains(err.Error(), "decoding document 1 of broken.yaml") {
		t.Errorf("error = %v, want a decoding error naming the file", err)
	}
}

func TestSortForApply(t *testing.T) {
	objs := []*unstructured.Unstructured{
		object("v1", "Pod", "clinic", "p"),
		object("compliance.phiguard.io/v1alpha1", "PHIPolicy", "", "default"),
		object("compliance.phiguard.io/v1alpha1", "PHIWorkload", "clinic", "w"),
		object("v1", "Namespace", "", "clinic"),
		object("v1", "ServiceAccount", "clinic", "sa"),
	}
	isNamespaced := func(o runtime.Object) (bool, error) {
		return o.(*unstructured.Unstructured).GetNamespace() != "", nil
	}
	if err := sortForApply(objs, isNamespaced); err != nil {
		t.Fatal(err)
	}
	want := "Namespace clinic, PHIPolicy default, Pod clinic/p, PHIWorkload clinic/w, ServiceAccount clinic/sa"
	if got := names(objs); got != want {
		t.Errorf("order:\n got %s\nwant %s", got, want)
	}
}

// TestSamplesDecode checks that config/samples holds the objects the demo and
// its documentation promise. That the API accepts them is checked by running
// the demo against a real kube-apiserver.
func TestSamplesDecode(t *testing.T) {
	objs, err := loadSamples(filepath.Join("..", "..", "config", "samples"))
	if err != nil {
		t.Fatal(err)
	}
	got := names(objs)
	for _, want := range []string{
		"Namespace clinic", "Deployment clinic/patient-records", "PersistentVolumeClaim clinic/patient-records-data",
		"PHIWorkload clinic/patient-records", "PHIPolicy default", "Service clinic/intake", "Deployment clinic/intake",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("samples lack %s; they hold %s", want, got)
		}
	}
}

func object(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

func names(objs []*unstructured.Unstructured) string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, describe(o))
	}
	return strings.Join(out, ", ")
}
