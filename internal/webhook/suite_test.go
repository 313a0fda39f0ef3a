package webhook_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
	phiwebhook "github.com/phiguard/phiguard/internal/webhook"
)

// The webhook suite runs the manager's webhook server over TLS and lets the
// real kube-apiserver call it, as it would in a cluster.

var (
	env      *envtest.Environment
	k8s      client.Client
	warnings *warningCollector
	scheme   *runtime.Scheme
	ctx      context.Context
	cancel   context.CancelFunc
)

func TestWebhooks(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Webhook suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	scheme, err = phischeme.New()
	Expect(err).NotTo(HaveOccurred())
	env, err = testenv.NewWithWebhooks()
	Expect(err).NotTo(HaveOccurred())
	cfg, err := env.Start()
	Expect(err).NotTo(HaveOccurred())

	warnings = &warningCollector{}
	withWarnings := rest.CopyConfig(cfg)
	withWarnings.WarningHandler = warnings
	k8s, err = client.New(withWarnings, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	opts := &env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: opts.LocalServingHost, Port: opts.LocalServingPort, CertDir: opts.LocalServingCertDir,
		}),
	})
	Expect(err).NotTo(HaveOccurred())
	exempt := []string{"kube-system", "phiguard-system"}
	Expect(phiwebhook.Setup(mgr, safeguard.AdmissionEnv{Reader: mgr.GetClient(), ExemptNamespaces: exempt,
		Registry: safeguard.New(safeguard.Options{}), Clock: clock.RealClock{}, Recorder: mgr.GetEventRecorder("phiguard")})).To(Succeed())

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()

	// Wait until the server answers over TLS.
	dialer := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}} // a readiness probe of a local test server
	Eventually(func() error {
		conn, err := dialer.DialContext(ctx, "tcp", fmt.Sprintf("%s:%d", opts.LocalServingHost, opts.LocalServingPort))
		if err != nil {
			return err
		}
		return conn.Close()
	}).Should(Succeed())
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// warningCollector keeps the warnings the apiserver returns (admission
// warnings among them).
type warningCollector struct {
	mu  sync.Mutex
	all []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.all = append(w.all, text)
}

// take returns the warnings so far and forgets them.
func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.all
	w.all = nil
	return out
}
