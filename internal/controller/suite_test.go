package controller_test

import (
	"context"
	"os"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/controller"
	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

// manualNamespace holds the objects that tests reconcile by hand (with a fake
// clock and a client that counts writes). The manager's cache excludes it, so
// the running controller never touches them.
const manualNamespace = "manual"

var (
	env *envtest.Environment
	// metricsRegistry holds the running controller's phiguard metrics.
	metricsRegistry *prometheus.Registry
	gc              *testenv.GarbageCollector
	cfg             *rest.Config
	k8s             client.Client
	scheme          *runtime.Scheme
	ctx             context.Context
	cancel          context.CancelFunc
)

func TestController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	scheme, err = phischeme.New()
	Expect(err).NotTo(HaveOccurred())
	env, err = testenv.New()
	Expect(err).NotTo(HaveOccurred())
	cfg, err = env.Start()
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// A real garbage collector, so that deleting a PHIWorkload really removes
	// what it owns. Its log is kept out of the test output.
	gcLog, err := os.CreateTemp("", "phiguard-gc-*.log")
	Expect(err).NotTo(HaveOccurred())
	gc, err = testenv.StartGarbageCollector(env, gcLog)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(gcLog.Close()).To(Succeed())
		Expect(os.Remove(gcLog.Name())).To(Succeed())
	})

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&phiguardv1alpha1.PHIWorkload{}: {Field: fields.AndSelectors(
				fields.OneTermNotEqualSelector("metadata.namespace", manualNamespace),
				fields.OneTermNotEqualSelector("metadata.namespace", registryNamespace))},
		}},
	})
	Expect(err).NotTo(HaveOccurred())
	metricsRegistry = prometheus.NewRegistry()
	backupMetrics, err := safeguard.NewBackupMetrics(metricsRegistry)
	Expect(err).NotTo(HaveOccurred())
	Expect((&controller.PHIWorkloadReconciler{
		Client:           mgr.GetClient(),
		Recorder:         mgr.GetEventRecorder("phiguard"),
		Clock:            clock.RealClock{},
		Registry:         safeguard.New(safeguard.Options{BackupMetrics: backupMetrics}),
		ExemptNamespaces: []string{"kube-system", "phiguard-system"},
	}).SetupWithManager(mgr)).To(Succeed())

	for _, src := range controller.LabelSources {
		Expect((&controller.LabelReconciler{
			Client:           mgr.GetClient(),
			Recorder:         mgr.GetEventRecorder("phiguard"),
			Source:           src,
			ExemptNamespaces: []string{"kube-system", "phiguard-system"},
		}).SetupWithManager(mgr)).To(Succeed())
	}

	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancel != nil {
		cancel()
	}
	if gc != nil {
		Expect(gc.Stop()).To(Succeed())
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})
