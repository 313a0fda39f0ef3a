package cli_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/phiguard/phiguard/internal/cli"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

// update rewrites the golden files under testdata instead of comparing.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	cfg        *rest.Config
	k8sClient  client.Client
	kubeconfig string // a kubeconfig file for cfg, passed as --kubeconfig
)

// TestMain starts one control plane with phiguard's and Velero's CRDs. No
// manager runs: tests write the status a manager would, and the commands
// only read.
func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	env, err := testenv.New()
	if err != nil {
		return fail(err)
	}
	velero, err := testenv.VeleroCRDs()
	if err != nil {
		return fail(err)
	}
	env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, velero...)
	if cfg, err = env.Start(); err != nil {
		return fail(err)
	}
	defer func() { _ = env.Stop() }()
	if k8sClient, err = phischeme.NewClient(cfg); err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "phiguard-cli")
	if err != nil {
		return fail(err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := writeKubeconfig(cfg, kubeconfig); err != nil {
		return fail(err)
	}
	return m.Run()
}

// writeKubeconfig writes a kubeconfig with one context, "envtest", for cfg.
func writeKubeconfig(cfg *rest.Config, path string) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest", Namespace: "default"}
	kc.CurrentContext = "envtest"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return nil
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// run runs kubectl phiguard with args against the test control plane, as a
// user would (through --kubeconfig), and returns what it printed on stdout.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := cli.NewCommand(genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
	cmd.SetArgs(append([]string{"--kubeconfig", kubeconfig}, args...))
	err := cmd.ExecuteContext(t.Context())
	if errOut.Len() > 0 {
		t.Logf("stderr of %v:\n%s", args, errOut.String())
	}
	return out.String(), err
}

// golden compares got with testdata/<name>.golden, or rewrites the file with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s (run with -update to create it): %v", path, err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
