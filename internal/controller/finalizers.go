package controller

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Two controllers hold finalizers on a generated PHIWorkload and may add or
// release them at the same moment: a merge patch would write back the whole
// list as this controller last saw it, dropping or re-adding the other's
// (which the apiserver refuses on an object being deleted). Both functions
// below send a JSON patch whose first operation tests what they saw, so a
// list that changed fails, and the reconcile is retried with a fresh read.

// opTest is the JSON patch operation that checks a value before the others apply.
const opTest = "test"

// jsonPatchOp is one operation of a JSON patch (RFC 6902).
type jsonPatchOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// addFinalizer adds one finalizer, unless the object has it.
func addFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	current := obj.GetFinalizers()
	if slices.Contains(current, finalizer) {
		return nil
	}
	ops := []jsonPatchOp{{Op: opTest, Path: "/metadata/finalizers", Value: current}, {Op: "add", Path: "/metadata/finalizers/-", Value: finalizer}}
	if len(current) == 0 {
		// An absent list cannot be tested; the version can.
		ops = []jsonPatchOp{{Op: opTest, Path: "/metadata/resourceVersion", Value: obj.GetResourceVersion()},
			{Op: "add", Path: "/metadata/finalizers", Value: []string{finalizer}}}
	}
	return patchFinalizers(ctx, c, obj, "adding", finalizer, ops)
}

// removeFinalizer removes one finalizer and nothing else, testing its position first.
func removeFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	i := slices.Index(obj.GetFinalizers(), finalizer)
	if i < 0 {
		return nil
	}
	path := "/metadata/finalizers/" + strconv.Itoa(i)
	return patchFinalizers(ctx, c, obj, "removing", finalizer,
		[]jsonPatchOp{{Op: opTest, Path: path, Value: finalizer}, {Op: "remove", Path: path}})
}

func patchFinalizers(ctx context.Context, c client.Client, obj client.Object, verb, finalizer string, ops []jsonPatchOp) error {
	patch, err := json.Marshal(ops)
	if err != nil {
		return fmt.Errorf("encoding the patch %s the finalizer %s: %w", verb, finalizer, err)
	}
	if err := c.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, patch), FieldOwner); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("%s the finalizer %s of %s/%s: %w", verb, finalizer, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
