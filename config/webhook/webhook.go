// Package webhook holds the admission webhook configurations `make manifests`
// generates from the +kubebuilder:webhook markers (manifests.yaml, which the
// kustomization next to it installs), embedded for tools that route objects
// to phiguard's handlers in-process the way the apiserver routes them.
package webhook

import _ "embed" // for Manifests

// Manifests is manifests.yaml: the MutatingWebhookConfiguration and the
// ValidatingWebhookConfiguration, as a YAML stream.
//
//go:embed manifests.yaml
var Manifests []byte
