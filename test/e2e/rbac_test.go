//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The manager's ServiceAccount as config/default installs it.
const managerNamespace, managerServiceAccount = "phiguard-system", "phiguard-controller-manager"

// rbacKinds are the objects of config/default that give the manager its
// permissions (the CRDs are installed with the cluster; the manager runs as a
// process, not as the Deployment).
var rbacKinds = []string{"Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}

// serviceAccountKubeconfig applies config/default's RBAC, asks the TokenRequest
// API for a token of the manager's ServiceAccount, and writes a kubeconfig
// with it: the manager then has exactly the permissions it ships with.
func serviceAccountKubeconfig() string {
	GinkgoHelper()
	kustomize := filepath.Join(root, "bin", "kustomize")
	out, err := exec.Command(kustomize, "build", filepath.Join(root, "config", "default")).Output()
	Expect(err).NotTo(HaveOccurred(), "rendering config/default with %s (make e2e builds it)", kustomize)
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	applied := 0
	for {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			break
		} else {
			Expect(err).NotTo(HaveOccurred())
		}
		if !slices.Contains(rbacKinds, obj.GetKind()) {
			continue
		}
		Expect(k8s.Create(ctx, obj)).To(Succeed(), "%s %s", obj.GetKind(), obj.GetName())
		applied++
	}
	Expect(applied).To(BeNumerically(">=", len(rbacKinds)))

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
