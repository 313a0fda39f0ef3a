// Package v1alpha1 contains the compliance.phiguard.io/v1alpha1 API: PHIWorkload,
// which names the pods that handle ePHI and the HIPAA safeguards they need, and
// PHIPolicy, the organisation's defaults for those safeguards.
//
// +kubebuilder:object:generate=true
// +kubebuilder:ac:generate=true
// +groupName=compliance.phiguard.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "compliance.phiguard.io", Version: "v1alpha1"}

	// SchemeGroupVersion is GroupVersion under the name the generated apply
	// configurations (applyconfiguration/utils.go) refer to.
	SchemeGroupVersion = GroupVersion

	// SchemeBuilder adds the API's types to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the API's types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &PHIWorkload{}, &PHIWorkloadList{}, &PHIPolicy{}, &PHIPolicyList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
