package safeguard

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

// DefaultPolicy reads the PHIPolicy named default, the only one that applies;
// nil, without an error, when there is none.
func DefaultPolicy(ctx context.Context, r client.Reader) (*phiguardv1alpha1.PHIPolicy, error) {
	var p phiguardv1alpha1.PHIPolicy
	switch err := r.Get(ctx, types.NamespacedName{Name: phiguardv1alpha1.DefaultPolicyName}, &p); {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("reading PHIPolicy %s: %w", phiguardv1alpha1.DefaultPolicyName, err)
	}
	return &p, nil
}

// Exempt says whether phiguard never acts in namespace ns: one of the
// built-in exempt namespaces (kube-system, phiguard's own) or one the policy
// (which may be nil) lists.
func Exempt(builtIn []string, policy *phiguardv1alpha1.PHIPolicy, ns string) bool {
	return slices.Contains(builtIn, ns) || (policy != nil && slices.Contains(policy.Spec.ExemptNamespaces, ns))
}
