//go:build e2e

package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/phiguard/phiguard/internal/manifests"
)

// The manager's ServiceAccount as the chart (and config/default) installs it.
const managerNamespace, managerServiceAccount = "phiguard-system", "phiguard-controller-manager"

// dryRunKinds are the chart's objects that are only validated by the
// apiserver (server-side dry run) here: its webhook configurations point at
// the in-cluster Service, and the manager runs as a process instead of the
// Deployment.
var dryRunKinds = []string{"Deployment", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"}

// serviceAccountKubeconfig installs the Helm chart's output (helm template,
// as `helm install` would apply it): its RBAC, Services, Secret and PDB for
// real, the rest as a server-side dry run. It then asks the TokenRequest API
// for a token of the chart's ServiceAccount and writes a kubeconfig with it:
// the manager then has exactly the permissions it ships with.
func serviceAccountKubeconfig() string {
	GinkgoHelper()
	Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managerNamespace}})).To(Succeed())
	helm := filepath.Join(root, "bin", "helm")
	out, err := exec.Command(helm, "template", "phiguard", filepath.Join(root, "charts", "phiguard"),
		"--namespace", managerNamespace, "--kube-version", "v1.37.2").Output()
	Expect(err).NotTo(HaveOccurred(), "rendering the chart with %s (make e2e builds it)", helm)
	objs, err := manifests.Decode(bytes.NewReader(out), "helm template")
	Expect(err).NotTo(HaveOccurred())
	applied := 0
	for _, obj := range objs {
		var opts []client.CreateOption
		if slices.Contains(dryRunKinds, obj.GetKind()) {
			opts = append(opts, client.DryRunAll)
		}
		Expect(k8s.Create(ctx, obj, opts...)).To(Succeed(), "%s %s from the chart", obj.GetKind(), obj.GetName())
		applied++
	}
	Expect(applied).To(BeNumerically(">=", 10))

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: managerNamespace, Name: managerServiceAccount}}
	token := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(2 * 3600))}}
	Expect(k8s.SubResource("token").Create(ctx, sa, token)).To(Succeed())
	Expect(token.Status.Token).NotTo(BeEmpty())

	ca := cluster.Config.CAData
	if len(ca) == 0 {
		ca, err = os.ReadFile(cluster.Config.CAFile)
		Expect(err).NotTo(HaveOccurred())
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = &clientcmdapi.Cluster{Server: cluster.Config.Host, CertificateAuthorityData: ca}
	cfg.AuthInfos[managerServiceAccount] = &clientcmdapi.AuthInfo{Token: token.Status.Token}
	cfg.Contexts["manager"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: managerServiceAccount, Namespace: managerNamespace}
	cfg.CurrentContext = "manager"
	path := filepath.Join(cluster.WorkDir, "manager.kubeconfig")
	Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	return path
}
