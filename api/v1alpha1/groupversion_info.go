// Package v1alpha1 contains the compliance.phiguard.io/v1alpha1 API: PHIWorkload,
// which names the pods that handle ePHI and the HIPAA safeguards they need, and
// PHIPolicy, the organisation's defaults for those safeguards.
//
// +kubebuilder:object:generate=true
// +groupName=compliance.phiguard.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "compliance.phiguard.io", Version: "v1alpha1"}

	// SchemeBuilder adds the API's types to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the API's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
