//go:build e2e

package e2e

import (
	"crypto/tls"
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/phiguard/phiguard/internal/localcluster"
	"github.com/phiguard/phiguard/internal/testenv"
)

// The manager as installed by default issues its own webhook certificate: a
// second manager process, as the chart's ServiceAccount, with
// --webhook-cert-source=rotate. The test stands in for the kubelet, which
// would mount the Secret into the pod (kwok runs no containers).
var _ = Describe("Webhook certificates issued by the manager", func() {
	It("fills the Secret, and injects the CA and is Ready only once the certificate is mounted and served", func() {
		By("webhook configurations named as the chart names them, that no request matches")
		v, m := testenv.UnusedWebhookConfigurations("phiguard-validating-webhook-configuration",
			"phiguard-mutating-webhook-configuration", managerNamespace, "phiguard-webhook-service")
		Expect(k8s.Create(ctx, v)).To(Succeed())
		Expect(k8s.Create(ctx, m)).To(Succeed())

		certDir := GinkgoT().TempDir()
		probeAddr := freeAddress()
		port := freePort()
		second, err := localcluster.StartManager(localcluster.ManagerOptions{
			Binary: filepath.Join(root, "bin", "manager"), Kubeconfig: managerKubeconfig,
			LogPath: filepath.Join(cluster.WorkDir, "manager-rotate.log"), Webhooks: webhook, ProbeAddress: probeAddr,
			PodName: "manager-rotate", EvidenceDir: GinkgoT().TempDir(),
			// Later flags win: the defaults of an installed manager.
			Args: []string{"--leader-elect", "--webhook-cert-source=rotate", "--webhook-cert-dir=" + certDir,
				"--webhook-port=" + strconv.Itoa(port)},
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { Expect(second.Stop(15 * time.Second)).To(Succeed()) })
		ready := func() int {
			resp, err := http.Get("http://" + probeAddr + "/readyz") //nolint:noctx // a local probe
			if err != nil {
				return 0
			}
			_ = resp.Body.Close()
			return resp.StatusCode
		}

		caBundles := func(g Gomega) ([]byte, []byte) {
			var v admissionregistrationv1.ValidatingWebhookConfiguration
			g.Expect(k8s.Get(ctx, types.NamespacedName{Name: "phiguard-validating-webhook-configuration"}, &v)).To(Succeed())
			var m admissionregistrationv1.MutatingWebhookConfiguration
			g.Expect(k8s.Get(ctx, types.NamespacedName{Name: "phiguard-mutating-webhook-configuration"}, &m)).To(Succeed())
			return v.Webhooks[0].ClientConfig.CABundle, m.Webhooks[0].ClientConfig.CABundle
		}

		By("the rotator fills the Secret")
		var secret corev1.Secret
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, types.NamespacedName{Namespace: managerNamespace, Name: "phiguard-webhook-server-cert"}, &secret)).To(Succeed())
			g.Expect(secret.Data).To(HaveKey("tls.crt"))
			g.Expect(secret.Data).To(HaveKey("ca.crt"))
		}, timeout, poll).Should(Succeed())

		By("while the certificate is not mounted: not Ready, and the CA not yet advertised to the apiserver")
		Consistently(func(g Gomega) {
			g.Expect(ready()).NotTo(Equal(http.StatusOK))
			v, m := caBundles(g)
			g.Expect(v).To(BeEmpty())
			g.Expect(m).To(BeEmpty())
		}, 3*time.Second, poll).Should(Succeed())

		By("the kubelet's part: the Secret appears in the mounted directory; the CA is injected into both configurations and the manager becomes Ready")
		for _, name := range []string{"tls.key", "tls.crt"} {
			Expect(os.WriteFile(filepath.Join(certDir, name), secret.Data[name], 0o600)).To(Succeed())
		}
		Eventually(func(g Gomega) {
			v, m := caBundles(g)
			g.Expect(v).To(Equal(secret.Data["ca.crt"]))
			g.Expect(m).To(Equal(secret.Data["ca.crt"]))
			g.Expect(ready()).To(Equal(http.StatusOK))
		}, timeout, poll).Should(Succeed())
		block, _ := pem.Decode(secret.Data["tls.crt"])
		Expect(block).NotTo(BeNil())
		conn, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			&tls.Config{InsecureSkipVerify: true}) // reading which certificate is served, not trusting it
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = conn.Close() }()
		Expect(conn.ConnectionState().PeerCertificates[0].Raw).To(Equal(block.Bytes), "the webhook server serves the rotated certificate")
	})
})

func freePort() int {
	GinkgoHelper()
	_, p, err := net.SplitHostPort(freeAddress())
	Expect(err).NotTo(HaveOccurred())
	n, err := strconv.Atoi(p)
	Expect(err).NotTo(HaveOccurred())
	return n
}
