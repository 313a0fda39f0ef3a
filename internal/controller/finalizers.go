package controller

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// removeFinalizer removes one finalizer and nothing else. Two controllers
// hold finalizers on a generated PHIWorkload and may release them at the same
// moment: a merge patch would write back the whole list as this controller
// last saw it, re-adding the other's (which the apiserver refuses on an object
// being deleted). The JSON patch tests the entry's position first, so a list
// that moved fails and is retried with a fresh read.
func removeFinalizer(ctx context.Context, c client.Client, obj client.Object, finalizer string) error {
	i := slices.Index(obj.GetFinalizers(), finalizer)
	if i < 0 {
		return nil
	}
	patch := fmt.Sprintf(`[{"op":"test","path":"/metadata/finalizers/%d","value":%q},{"op":"remove","path":"/metadata/finalizers/%d"}]`,
		i, finalizer, i)
	if err := c.Patch(ctx, obj, client.RawPatch(types.JSONPatchType, []byte(patch)), FieldOwner); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("removing the finalizer %s of %s/%s: %w", finalizer, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
