// Command manager runs phiguard's controllers: it keeps the HIPAA safeguards
// of every PHIWorkload and reports their compliance in its status.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/phiguard/phiguard/internal/certs"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/metrics"
	"github.com/phiguard/phiguard/internal/objectlock"
	"github.com/phiguard/phiguard/internal/policyreport"
	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	phiwebhook "github.com/phiguard/phiguard/internal/webhook"
)

// version is stamped at link time (-X main.version=...; see the Dockerfile).
var version = "dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		os.Exit(1)
	}
}

// The manager's own permissions; the controllers' and webhooks' are next to
// their code. Leader election: a Lease in the manager's namespace, and the
// core Events it records there.
// +kubebuilder:rbac:groups=coordination.k8s.io,namespace=phiguard-system,resources=leases,verbs=get;create;update
// +kubebuilder:rbac:groups="",namespace=phiguard-system,resources=events,verbs=create;patch
// Authenticated metrics (filters.WithAuthenticationAndAuthorization):
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// flags are the manager's command-line settings.
type flags struct {
	metricsAddr, probeAddr, namespace string
	pprofAddr                         string
	webhookHost, webhookCertDir       string
	webhookCertSource, webhookSecret  string
	webhookService                    string
	validatingConfig, mutatingConfig  string
	reportAPI                         string
	webhookPort, concurrency, burst   int
	qps                               float64
	leaderElect, secureMetrics        bool
	leaseDuration, renewDeadline      time.Duration
	retryPeriod                       time.Duration
	enableWebhooks                    bool
	zap                               zap.Options
	evidence                          evidenceFlags
}

// Where the webhook server's certificate comes from.
const (
	// certSourceRotate: the manager issues and rotates its own (internal/certs).
	certSourceRotate = "rotate"
	// certSourceFiles: tls.crt and tls.key in --webhook-cert-dir come from
	// elsewhere (cert-manager, or a test's local CA).
	certSourceFiles = "files"
)

func parseFlags() (*flags, error) {
	f := &flags{}
	flag.StringVar(&f.metricsAddr, "metrics-bind-address", ":8443",
		"Address the metrics endpoint binds to; \"0\" disables it.")
	flag.BoolVar(&f.secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, authenticated and authorised through the API server.")
	flag.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "Address the health and readiness probes bind to.")
	flag.StringVar(&f.pprofAddr, "pprof-bind-address", "0",
		"Address Go's profiles (/debug/pprof/) are served on, over plain HTTP without authentication; \"0\" (the default) disables them. For diagnosis only: bind it to 127.0.0.1 and reach it with kubectl port-forward.")
	flag.BoolVar(&f.leaderElect, "leader-elect", false,
		"Elect a leader so that only one replica reconciles at a time.")
	// Shorter than client-go's usual 15 s / 10 s: a standby takes over within
	// about 16 s of a leader's death (its caches are warm), and a leader that
	// cannot renew for 8 s steps down.
	flag.DurationVar(&f.leaseDuration, "leader-elect-lease-duration", 12*time.Second,
		"How long a standby waits after the leader's last renewal before it takes the lead.")
	flag.DurationVar(&f.renewDeadline, "leader-elect-renew-deadline", 8*time.Second,
		"How long the leader keeps trying to renew before it steps down; less than --leader-elect-lease-duration.")
	flag.DurationVar(&f.retryPeriod, "leader-elect-retry-period", 2*time.Second,
		"How often the leader renews and a standby tries to take the lead.")
	flag.StringVar(&f.namespace, "namespace", envOr("POD_NAMESPACE", "phiguard-system"),
		"Namespace the manager runs in; always exempt from safeguards.")
	flag.BoolVar(&f.enableWebhooks, "enable-webhooks", true, "Serve the admission webhooks.")
	flag.IntVar(&f.concurrency, "concurrency", 4, "PHIWorkloads, and labelled objects of each kind, reconciled at once.")
	flag.Float64Var(&f.qps, "kube-api-qps", 100,
		"Requests per second to the API server (a PHIPolicy change costs about two writes per affected workload).")
	flag.IntVar(&f.burst, "kube-api-burst", 200, "Requests to the API server allowed in a burst above kube-api-qps.")
	flag.StringVar(&f.webhookHost, "webhook-host", "", "Address the webhook server binds to (empty: all).")
	flag.IntVar(&f.webhookPort, "webhook-port", 9443, "Port of the webhook server.")
	flag.StringVar(&f.webhookCertDir, "webhook-cert-dir", "/tmp/k8s-webhook-server/serving-certs",
		"Directory with the webhook server's tls.crt and tls.key.")
	flag.StringVar(&f.webhookCertSource, "webhook-cert-source", certSourceRotate,
		"Where the webhook certificate comes from: rotate (the manager issues and rotates its own, into --webhook-cert-secret, "+
			"and injects its CA into the webhook configurations) or files (--webhook-cert-dir is filled by cert-manager or another issuer).")
	flag.StringVar(&f.webhookSecret, "webhook-cert-secret", "phiguard-webhook-server-cert",
		"Secret, in --namespace, that holds the rotated certificate (mounted at --webhook-cert-dir).")
	flag.StringVar(&f.webhookService, "webhook-service", "phiguard-webhook-service", "Service the apiserver calls the webhooks through.")
	flag.StringVar(&f.validatingConfig, "validating-webhook-configuration", "phiguard-validating-webhook-configuration",
		"ValidatingWebhookConfiguration that gets the rotated CA.")
	flag.StringVar(&f.mutatingConfig, "mutating-webhook-configuration", "phiguard-mutating-webhook-configuration",
		"MutatingWebhookConfiguration that gets the rotated CA.")
	flag.StringVar(&f.reportAPI, "report-api", policyreport.WGPolicy.Name,
		"Policy reports to write: wgpolicyk8s (wgpolicyk8s.io/v1alpha2, what Policy Reporter reads), "+
			"openreports (openreports.io/v1alpha1) or none. Without its CRDs, none are written.")
	f.evidence.bind(flag.CommandLine)
	f.zap.BindFlags(flag.CommandLine)
	flag.Parse()
	if f.reportAPI != reportAPINone {
		if _, err := policyreport.FormatNamed(f.reportAPI); err != nil {
			return nil, fmt.Errorf("--report-api: %w (or %s)", err, reportAPINone)
		}
	}
	if f.webhookCertSource != certSourceRotate && f.webhookCertSource != certSourceFiles {
		return nil, fmt.Errorf("--webhook-cert-source=%q: want %s or %s", f.webhookCertSource, certSourceRotate, certSourceFiles)
	}
	return f, nil
}

func run() error {
	f, err := parseFlags()
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&f.zap)))
	log := ctrl.Log.WithName("setup")
	// Cancelled on SIGTERM/SIGINT: the manager then drains its controllers and
	// releases the leader lease before returning.
	ctx := ctrl.SetupSignalHandler()

	backupMetrics, err := safeguard.NewBackupMetrics(crmetrics.Registry)
	if err != nil {
		return err
	}
	compliance, err := metrics.NewCompliance(crmetrics.Registry)
	if err != nil {
		return err
	}
	mgr, err := newManager(ctx, f)
	if err != nil {
		return err
	}
	registry := safeguard.New(safeguard.Options{
		BackupMetrics: backupMetrics,
		// Restore drills read what they check uncached.
		APIReader: mgr.GetAPIReader(),
		// A bucket's immutability is judged at most every ten minutes.
		Locations: objectlock.NewChecker(clock.RealClock{}, 10*time.Minute),
		Namespace: f.namespace,
	})
	if f.enableWebhooks && f.webhookCertSource == certSourceRotate {
		if _, err := certs.Rotate(mgr, certs.Options{
			Namespace: f.namespace, Secret: f.webhookSecret, Service: f.webhookService, CertDir: f.webhookCertDir,
			ValidatingWebhookConfiguration: f.validatingConfig, MutatingWebhookConfiguration: f.mutatingConfig,
		}); err != nil {
			return err
		}
	}
	trail, err := setupEvidence(ctx, mgr, f, crmetrics.Registry)
	if err != nil {
		return err
	}
	if err := setup(mgr, registry, compliance, trail, []string{"kube-system", f.namespace}, f.concurrency, f.enableWebhooks); err != nil {
		return err
	}
	if err := setupAttestation(mgr, trail, f); err != nil {
		return err
	}
	if err := setupReports(mgr, f.reportAPI); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("adding health check: %w", err)
	}
	// Ready only once the webhook server serves with its certificate.
	if err := mgr.AddReadyzCheck("readyz", readyz(mgr, f.enableWebhooks)); err != nil {
		return fmt.Errorf("adding readiness check: %w", err)
	}

	log.Info("starting manager", "version", version, "namespace", f.namespace, "leaderElection", f.leaderElect, "webhookCertSource", f.webhookCertSource)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running manager: %w", err)
	}
	return nil
}

// gracefulShutdown is how long the manager gives its controllers and webhook
// server to stop: less than the pod's terminationGracePeriodSeconds (30).
const gracefulShutdown = 20 * time.Second

// newManager creates the manager: metrics over authenticated HTTPS, leader
// election in its namespace, and the webhook server with HTTP/2 off.
func newManager(ctx context.Context, f *flags) (ctrl.Manager, error) {
	scheme, err := phischeme.New()
	if err != nil {
		return nil, err
	}
	// The kinds every safeguard reads, whatever its options.
	if err := safeguard.New(safeguard.Options{}).AddToScheme(scheme); err != nil {
		return nil, err
	}
	// HTTP/2 is off: it is exposed to the HTTP/2 rapid reset and stream
	// cancellation vulnerabilities, and neither server gains from it.
	http1 := func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }
	metricsOpts := metricsserver.Options{BindAddress: f.metricsAddr, SecureServing: f.secureMetrics, TLSOpts: []func(*tls.Config){http1}}
	if f.secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	webhookTLS := []func(*tls.Config){http1}
	if f.webhookCertSource == certSourceRotate {
		// The files appear once the rotator filled the Secret and the kubelet
		// mounted it; until then the server is up but not Ready.
		lazy := certs.NewLazyCertificate(ctx, f.webhookCertDir)
		webhookTLS = append(webhookTLS, func(c *tls.Config) { c.GetCertificate = lazy.GetCertificate })
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = float32(f.qps), f.burst
	if err := waitForAPIServer(ctx, cfg); err != nil {
		return nil, err
	}
	shutdown := gracefulShutdown
	// Every admission webhook counts its decisions (phiguard_admission_decisions_total).
	webhookServer, err := metrics.CountAdmissions(webhook.NewServer(webhook.Options{
		Host: f.webhookHost, Port: f.webhookPort, CertDir: f.webhookCertDir, TLSOpts: webhookTLS,
	}), crmetrics.Registry)
	if err != nil {
		return nil, err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        f.probeAddr,
		PprofBindAddress:              f.pprofAddr,
		LeaderElection:                f.leaderElect,
		LeaderElectionID:              "phiguard.compliance.phiguard.io",
		LeaderElectionNamespace:       f.namespace,
		LeaderElectionReleaseOnCancel: true, // the process exits right after the manager stops
		LeaseDuration:                 &f.leaseDuration,
		RenewDeadline:                 &f.renewDeadline,
		RetryPeriod:                   &f.retryPeriod,
		// A standby starts its controllers' watches before it leads, so that
		// a new leader's first reconcile does not wait for its caches.
		Controller:              config.Controller{EnableWarmup: ptr.To(true)},
		GracefulShutdownTimeout: &shutdown,
		WebhookServer:           webhookServer,
		Cache:                   controller.CacheOptions(f.namespace),
	})
	if err != nil {
		return nil, fmt.Errorf("creating manager: %w", err)
	}
	return mgr, nil
}

// waitForAPIServer returns once the apiserver answers (its version), so that
// a manager started during an apiserver outage waits for it rather than
// exiting and being restarted with a growing back-off: it starts as soon as
// the apiserver is back. It gives up when ctx ends.
func waitForAPIServer(ctx context.Context, cfg *rest.Config) error {
	versions, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return fmt.Errorf("creating a discovery client: %w", err)
	}
	log := ctrl.Log.WithName("setup")
	err = wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(context.Context) (bool, error) {
		if _, err := versions.ServerVersion(); err != nil {
			log.Info("waiting for the apiserver", "error", err.Error())
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the apiserver: %w", err)
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

// reportAPINone is the --report-api value that writes no policy reports.
const reportAPINone = "none"

// setupReports registers the policy report controller for the --report-api
// format (validated by parseFlags), unless it is none.
func setupReports(mgr ctrl.Manager, reportAPI string) error {
	if reportAPI == reportAPINone {
		return nil
	}
	format, err := policyreport.FormatNamed(reportAPI)
	if err != nil {
		return fmt.Errorf("--report-api: %w", err)
	}
	if err := (&policyreport.Reconciler{Client: mgr.GetClient(), Format: format}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the policy report controller: %w", err)
	}
	return nil
}

// setup registers phiguard's controllers and, when enabled, its webhooks.
// exempt are the namespaces never acted on, whatever the PHIPolicy says;
// compliance exports each workload's status as metrics.
func setup(mgr ctrl.Manager, registry safeguard.Registry, compliance *metrics.Compliance, t *trail, exempt []string, concurrency int, enableWebhooks bool) error {
	if err := (&controller.PHIWorkloadReconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("phiguard"),
		Clock:            clock.RealClock{},
		Registry:         registry,
		ExemptNamespaces: exempt,
		Concurrency:      concurrency,
		Metrics:          compliance,
		Evidence:         t.controllerRecorder(),
	}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the PHIWorkload controller: %w", err)
	}

	for _, src := range controller.LabelSources {
		if err := (&controller.LabelReconciler{
			Client:           mgr.GetClient(),
			Recorder:         mgr.GetEventRecorder("phiguard"),
			Source:           src,
			ExemptNamespaces: exempt,
			Concurrency:      concurrency,
			Evidence:         t.controllerRecorder(),
		}).SetupWithManager(mgr); err != nil {
			return fmt.Errorf("setting up the %s label controller: %w", src.Kind, err)
		}
	}

	// phiguard.io/holds-ephi on the namespaces holding PHIWorkloads: what the
	// fail-closed webhook configuration (webhook.failClosedForEPHI) selects.
	if err := (&controller.NamespaceLabelReconciler{Client: mgr.GetClient(), ExemptNamespaces: exempt}).SetupWithManager(mgr); err != nil {
		return fmt.Errorf("setting up the namespace label controller: %w", err)
	}

	if enableWebhooks {
		return phiwebhook.Setup(mgr, safeguard.AdmissionEnv{
			Reader: mgr.GetClient(), ExemptNamespaces: exempt, Registry: registry, Clock: clock.RealClock{},
			Recorder: mgr.GetEventRecorder("phiguard"), Evidence: t.admissionRecorder(),
		})
	}
	return nil
}
