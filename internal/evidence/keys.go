package evidence

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// The evidence signing key's Secret: its Ed25519 private key (the 64-byte
// form Go uses), base64 in data.
const (
	// DefaultKeySecret is the Secret, in phiguard's namespace, holding the key.
	DefaultKeySecret = "phiguard-evidence-signing-key" // #nosec G101 -- a Secret's name, not a credential
	secretKeyField   = "ed25519PrivateKey"             // #nosec G101 -- a key's name in the Secret
)

// The manager's permissions for its signing key and published ConfigMap,
// in its own namespace only.
// +kubebuilder:rbac:groups="",namespace=phiguard-system,resources=secrets,verbs=create
// +kubebuilder:rbac:groups="",namespace=phiguard-system,resources=configmaps,verbs=get;create;patch
// Its cluster identity, the kube-system namespace's UID:
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get

// managedBy labels what the manager creates for its evidence trail.
var managedBy = map[string]string{"app.kubernetes.io/managed-by": "phiguard"}

// EnsureSigner returns the signing key in the Secret namespace/name, creating
// a new key the first time. Replicas that start together agree: one creates
// the Secret, the others read it.
func EnsureSigner(ctx context.Context, c client.Client, namespace, name string) (Signer, error) {
	s := &corev1.Secret{}
	err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s)
	if apierrors.IsNotFound(err) {
		_, key, gerr := ed25519.GenerateKey(rand.Reader)
		if gerr != nil {
			return Signer{}, fmt.Errorf("generating the evidence signing key: %w", gerr)
		}
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, Labels: managedBy},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{secretKeyField: []byte(base64.StdEncoding.EncodeToString(key))},
		}
		err = c.Create(ctx, s)
		if apierrors.IsAlreadyExists(err) {
			err = c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s)
		}
	}
	if err != nil {
		return Signer{}, fmt.Errorf("reading the evidence signing key %s/%s: %w", namespace, name, err)
	}
	raw, err := base64.StdEncoding.DecodeString(string(s.Data[secretKeyField]))
	if err != nil || len(raw) != ed25519.PrivateKeySize {
		return Signer{}, fmt.Errorf("secret %s/%s: %s is not a base64 Ed25519 private key", namespace, name, secretKeyField)
	}
	return NewSigner(ed25519.PrivateKey(raw)), nil
}

// ClusterID returns the cluster's identity: the kube-system namespace's UID,
// which lasts as long as the cluster.
func ClusterID(ctx context.Context, c client.Client) (string, error) {
	ns := &corev1.Namespace{}
	if err := c.Get(ctx, types.NamespacedName{Name: metav1.NamespaceSystem}, ns); err != nil {
		return "", fmt.Errorf("reading the cluster's identity (namespace kube-system): %w", err)
	}
	return string(ns.UID), nil
}

// Publish writes the published ConfigMap. Keys already published are kept,
// so that segments signed before a key changed still verify.
func Publish(ctx context.Context, c client.Client, namespace string, p Published) error {
	cm := &corev1.ConfigMap{}
	err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ConfigMapName}, cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: ConfigMapName, Labels: managedBy}}
	case err != nil:
		return fmt.Errorf("reading %s/%s: %w", namespace, ConfigMapName, err)
	default:
		if old, perr := ParsePublished(cm.Data); perr == nil {
			for id, k := range old.Keys {
				if _, ok := p.Keys[id]; !ok {
					p.Keys[id] = k
				}
			}
		}
	}
	data, err := p.Data()
	if err != nil {
		return err
	}
	if cm.ResourceVersion == "" {
		cm.Data = data
		if err := c.Create(ctx, cm); err != nil {
			return fmt.Errorf("publishing %s/%s: %w", namespace, ConfigMapName, err)
		}
		return nil
	}
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data = data
	if err := c.Patch(ctx, cm, patch); err != nil {
		return fmt.Errorf("publishing %s/%s: %w", namespace, ConfigMapName, err)
	}
	return nil
}
