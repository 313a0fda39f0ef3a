package certs_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/phiguard/phiguard/internal/certs"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

const (
	namespace  = "phiguard-system"
	secretName = "phiguard-webhook-server-cert"
	validating = "phiguard-validating-webhook-configuration"
	mutating   = "phiguard-mutating-webhook-configuration"
)

// TestRotation runs the rotator against a real apiserver, with the test in
// the kubelet's place (copying the Secret into the mounted directory): the
// Secret gets a CA and a serving certificate for the webhook Service, both
// webhook configurations trust the CA, the server's certificate is served
// once the files appear, and a rotated certificate is picked up.
func TestRotation(t *testing.T) {
	g := NewWithT(t)
	env, err := testenv.New()
	g.Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	scheme, err := phischeme.New()
	g.Expect(err).NotTo(HaveOccurred())
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)

	g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}})).To(Succeed())
	// As config/webhook ships it: empty, filled by the rotator.
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: secretName}})).To(Succeed())
	createWebhookConfigurations(g, ctx, k8s)

	certDir := t.TempDir()
	lazy := certs.NewLazyCertificate(ctx, certDir)
	_, err = lazy.GetCertificate(nil)
	g.Expect(err).To(MatchError(ContainSubstring("the webhook serving certificate is not there yet")))

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"}})
	g.Expect(err).NotTo(HaveOccurred())
	ready, err := certs.Rotate(mgr, certs.Options{
		Namespace: namespace, Secret: secretName, Service: "phiguard-webhook-service", CertDir: certDir,
		ValidatingWebhookConfiguration: validating, MutatingWebhookConfiguration: mutating,
		// Renew at every check: a serving certificate valid for an hour is
		// always within two hours of expiring.
		CheckFrequency: time.Second, ServerCertDuration: time.Hour, Lookahead: 2 * time.Hour,
	})
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = mgr.Start(ctx) }()
	go kubelet(ctx, k8s, certDir)

	g.Eventually(ready, time.Minute).Should(BeClosed())
	var secret corev1.Secret
	g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: namespace, Name: secretName}, &secret)).To(Succeed())
	ca := secret.Data["ca.crt"]
	g.Expect(ca).NotTo(BeEmpty())
	verify(g, ca, secret.Data["tls.crt"])

	var v admissionregistrationv1.ValidatingWebhookConfiguration
	g.Expect(k8s.Get(ctx, types.NamespacedName{Name: validating}, &v)).To(Succeed())
	g.Expect(v.Webhooks[0].ClientConfig.CABundle).To(Equal(ca))
	var m admissionregistrationv1.MutatingWebhookConfiguration
	g.Expect(k8s.Get(ctx, types.NamespacedName{Name: mutating}, &m)).To(Succeed())
	g.Expect(m.Webhooks[0].ClientConfig.CABundle).To(Equal(ca))

	served, err := lazy.GetCertificate(nil)
	g.Expect(err).NotTo(HaveOccurred())
	first := served.Certificate[0]

	// The rotator renews the serving certificate; the CA stays, and the
	// webhook server serves the new certificate without a restart.
	g.Eventually(func(g Gomega) {
		served, err := lazy.GetCertificate(nil)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(served.Certificate[0]).NotTo(Equal(first))
		var now corev1.Secret
		g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: namespace, Name: secretName}, &now)).To(Succeed())
		g.Expect(now.Data["ca.crt"]).To(Equal(ca))
		verify(g, ca, now.Data["tls.crt"])
	}, time.Minute, 200*time.Millisecond).Should(Succeed())
}

// verify checks that the serving certificate is the webhook Service's and
// chains to the CA.
func verify(g Gomega, caPEM, certPEM []byte) {
	pool := x509.NewCertPool()
	g.ExpectWithOffset(1, pool.AppendCertsFromPEM(caPEM)).To(BeTrue())
	block, _ := pem.Decode(certPEM)
	g.ExpectWithOffset(1, block).NotTo(BeNil())
	cert, err := x509.ParseCertificate(block.Bytes)
	g.ExpectWithOffset(1, err).NotTo(HaveOccurred())
	_, err = cert.Verify(x509.VerifyOptions{Roots: pool, DNSName: "phiguard-webhook-service.phiguard-system.svc",
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	g.ExpectWithOffset(1, err).NotTo(HaveOccurred())
}

// kubelet copies the Secret's certificate into dir whenever it changes, as
// the kubelet does for a mounted Secret (atomically, by rename).
func kubelet(ctx context.Context, k8s client.Client, dir string) {
	var last []byte
	for ctx.Err() == nil {
		var s corev1.Secret
		if err := k8s.Get(ctx, types.NamespacedName{Namespace: namespace, Name: secretName}, &s); err == nil &&
			len(s.Data["tls.crt"]) > 0 && !bytes.Equal(s.Data["tls.crt"], last) {
			for _, name := range []string{"tls.key", "tls.crt"} {
				tmp := filepath.Join(dir, "."+name)
				if os.WriteFile(tmp, s.Data[name], 0o600) != nil || os.Rename(tmp, filepath.Join(dir, name)) != nil {
					return
				}
			}
			last = s.Data["tls.crt"]
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func createWebhookConfigurations(g Gomega, ctx context.Context, k8s client.Client) {
	v, m := testenv.UnusedWebhookConfigurations(validating, mutating, namespace, "phiguard-webhook-service")
	g.Expect(k8s.Create(ctx, v)).To(Succeed())
	g.Expect(k8s.Create(ctx, m)).To(Succeed())
}
