package controller

import (
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// CacheOptions are the manager's cache options. Secrets are cached in
// phiguard's own namespace only (the webhook certificate, PHIPolicy
// backup.locationCredentials): its RBAC allows no more. Pods are cached
// without their managedFields, the largest part of a pod that kubelets and
// controllers keep writing: phiguard never applies a pod, so nothing reads
// them (objects it applies keep theirs, which its comparison of owned fields
// needs).
func CacheOptions(namespace string) cache.Options {
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Namespaces: map[string]cache.Config{namespace: {}}},
		&corev1.Pod{}:    {Transform: cache.TransformStripManagedFields()},
	}}
}
