// Command manager runs phiguard's controllers: it keeps the HIPAA safeguards
// of every PHIWorkload and reports their compliance in its status.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"

	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	phiwebhook "github.com/phiguard/phiguard/internal/webhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		metricsAddr, probeAddr, namespace string
		webhookHost, webhookCertDir       string
		webhookPort, concurrency, burst   int
		qps                               float64
		leaderElect, secureMetrics        bool
		enableWebhooks                    bool
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443",
		"Address the metrics endpoint binds to; \"0\" disables it.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, authenticated and authorised through the API server.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.BoolVar(&leaderElect, "leader-elect", false,
		"Elect a leader so that only one replica reconciles at a time.")
	flag.StringVar(&namespace, "namespace", envOr("POD_NAMESPACE", "phiguard-system"),
		"Namespace the manager runs in; always exempt from safeguards.")
	flag.BoolVar(&enableWebhooks, "enable-webhooks", true, "Serve the admission webhooks.")
	flag.IntVar(&concurrency, "concurrency", 4, "PHIWorkloads reconciled at once.")
	flag.Float64Var(&qps, "kube-api-qps", 100,
		"Requests per second to the API server (a PHIPolicy change costs about two writes per affected workload).")
	flag.IntVar(&burst, "kube-api-burst", 200, "Requests to the API server allowed in a burst above kube-api-qps.")
	flag.StringVar(&webhookHost, "webhook-host", "", "Address the webhook server binds to (empty: all).")
	flag.IntVar(&webhookPort, "webhook-port", 9443, "Port of the webhook server.")
	flag.StringVar(&webhookCertDir, "webhook-cert-dir", "",
		"Directory with the webhook server's tls.crt and tls.key (empty: controller-runtime's default).")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	scheme, err := phischeme.New()
	if err != nil {
		return err
	}

	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		// HTTP/2 is off: it is exposed to the HTTP/2 rapid reset and stream
		// cancellation vulnerabilities, and metrics gain nothing from it.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(qps), burst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              "phiguard.compliance.phiguard.io",
		LeaderElectionNamespace:       namespace,
		LeaderElectionReleaseOnCancel: true, // the process exits right after the manager stops
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: webhookHost, Port: webhookPort, CertDir: webhookCertDir,
			TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
		}),
	})
	if err != nil {
		return fmt.Errorf("creating manager: %w", err)
	}

	if err := setup(mgr, []string{"kube-system", namespace}, concurrency, enableWebhooks); err != nil {
		return err
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	// Ready only once the webhook server is serving with its certificate.
	if err := mgr.AddReadyzCheck("readyz", readyz(mgr, enableWebhooks)); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}

	log.Info("starting manager", "namespace", namespace, "leaderElection", leaderElect)
	// SetupSignalHandler cancels on SIGTERM/SIGINT: the manager then drains its
	// controllers and releases the leader lease before returning.
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}

func readyz(mgr ctrl.Manager, webhooks bool) healthz.Checker {
	if !webhooks {
		return healthz.Ping
	}
	return mgr.GetWebhookServer().StartedChecker()
}

func envOr(key, fallback string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return fallback
}

// setup registers phiguard's controllers and, when enabled, its webhooks.
// exempt are the namespaces never acted on, whatever the PHIPolicy says.
func setup(mgr ctrl.Manager, exempt []string, concurrency int, enableWebhooks bool) error {
	backupMetrics, err := safeguard.NewBackupMetrics(crmetrics.Registry)
	if err != nil {
		return err
	}
	if err := (&controller.PHIWorkloadReconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("phiguard"),
		Clock:            clock.RealClock{},
		Safeguards:       safeguard.Registry(backupMetrics),
		ExemptNamespaces: exempt,
		Concurrency:      concurrency,
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the PHIWorkload controller: %w", err)
	}

	for _, src := range controller.LabelSources {
		if err := (&controller.LabelReconciler{
			Client:           mgr.GetClient(),
			Recorder:         mgr.GetEventRecorder("phiguard"),
			Source:           src,
			ExemptNamespaces: exempt,
		}).SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the %s label controller: %w", src.Kind, err)
		}
	}

	if enableWebhooks {
		if err := (&phiwebhook.Encryption{Reader: mgr.GetClient(), ExemptNamespaces: exempt}).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := (&phiwebhook.AuditInjector{Reader: mgr.GetClient(), ExemptNamespaces: exempt}).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := (&phiwebhook.WorkloadValidator{Reader: mgr.GetClient(), ExemptNamespaces: exempt}).SetupWithManager(mgr); err != nil {
			return err
		}
		if err := (&phiwebhook.UnlabelGuard{Reader: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return nil
}
