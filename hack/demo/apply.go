package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/manifests"
)

// fieldOwner is the field manager of everything the demo applies.
const fieldOwner = client.FieldOwner("phiguard-demo")

// applySamples server-side applies every object in the YAML files of dir
// (except kustomization.yaml): Namespaces first, then other cluster-scoped
// objects, then namespaced ones. It returns the PHIWorkloads it applied.
func applySamples(ctx context.Context, c client.Client, dir string) ([]types.NamespacedName, error) {
	objs, err := loadSamples(dir)
	if err != nil {
		return nil, err
	}
	if err := sortForApply(objs, c.IsObjectNamespaced); err != nil {
		return nil, err
	}
	var workloads []types.NamespacedName
	for _, obj := range objs {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), fieldOwner, client.ForceOwnership); err != nil {
			return nil, fmt.Errorf("applying %s: %w", describe(obj), err)
		}
		fmt.Printf("  applied %s\n", describe(obj))
		switch {
		case obj.GroupVersionKind() == phiguardv1alpha1.GroupVersion.WithKind("PHIWorkload"):
			workloads = append(workloads, types.NamespacedName{Namespace: obj.GetNamespace(), Name: obj.GetName()})
		case obj.GetKind() == "Service" && obj.GetLabels()[phiguardv1alpha1.EPHILabel] == phiguardv1alpha1.EPHILabelValue:
			// A labelled sample Service is covered by a generated PHIWorkload.
			workloads = append(workloads, types.NamespacedName{Namespace: obj.GetNamespace(),
				Name: controller.ServiceSource.GeneratedName(obj.GetName())})
		}
	}
	return workloads, nil
}

// loadSamples reads every object of the *.yaml files in dir, in file name order.
func loadSamples(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("listing samples in %s: %w", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, file := range files {
		if filepath.Base(file) == "kustomization.yaml" {
			continue
		}
		docs, err := readManifests(file)
		if err != nil {
			return nil, err
		}
		objs = append(objs, docs...)
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no objects in %s/*.yaml", dir)
	}
	return objs, nil
}

// readManifests decodes the documents of a multi-document YAML file, skipping
// empty ones.
func readManifests(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	objs, err := manifests.Decode(bytes.NewReader(data), path)
	if err != nil {
		return nil, fmt.Errorf("reading samples: %w", err)
	}
	return objs, nil
}

// sortForApply orders objects so that what others depend on exists first:
// Namespaces, then other cluster-scoped objects, then namespaced objects. The
// order within each group is kept.
func sortForApply(objs []*unstructured.Unstructured, isNamespaced func(runtime.Object) (bool, error)) error {
	rank := make(map[*unstructured.Unstructured]int, len(objs))
	for _, obj := range objs {
		namespaced, err := isNamespaced(obj)
		if err != nil {
			return fmt.Errorf("looking up the scope of %s: %w", describe(obj), err)
		}
		switch {
		case obj.GroupVersionKind().GroupKind() == (schema.GroupKind{Kind: "Namespace"}):
			rank[obj] = 0
		case !namespaced:
			rank[obj] = 1
		default:
			rank[obj] = 2
		}
	}
	slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return rank[a] - rank[b] })
	return nil
}

// describe names an object for messages: Kind namespace/name.
func describe(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", obj.GetKind(), ns, obj.GetName())
	}
	return fmt.Sprintf("%s %s", obj.GetKind(), obj.GetName())
}
