package controller

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// Coverage is phiguard's verdict on one object labelled phiguard.io/ephi=true:
// whether a PHIWorkload covers its pods and, when none does, why. kubectl
// phiguard risk reports the objects left uncovered.
type Coverage struct {
	// Covered is true when the PHIWorkload generated for the object exists, or
	// another one that selects the same pods takes precedence over it.
	Covered bool
	// Workload is the PHIWorkload generated for the object, as namespace/name
	// (whether or not it exists).
	Workload string
	// Reason is the coverage reason (CoveredByWorkload, CoverageNotPossible,
	// WorkloadNameTaken, CoverageInterrupted); empty when the generated
	// workload covers the object, or is yet to be generated.
	Reason string
	// Message says why, naming the objects.
	Message string
}

// JudgeCoverage judges a labelled object of r.Source's kind as Reconcile
// does, reading through r.Client, and changes nothing. The object must be
// labelled: Reconcile withdraws the coverage of one that is not.
func (r *LabelReconciler) JudgeCoverage(ctx context.Context, obj client.Object) (Coverage, error) {
	objKey := client.ObjectKeyFromObject(obj)
	key := types.NamespacedName{Namespace: r.Source.generatedNamespace(objKey), Name: r.Source.GeneratedName(obj.GetName())}
	c := Coverage{Workload: key.String()}
	var generated *phiguardv1alpha1.PHIWorkload
	var w phiguardv1alpha1.PHIWorkload
	switch err := r.Get(ctx, key, &w); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return Coverage{}, fmt.Errorf("reading PHIWorkload %s: %w", key, err)
	default:
		generated = &w
		ours, err := r.generatedFor(generated, obj.GetName())
		if err != nil {
			return Coverage{}, err
		}
		if !ours {
			c.Reason = phiguardv1alpha1.ReasonWorkloadNameTaken
			c.Message = fmt.Sprintf("PHIWorkload %s exists and was not generated for %s, so phiguard cannot generate one of that name; if it covers these pods, remove the %s label",
				key, r.describe(objKey), phiguardv1alpha1.EPHILabel)
			return c, nil
		}
	}
	v, err := r.judge(ctx, obj, true, objKey, key)
	if err != nil {
		return Coverage{}, err
	}
	switch {
	case v.cover && generated != nil && generated.DeletionTimestamp.IsZero():
		c.Covered = true
		c.Message = fmt.Sprintf("%s is covered by its generated PHIWorkload %s", r.describe(objKey), key)
	case v.cover && generated != nil:
		c.Reason = phiguardv1alpha1.ReasonCoverageInterrupted
		c.Message = fmt.Sprintf("PHIWorkload %s is being deleted while %s is still labelled %s=true; phiguard generates it again",
			key, r.describe(objKey), phiguardv1alpha1.EPHILabel)
	case v.cover:
		c.Message = fmt.Sprintf("%s is labelled %s=true, but PHIWorkload %s has not been generated: phiguard's manager generates it while it runs",
			r.describe(objKey), phiguardv1alpha1.EPHILabel, key)
	default:
		c.Covered = v.reason == phiguardv1alpha1.ReasonCoveredByWorkload
		c.Reason, c.Message = v.reason, v.message
	}
	return c, nil
}
