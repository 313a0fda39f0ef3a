//go:build e2e

// Package e2e is phiguard's end-to-end suite. It starts the full local
// cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
// kwok, built from Go modules; see internal/localcluster), runs the built
// manager binary against it as a separate process with the flags it has in
// production and its webhooks called by the apiserver over TLS, and drives
// everything through the Kubernetes API, as a user would.
//
//	make e2e
package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	velerov1 "github.com/vmware-tanzu/velero/pkg/apis/velero/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/localcluster"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

var (
	root    string
	cluster *localcluster.Cluster
	webhook *envtest.WebhookInstallOptions
	manager *localcluster.Manager
	probe   string // the manager's health probe address
	// metricsAddr is where the manager serves its metrics, over HTTPS with
	// authentication and authorisation, as installed.
	metricsAddr string
	// managerKubeconfig authenticates the manager as its ServiceAccount, with
	// only the permissions config/rbac grants it.
	managerKubeconfig string
	starts            int // manager starts, for the log file names
	k8s               client.Client
	ctx               context.Context
	cancel            context.CancelFunc
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "End-to-end suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	ctx, cancel = context.WithCancel(context.Background())
	var err error
	root, err = testenv.RepoRoot()
	Expect(err).NotTo(HaveOccurred())

	start := time.Now()
	cluster, err = localcluster.Up(ctx, localcluster.Options{Root: root, Name: "phiguard-e2e", Out: GinkgoWriter})
	Expect(err).NotTo(HaveOccurred())
	AddReportEntry("cluster start", time.Since(start).Round(100*time.Millisecond).String())
	webhook, err = localcluster.InstallWebhooks(cluster.Config, root)
	Expect(err).NotTo(HaveOccurred())
	scheme, err := phischeme.New()
	Expect(err).NotTo(HaveOccurred())
	k8s, err = client.New(cluster.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	By("Velero's namespace and a default, available BackupStorageLocation (Velero itself does not run here)")
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "velero"}})).To(Succeed())
	Expect(k8s.Create(ctx, &velerov1.BackupStorageLocation{
		ObjectMeta: metav1.ObjectMeta{Namespace: "velero", Name: "default"},
		Spec: velerov1.BackupStorageLocationSpec{Provider: "aws", Default: true,
			Config:      map[string]string{"kmsKeyId": "alias/phi-backups"},
			StorageType: velerov1.StorageType{ObjectStorage: &velerov1.ObjectStorageLocation{Bucket: "phi-backups"}}},
		Status: velerov1.BackupStorageLocationStatus{Phase: velerov1.BackupStorageLocationPhaseAvailable},
	})).To(Succeed())

	By("the organisation's policy: pods that predate their workload are restarted with the audit sidecar")
	Expect(k8s.Create(ctx, &phiguardv1alpha1.PHIPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: phiguardv1alpha1.DefaultPolicyName},
		Spec: phiguardv1alpha1.PHIPolicySpec{Defaults: phiguardv1alpha1.SafeguardSettings{
			AuditLogging: &phiguardv1alpha1.AuditLoggingSpec{RestartNonCompliant: ptrTo(true)},
		}},
	})).To(Succeed())

	By("the PolicyReport API (wgpolicyk8s.io), which phiguard writes its reports in")
	reportCRDs, err := testenv.PolicyReportCRDs()
	Expect(err).NotTo(HaveOccurred())
	_, err = envtest.InstallCRDs(cluster.Config, envtest.CRDInstallOptions{Paths: reportCRDs, ErrorIfPathMissing: true})
	Expect(err).NotTo(HaveOccurred())

	By("the Helm chart's objects, and a token of its ServiceAccount for the manager")
	managerKubeconfig = serviceAccountKubeconfig()

	startManager()
})

var _ = AfterSuite(func() {
	if manager != nil {
		Expect(manager.Stop(15 * time.Second)).To(Succeed())
	}
	if webhook != nil {
		Expect(webhook.Cleanup()).To(Succeed())
	}
	if cluster != nil {
		Expect(cluster.SaveLogs(filepath.Join(cluster.WorkDir, "logs"))).To(Succeed())
		Expect(cluster.Down(context.Background())).To(Succeed())
	}
	if cancel != nil {
		cancel()
	}
})

// startManager runs bin/manager against the cluster and waits until it is
// ready (its webhook server serves).
func startManager() {
	GinkgoHelper()
	spawnManager()
	waitManagerReady()
}

// spawnManager runs bin/manager against the cluster, without waiting for it.
func spawnManager() {
	GinkgoHelper()
	starts++
	if starts == 1 {
		// The evidence of an earlier run belongs to another cluster, signed
		// by another key; the manager's lives in this run share one trail.
		Expect(os.RemoveAll(filepath.Join(cluster.WorkDir, "evidence"))).To(Succeed())
	}
	probe, metricsAddr = freeAddress(), freeAddress()
	logPath := filepath.Join(cluster.WorkDir, fmt.Sprintf("manager-%d.log", starts))
	var err error
	manager, err = localcluster.StartManager(localcluster.ManagerOptions{
		Binary: filepath.Join(root, "bin", "manager"), Kubeconfig: managerKubeconfig,
		LogPath: logPath, Webhooks: webhook, ProbeAddress: probe,
		// As installed: two replicas would elect a leader, and so does this one.
		Args: []string{"--leader-elect", "--metrics-bind-address=" + metricsAddr},
	})
	Expect(err).NotTo(HaveOccurred())
	_, _ = fmt.Fprintf(GinkgoWriter, "manager started; its log: %s\n", logPath)
}

// waitManagerReady waits until the manager spawnManager ran is ready; it
// fails at once when the manager exits.
func waitManagerReady() {
	GinkgoHelper()
	Eventually(func() (int, error) {
		select {
		case <-manager.Exited():
			StopTrying("the manager exited").Wrap(manager.ExitError()).Now()
		default:
		}
		resp, err := http.Get("http://" + probe + "/readyz") //nolint:noctx // a local probe
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		return resp.StatusCode, nil
	}, time.Minute, 200*time.Millisecond).Should(Equal(http.StatusOK))
}

// freeAddress returns a loopback address with a port nothing listens on.
func freeAddress() string {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	return addr
}

func ptrTo[T any](v T) *T { return &v }

// newNamespace creates a namespace for one case.
func newNamespace(name string) string {
	GinkgoHelper()
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
	return name
}
