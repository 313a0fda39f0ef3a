//go:build e2e

// Package faults is phiguard's fault suite: it runs the manager in this
// process against a real kube-apiserver and etcd (envtest, with the admission
// webhooks called by the apiserver over TLS, Velero's and the PolicyReport
// CRDs installed and a garbage collector running) while the manager's own
// requests fail on purpose, and checks that the cluster still ends where it
// would have without the faults.
//
//	go test -tags e2e ./test/faults/ -count=1 -v -timeout 20m
//
// `make e2e` runs it with the end-to-end suite.
package faults

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

var (
	env *envtest.Environment
	// cfg is the control plane's admin config, for the managers under test
	// to wrap with their faults.
	cfg *rest.Config
	// k8s is the test's own client: never faulted, never rate limited.
	k8s client.Client
	gc  *testenv.GarbageCollector
	// logDir holds the manager's and the garbage collector's logs; it is
	// removed when the suite passes.
	logDir string
)

func TestFaults(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Faults suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	var err error
	logDir, err = os.MkdirTemp("", "phiguard-faults-")
	Expect(err).NotTo(HaveOccurred())
	// The manager logs every failed reconcile with its stack: far too much to
	// read inline, so it goes to a file, named here and kept on failure.
	managerLog, err := os.Create(filepath.Join(logDir, "manager.log"))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(managerLog.Close)
	logf.SetLogger(zap.New(zap.WriteTo(managerLog)))
	_, _ = fmt.Fprintf(GinkgoWriter, "logs: %s\n", logDir)

	env, err = testenv.NewWithWebhooks()
	Expect(err).NotTo(HaveOccurred())
	velero, err := testenv.VeleroCRDs()
	Expect(err).NotTo(HaveOccurred())
	reports, err := testenv.PolicyReportCRDs()
	Expect(err).NotTo(HaveOccurred())
	// The optional APIs are served before the manager starts, as in a
	// cluster that runs Velero and Policy Reporter already.
	env.CRDInstallOptions.Paths = append(env.CRDInstallOptions.Paths, velero...)
	env.CRDInstallOptions.Paths = append(env.CRDInstallOptions.Paths, reports...)
	cfg, err = env.Start()
	Expect(err).NotTo(HaveOccurred())

	// envtest has no controller-manager: without a garbage collector, a
	// deleted workload's NetworkPolicy would stay as an orphan whatever the
	// manager did.
	gcLog, err := os.Create(filepath.Join(logDir, "garbage-collector.log"))
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(gcLog.Close)
	gc, err = testenv.StartGarbageCollector(env, gcLog)
	Expect(err).NotTo(HaveOccurred())

	scheme, err := phischeme.New()
	Expect(err).NotTo(HaveOccurred())
	fast := rest.CopyConfig(cfg)
	fast.QPS, fast.Burst = 500, 1000 // create as fast as the apiserver takes it
	k8s, err = client.New(fast, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("Velero's namespace and a default, available BackupStorageLocation (Velero itself does not run here)")
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "velero"}})).To(Succeed())
	Expect(k8s.Create(ctx, &velerov1.BackupStorageLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: "default"},
		Spec: velerov1.BackupStorageLocationSpec{Provider: "aws", Default: true,
			Config:      map[string]string{"kmsKeyId": "alias/phi-backups"},
			StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: "phi-backups"}}},
		// Velero's CRDs have no status subresource: the status is stored as created.
		Status: velerov1.BackupStorageLocationStatus{Phase: velerov1.BackupStorageLocationPhaseAvailable},
	})).To(Succeed())
})

var _ = AfterSuite(func() {
	if gc != nil {
		Expect(gc.Stop()).To(Succeed())
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

var _ = ReportAfterSuite("logs", func(r Report) {
	switch {
	case logDir == "":
	case r.SuiteSucceeded:
		_ = os.RemoveAll(logDir)
	default:
		_, _ = fmt.Fprintf(os.Stdout, "the manager's and the garbage collector's logs are kept in %s\n", logDir)
	}
})
