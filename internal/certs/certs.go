// Package certs gives the webhook server its certificate when no cert-manager
// issues one: the manager generates a CA and a serving certificate into a
// Secret of its own namespace, rotates them before they expire, and writes
// the CA into the caBundle of phiguard's webhook configurations
// (github.com/open-policy-agent/cert-controller's rotator). The kubelet
// mounts the Secret into the pod; the webhook server picks the files up once
// they appear and whenever they change.
package certs

import (
	"context"
	"crypto/tls"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/certwatcher"
)

// +kubebuilder:rbac:groups="",namespace=phiguard-system,resources=secrets,verbs=get;list;watch;update
// +kubebuilder:rbac:groups=admissionregistration.k8s.io,resources=validatingwebhookconfigurations;mutatingwebhookconfigurations,verbs=get;list;watch;update

// Options name what the rotator keeps.
type Options struct {
	// Namespace is the manager's namespace, where the Secret lives.
	Namespace string
	// Secret holds the CA and the serving certificate.
	Secret string
	// Service is the webhook Service; the certificate is for <Service>.<Namespace>.svc.
	Service string
	// CertDir is where the kubelet mounts the Secret.
	CertDir string
	// ValidatingWebhookConfiguration and MutatingWebhookConfiguration get the CA.
	ValidatingWebhookConfiguration, MutatingWebhookConfiguration string

	// CheckFrequency, ServerCertDuration and Lookahead tune rotation (zero:
	// cert-controller's defaults: check every 12 h, certificates for a year
	// (the CA for ten), renewed 90 days before they expire).
	CheckFrequency, ServerCertDuration, Lookahead time.Duration
}

// Rotate adds the rotator to the manager. ready is closed once the
// certificate is in the Secret and the webhook configurations trust its CA.
func Rotate(mgr ctrl.Manager, o Options) (ready <-chan struct{}, err error) {
	done := make(chan struct{})
	err = rotator.AddRotator(mgr, &rotator.CertRotator{
		SecretKey:      types.NamespacedName{Namespace: o.Namespace, Name: o.Secret},
		CertDir:        o.CertDir,
		CAName:         "phiguard-webhook-ca",
		CAOrganization: "phiguard",
		DNSName:        fmt.Sprintf("%s.%s.svc", o.Service, o.Namespace),
		ExtraDNSNames:  []string{fmt.Sprintf("%s.%s.svc.cluster.local", o.Service, o.Namespace)},
		IsReady:        done,
		Webhooks: []rotator.WebhookInfo{
			{Name: o.ValidatingWebhookConfiguration, Type: rotator.Validating},
			{Name: o.MutatingWebhookConfiguration, Type: rotator.Mutating},
		},
		FieldOwner: "phiguard",
		// Every replica serves webhooks, so every replica needs the files;
		// concurrent refreshes are settled by the Secret's resourceVersion.
		RequireLeaderElection:  false,
		EnableReadinessCheck:   true,
		RotationCheckFrequency: o.CheckFrequency,
		ServerCertDuration:     o.ServerCertDuration,
		LookaheadInterval:      o.Lookahead,
	})
	if err != nil {
		return nil, fmt.Errorf("adding the webhook certificate rotator: %w", err)
	}
	return done, nil
}

// LazyCertificate serves the webhook server's certificate from files that may
// not exist yet when the server starts (the kubelet mounts the Secret only
// after the rotator has filled it). Until they exist, TLS handshakes fail and
// the server's readiness check with them, so the pod is not Ready.
type LazyCertificate struct {
	ctx               context.Context
	certPath, keyPath string

	mu      sync.Mutex
	watcher *certwatcher.CertWatcher
}

// NewLazyCertificate serves tls.crt and tls.key from dir; ctx ends the
// watch of the files.
func NewLazyCertificate(ctx context.Context, dir string) *LazyCertificate {
	return &LazyCertificate{ctx: ctx, certPath: filepath.Join(dir, "tls.crt"), keyPath: filepath.Join(dir, "tls.key")}
}

// GetCertificate implements tls.Config.GetCertificate.
func (l *LazyCertificate) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watcher == nil {
		w, err := certwatcher.New(l.certPath, l.keyPath)
		if err != nil {
			return nil, fmt.Errorf("the webhook serving certificate is not there yet: %w", err)
		}
		go func() { _ = w.Start(l.ctx) }() // follows rotations
		l.watcher = w
	}
	cert, err := l.watcher.GetCertificate(hello)
	if err != nil {
		return nil, fmt.Errorf("reading the webhook serving certificate: %w", err)
	}
	return cert, nil
}
