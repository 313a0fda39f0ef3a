package controller

import (
	"context"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// Outcome is what one safeguard reported when Evaluate ran it.
type Outcome struct {
	// Name is the safeguard's name.
	Name phiguardv1alpha1.SafeguardName
	// Mode is its effective mode in the scope.
	Mode phiguardv1alpha1.Mode
	// Result is what it reported; for an Off safeguard, the verdict on its
	// decision (with the error of its own run, if any).
	Result safeguard.Result
}

// Evaluate runs every safeguard of registry on a scope, in order, exactly as
// Reconcile does, and returns their outcomes. It writes only through
// s.Client and records nothing: a caller that builds its own scope (kubectl
// phiguard preview, whose client dry-runs every write) sees what a reconcile
// of that scope would do.
func Evaluate(ctx context.Context, registry safeguard.Registry, s *safeguard.Scope) []Outcome {
	r := &PHIWorkloadReconciler{Registry: registry}
	outcomes := r.evaluate(ctx, s)
	out := make([]Outcome, 0, len(outcomes))
	for _, o := range outcomes {
		out = append(out, Outcome{Name: o.name, Mode: o.mode, Result: o.result})
	}
	return out
}
