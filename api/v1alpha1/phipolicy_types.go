package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultPolicyName is the name of the PHIPolicy whose defaults apply.
const DefaultPolicyName = "default"

// PHIPolicySpec holds the organisation's defaults.
// +kubebuilder:validation:XValidation:rule="!has(self.defaults) || !has(self.defaults.encryptionAtRest) || !has(self.defaults.encryptionAtRest.mode) || self.defaults.encryptionAtRest.mode != 'Off'",message="defaults.encryptionAtRest.mode cannot be Off: turning an Addressable safeguard off takes a decision documented on each PHIWorkload"
// +kubebuilder:validation:XValidation:rule="!has(self.defaults) || !has(self.defaults.transmissionSecurity) || !has(self.defaults.transmissionSecurity.mode) || self.defaults.transmissionSecurity.mode != 'Off'",message="defaults.transmissionSecurity.mode cannot be Off: turning an Addressable safeguard off takes a decision documented on each PHIWorkload"
type PHIPolicySpec struct {
	// defaults are the safeguard settings every PHIWorkload inherits for the
	// fields it leaves empty.
	// +optional
	Defaults SafeguardSettings `json:"defaults,omitempty"`

	// exemptNamespaces are namespaces phiguard never acts on. kube-system and
	// phiguard's own namespace are always exempt.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=63
	ExemptNamespaces []string `json:"exemptNamespaces,omitempty"`
}

// PHIPolicy is the organisation's defaults for the safeguards of every
// PHIWorkload. Only the PHIPolicy named "default" applies.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=phiguard
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'default'",message="only a PHIPolicy named \"default\" applies; name it default"
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PHIPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec holds the defaults.
	// +optional
	Spec PHIPolicySpec `json:"spec,omitempty"`
}

// PHIPolicyList is a list of PHIPolicies.
//
// +kubebuilder:object:root=true
type PHIPolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PHIPolicy `json:"items"`
}
