package webhook

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// cover is the strongest mode of one safeguard among the PHIWorkloads that
// cover an object, with the workload that sets it and its effective settings.
type cover struct {
	mode     phiguardv1alpha1.Mode
	workload *phiguardv1alpha1.PHIWorkload
	settings phiguardv1alpha1.SafeguardSettings
	policy   *phiguardv1alpha1.PHIPolicy
}

// coverage finds the PHIWorkloads in ns for which covers returns true and
// returns the strongest mode of the safeguard among them: Enforce over Audit,
// and the first workload by name among equals, so that the answer does not
// depend on list order; Off (under a decision) does not cover. ok is false
// when nothing covers, or the namespace is exempt (built-in or PHIPolicy).
func coverage(ctx context.Context, r client.Reader, exempt []string, ns string, name phiguardv1alpha1.SafeguardName,
	covers func(sel labels.Selector) (bool, error)) (cover, bool, error) {
	if slices.Contains(exempt, ns) {
		return cover{}, false, nil // without reading the policy
	}
	policy, err := safeguard.DefaultPolicy(ctx, r)
	if err != nil {
		return cover{}, false, err
	}
	if safeguard.Exempt(exempt, policy, ns) {
		return cover{}, false, nil
	}

	var list phiguardv1alpha1.PHIWorkloadList
	if err := r.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return cover{}, false, fmt.Errorf("listing PHIWorkloads in %s: %w", ns, err)
	}
	slices.SortFunc(list.Items, func(a, b phiguardv1alpha1.PHIWorkload) int { return cmp.Compare(a.Name, b.Name) })
	best := cover{policy: policy}
	for i := range list.Items {
		w := &list.Items[i]
		sel, err := metav1.LabelSelectorAsSelector(&w.Spec.Selector)
		if err != nil {
			continue // reported as Stalled on the workload
		}
		if ok, err := covers(sel); err != nil {
			return cover{}, false, err
		} else if !ok {
			continue
		}
		settings, _, err := safeguard.Effective(&w.Spec.SafeguardSettings, policy)
		if err != nil {
			return cover{}, false, err
		}
		mode := settings.Mode(name)
		if (mode == phiguardv1alpha1.ModeEnforce && best.mode != phiguardv1alpha1.ModeEnforce) ||
			(mode == phiguardv1alpha1.ModeAudit && best.mode == "") {
			best.mode, best.workload, best.settings = mode, w, settings
		}
	}
	return best, best.mode != "", nil
}
