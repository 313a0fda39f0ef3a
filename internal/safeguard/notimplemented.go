package safeguard

import (
	"context"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
)

type notImplemented struct {
	name phiguardv1alpha1.SafeguardName
}

// NotImplemented is the placeholder for a safeguard that phiguard cannot
// evaluate yet: it reports Unknown with a message saying so.
func NotImplemented(name phiguardv1alpha1.SafeguardName) Safeguard {
	return notImplemented{name: name}
}

func (n notImplemented) Name() phiguardv1alpha1.SafeguardName { return n.name }

func (n notImplemented) Rule() Rule { return RuleFor(n.name) }

func (n notImplemented) Reconcile(context.Context, *Scope) Result {
	return Result{
		Status: metav1.ConditionUnknown,
		Reason: phiguardv1alpha1.ReasonNotImplemented,
		Message: fmt.Sprintf("phiguard does not evaluate %s (%s) yet; it is not counted as compliant",
			n.name, n.Rule().Section),
	}
}
