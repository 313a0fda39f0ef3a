//go:build e2e

package faults

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/metrics"
	"github.com/phiguard/phiguard/internal/policyreport"
	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	phiwebhook "github.com/phiguard/phiguard/internal/webhook"
)

// The manager's own defaults: --concurrency, --kube-api-qps, --kube-api-burst.
const (
	concurrency      = 4
	managerQPS       = 100
	managerBurst     = 200
	managerNamespace = "phiguard-system"
)

// exemptNamespaces are never acted on, as the manager is installed.
var exemptNamespaces = []string{"kube-system", managerNamespace}

// startManager runs, in this process, a manager as cmd/main.go sets it up
// (the PHIWorkload and label controllers, the policy report controller, the
// compliance metrics and the admission webhooks, served over TLS and called
// by the apiserver; no evidence trail and no leader election), talking to
// the apiserver through mgrCfg. It stops when the spec ends. It
// returns the registry of the manager's compliance metrics.
func startManager(mgrCfg *rest.Config) *prometheus.Registry {
	GinkgoHelper()
	scheme, err := phischeme.New()
	Expect(err).NotTo(HaveOccurred())
	mgrCfg = rest.CopyConfig(mgrCfg)
	mgrCfg.QPS, mgrCfg.Burst = managerQPS, managerBurst
	wh := env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(mgrCfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wh.LocalServingHost, Port: wh.LocalServingPort, CertDir: wh.LocalServingCertDir}),
		// Controller names are registered once per process; each spec of this
		// suite may run a manager of its own.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		Cache:      controller.CacheOptions(managerNamespace),
	})
	Expect(err).NotTo(HaveOccurred())

	registry := safeguard.New(safeguard.Options{})
	// Its own registry: the controller-runtime one is process-wide, and a
	// second manager's series would collide with the first's.
	complianceRegistry := prometheus.NewRegistry()
	compliance, err := metrics.NewCompliance(complianceRegistry)
	Expect(err).NotTo(HaveOccurred())
	Expect((&controller.PHIWorkloadReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("phiguard"), Clock: clock.RealClock{},
		Registry: registry, ExemptNamespaces: exemptNamespaces, Concurrency: concurrency, Metrics: compliance,
	}).SetupWithManager(mgr)).To(Succeed())
	for _, src := range controller.LabelSources {
		Expect((&controller.LabelReconciler{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("phiguard"), Source: src, ExemptNamespaces: exemptNamespaces,
			Concurrency: concurrency,
		}).SetupWithManager(mgr)).To(Succeed())
	}
	Expect((&policyreport.Reconciler{Client: mgr.GetClient(), Format: policyreport.WGPolicy}).SetupWithManager(mgr)).To(Succeed())
	Expect(phiwebhook.Setup(mgr, safeguard.AdmissionEnv{
		Reader: mgr.GetClient(), ExemptNamespaces: exemptNamespaces, Registry: registry, Clock: clock.RealClock{},
		Recorder: mgr.GetEventRecorder("phiguard"),
	})).To(Succeed())

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		defer GinkgoRecover()
		done <- mgr.Start(ctx)
	}()
	DeferCleanup(func() {
		cancel()
		Eventually(done, time.Minute).Should(Receive(Not(HaveOccurred())), "the manager stops cleanly")
	})
	Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	Eventually(func() error { return mgr.GetWebhookServer().StartedChecker()(nil) }, 10*time.Second).Should(Succeed())
	return complianceRegistry
}
