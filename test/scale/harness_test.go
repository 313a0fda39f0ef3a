package scale

import (
	"context"
	"maps"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
	phiwebhook "github.com/phiguard/phiguard/internal/webhook"
)

// counter counts the write requests the manager sends to the apiserver, in
// all and by resource, and its reads (GET requests other than watches) by resource.
type counter struct {
	writes atomic.Int64

	mu         sync.Mutex
	byResource map[string]int64
	reads      map[string]int64
}

func (c *counter) wrap(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			if req.Method == http.MethodGet && !strings.Contains(req.URL.RawQuery, "watch") {
				c.mu.Lock()
				if c.reads == nil {
					c.reads = map[string]int64{}
				}
				c.reads[resourceOf(req.URL.Path)]++
				c.mu.Unlock()
			}
			if req.Method != http.MethodGet {
				c.writes.Add(1)
				c.mu.Lock()
				if c.byResource == nil {
					c.byResource = map[string]int64{}
				}
				c.byResource[req.Method+" "+resourceOf(req.URL.Path)]++
				c.mu.Unlock()
			}
			return rt.RoundTrip(req)
		})
	}
	return out
}

// reset zeroes the counts.
func (c *counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes.Store(0)
	c.byResource, c.reads = nil, nil
}

// resources returns the counts by "<METHOD> <resource>[/<subresource>]".
func (c *counter) resources() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.byResource)
}

// readsByResource returns the reads by resource path.
func (c *counter) readsByResource() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.reads)
}

// resourceOf reads the resource (and subresource) from an API path such as
// /apis/g/v/namespaces/ns/phiworkloads/name/status.
func resourceOf(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	// Skip the prefix: api/v1 or apis/<group>/<version>.
	skip := 2
	if len(parts) > 0 && parts[0] == "apis" {
		skip = 3
	}
	if len(parts) <= skip {
		return path
	}
	tail := parts[skip:]
	if len(tail) >= 3 && tail[0] == "namespaces" {
		tail = tail[2:] // namespaces/<ns>/<resource>/...
	}
	if len(tail) >= 3 {
		return tail[0] + "/" + tail[2]
	}
	return tail[0]
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// startControlPlaneAndManager starts the local control plane and, in this
// process, the manager with phiguard's controller. It returns a client for the
// test (not rate limited) and the counter of the manager's writes. Everything
// stops when the test ends.
func startControlPlaneAndManager(t *testing.T) (client.Client, *counter) {
	t.Helper()
	return start(t, false)
}

// concurrency is the manager's default --concurrency.
const concurrency = 4

// start is startControlPlaneAndManager, with the admission webhooks installed
// and served (over TLS, called by the apiserver) when webhooks is true.
func start(t *testing.T, webhooks bool) (client.Client, *counter) {
	t.Helper()
	k8s, count, _ := startWithConfig(t, webhooks)
	return k8s, count
}

// startWithConfig is start, also returning the control plane's rest config.
func startWithConfig(t *testing.T, webhooks bool) (client.Client, *counter, *rest.Config) {
	t.Helper()
	cp := startControlPlane(t, webhooks)
	m := cp.startManager(t)
	return cp.k8s, m.count, cp.cfg
}

// controlPlane is a started envtest control plane.
type controlPlane struct {
	env      *envtest.Environment
	cfg      *rest.Config
	k8s      client.Client // the test's client, not rate limited
	webhooks bool          // the admission webhooks are installed
}

// startControlPlane starts the control plane, with phiguard's and Velero's
// CRDs and, when webhooks is true, its admission webhooks installed (served
// by the manager, over TLS, called by the apiserver). It stops when the test ends.
func startControlPlane(t *testing.T, webhooks bool) *controlPlane {
	t.Helper()
	g := NewWithT(t)
	scheme, err := phischeme.New()
	g.Expect(err).NotTo(HaveOccurred())

	env, err := testenv.New()
	if webhooks {
		env, err = testenv.NewWithWebhooks()
	}
	g.Expect(err).NotTo(HaveOccurred())
	// Velero's CRDs are there before the manager starts, as in a cluster that
	// runs Velero already (the controller suite installs them later instead).
	velero, err := testenv.VeleroCRDs()
	g.Expect(err).NotTo(HaveOccurred())
	env.CRDInstallOptions.Paths = append(env.CRDInstallOptions.Paths, velero...)
	cfg, err := env.Start()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	fast := rest.CopyConfig(cfg)
	fast.QPS, fast.Burst = 500, 1000 // create as fast as the apiserver takes it
	k8s, err := client.New(fast, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	return &controlPlane{env: env, cfg: cfg, k8s: k8s, webhooks: webhooks}
}

// runningManager is an in-process manager started by startManager.
type runningManager struct {
	count *counter // its write requests
	stop  context.CancelFunc
	done  chan struct{} // closed once it has stopped
}

// Stop stops the manager and waits until it has.
func (m *runningManager) Stop() {
	m.stop()
	<-m.done
}

// startManager starts, in this process, a manager with phiguard's
// controllers (and webhooks when the control plane has them) configured as
// the installed manager is, and waits for its caches. It stops when the test
// ends, if not before.
func (cp *controlPlane) startManager(t *testing.T) *runningManager {
	t.Helper()
	g := NewWithT(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // runs before env.Stop: cleanups run last-in first-out
	count := &counter{}
	mgrCfg := count.wrap(cp.cfg)
	// The manager's own defaults (--kube-api-qps 100, --kube-api-burst 200),
	// so that the figures are those of an installed manager.
	mgrCfg.QPS, mgrCfg.Burst = 100, 200
	if qps := os.Getenv("PHIGUARD_SCALE_QPS"); qps != "" { // to measure another --kube-api-qps
		mgrCfg.QPS = float32(envInt(t, "PHIGUARD_SCALE_QPS", 100))
		mgrCfg.Burst = 2 * int(mgrCfg.QPS)
	}
	wh := cp.env.WebhookInstallOptions
	mgr, err := ctrl.NewManager(mgrCfg, ctrl.Options{
		Scheme:  cp.k8s.Scheme(),
		Metrics: metricsserver.Options{BindAddress: "0"},
		WebhookServer: webhook.NewServer(webhook.Options{
			Host: wh.LocalServingHost, Port: wh.LocalServingPort, CertDir: wh.LocalServingCertDir}),
		// Each test of this package runs its own manager in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		// The cache as the manager configures it.
		Cache: controller.CacheOptions("phiguard-system"),
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect((&controller.PHIWorkloadReconciler{
		Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("phiguard"), Clock: clock.RealClock{},
		Registry: safeguard.New(safeguard.Options{}), ExemptNamespaces: []string{"kube-system"}, Concurrency: concurrency,
	}).SetupWithManager(mgr)).To(Succeed())
	for _, src := range controller.LabelSources {
		g.Expect((&controller.LabelReconciler{
			Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("phiguard"), Source: src, ExemptNamespaces: []string{"kube-system"},
			Concurrency: concurrency,
		}).SetupWithManager(mgr)).To(Succeed())
	}
	if cp.webhooks {
		g.Expect(phiwebhook.Setup(mgr, safeguard.AdmissionEnv{Reader: mgr.GetClient(), ExemptNamespaces: []string{"kube-system"},
			Registry: safeguard.New(safeguard.Options{}), Clock: clock.RealClock{}})).To(Succeed())
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = mgr.Start(ctx)
	}()
	g.Expect(mgr.GetCache().WaitForCacheSync(ctx)).To(BeTrue())
	if cp.webhooks {
		g.Eventually(func() error { return mgr.GetWebhookServer().StartedChecker()(nil) }, 10*time.Second).Should(Succeed())
	}
	return &runningManager{count: count, stop: cancel, done: done}
}
