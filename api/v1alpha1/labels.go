package v1alpha1

// Labels phiguard reads and writes.
const (
	// EPHILabel is the label that, set to "true" on a Deployment, StatefulSet,
	// Service or Namespace, says that it handles ePHI and should be covered by phiguard.
	EPHILabel = "phiguard.io/ephi"

	// WorkloadLabel is the label that, on an object phiguard created, names the PHIWorkload (in the
	// object's namespace) it was created for.
	WorkloadLabel = "phiguard.io/workload"

	// ManagedByLabel is the well-known label naming the tool that manages an
	// object; phiguard sets it to ManagedByValue on everything it creates.
	ManagedByLabel = "app.kubernetes.io/managed-by"

	// ManagedByValue is phiguard's value of ManagedByLabel.
	ManagedByValue = "phiguard"
)
