// Package testenv starts phiguard's local control plane: the etcd and
// kube-apiserver that hack/build-controlplane.sh builds from Go modules into
// bin/k8s, with phiguard's CRDs installed. Tests and the demo share it.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RepoRoot returns the root of the phiguard module, found by walking up from
// the working directory to the go.mod that declares it.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the working directory: %w", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod")) //nolint:gosec // reads go.mod files above the working directory, by design
		if err == nil && hasModuleLine(data) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the phiguard module (no go.mod declaring github.com/phiguard/phiguard)")
		}
		dir = parent
	}
}

func hasModuleLine(gomod []byte) bool {
	const want = "module github.com/phiguard/phiguard\n"
	return len(gomod) >= len(want) && string(gomod[:len(want)]) == want
}

// BinaryDir is where the control-plane binaries are: $KUBEBUILDER_ASSETS when
// set, otherwise bin/k8s under the repository root.
func BinaryDir(root string) string {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir
	}
	return filepath.Join(root, "bin", "k8s")
}

// New returns an environment that starts the local etcd and kube-apiserver and
// installs phiguard's CRDs (plus any extra CRD directories, relative to the
// repository root). It fails with instructions when the binaries are missing;
// it never downloads anything.
func New(extraCRDDirs ...string) (*envtest.Environment, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	bin := BinaryDir(root)
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			return nil, fmt.Errorf("control plane binary %s missing in %s: run `make controlplane` (builds it from Go modules): %w",
				name, bin, err)
		}
	}
	crds := []string{filepath.Join(root, "config", "crd", "bases")}
	for _, d := range extraCRDDirs {
		crds = append(crds, filepath.Join(root, d))
	}
	return &envtest.Environment{
		BinaryAssetsDirectory: bin,
		CRDDirectoryPaths:     crds,
		ErrorIfCRDPathMissing: true,
	}, nil
}

// NewWithWebhooks is New plus phiguard's webhook configurations (as `make
// manifests` generates them), which envtest points at a local TLS server: the
// apiserver then calls the webhooks a manager serves on
// env.WebhookInstallOptions.LocalServingHost/Port with the certificates in
// LocalServingCertDir.
func NewWithWebhooks() (*envtest.Environment, error) {
	env, err := New()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	env.WebhookInstallOptions.Paths = []string{filepath.Join(root, "config", "webhook", "manifests.yaml")}
	return env, nil
}

// VeleroCRDs returns the paths of Velero's own CRD manifests (every
// velero.io kind: the Velero server on the local cluster needs them all, and
// phiguard reads Schedules, Backups, BackupStorageLocations and Restores),
// from the Velero module in the module cache (the version go.mod requires),
// for envtest to install.
func VeleroCRDs() ([]string, error) {
	dir, err := moduleDir("github.com/vmware-tanzu/velero")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, version := range []string{"v1", "v2alpha1"} {
		found, err := filepath.Glob(filepath.Join(dir, "config", "crd", version, "bases", "velero.io_*.yaml"))
		if err != nil {
			return nil, fmt.Errorf("listing Velero's CRD manifests: %w", err)
		}
		paths = append(paths, found...)
	}
	for _, kind := range []string{"schedules", "backups", "backupstoragelocations", "restores"} {
		if !slices.Contains(paths, filepath.Join(dir, "config", "crd", "v1", "bases", "velero.io_"+kind+".yaml")) {
			return nil, fmt.Errorf("the Velero module at %s has no CRD manifest for %s", dir, kind)
		}
	}
	return paths, nil
}

// moduleDir is the directory of a module go.mod requires, in the module cache.
func moduleDir(module string) (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module).Output() //nolint:gosec // G204: go list of a module path fixed by its callers
	if err != nil {
		return "", fmt.Errorf("locating the module %s (go list -m): %w", module, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// existing returns paths when every one exists.
func existing(paths ...string) ([]string, error) {
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("a CRD manifest of a module is missing: %w", err)
		}
	}
	return paths, nil
}

// GatewayAPICRDs returns the paths of Gateway API's standard-channel CRD
// manifests for the kinds phiguard reads (Gateway, HTTPRoute, GRPCRoute), from
// the gateway-api module go.mod requires, for envtest to install.
func GatewayAPICRDs() ([]string, error) {
	dir, err := moduleDir("sigs.k8s.io/gateway-api")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, kind := range []string{"gateways", "httproutes", "grpcroutes"} {
		paths = append(paths, filepath.Join(dir, "config", "crd", "standard", "gateway.networking.k8s.io_"+kind+".yaml"))
	}
	return existing(paths...)
}

// IstioCRDs returns the path of Istio's CRD manifest (every Istio kind, one
// file), from the istio.io/api module go.mod requires, for envtest to install.
func IstioCRDs() ([]string, error) {
	dir, err := moduleDir("istio.io/api")
	if err != nil {
		return nil, err
	}
	return existing(filepath.Join(dir, "kubernetes", "customresourcedefinitions.gen.yaml"))
}

// PolicyReportCRDs returns the paths of the wgpolicyk8s.io PolicyReport and
// ClusterPolicyReport CRD manifests, from the Kyverno module go.mod requires
// (it ships them with its types), for envtest to install.
func PolicyReportCRDs() ([]string, error) {
	dir, err := moduleDir("github.com/kyverno/kyverno")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, kind := range []string{"policyreports", "clusterpolicyreports"} {
		paths = append(paths, filepath.Join(dir, "config", "crds", "policyreport", "wgpolicyk8s.io_"+kind+".yaml"))
	}
	return existing(paths...)
}

// OpenReportsCRDs returns the paths of the openreports.io Report and
// ClusterReport CRD manifests, from the reports-api module go.mod requires,
// for envtest to install.
func OpenReportsCRDs() ([]string, error) {
	dir, err := moduleDir("github.com/openreports/reports-api")
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, kind := range []string{"reports", "clusterreports"} {
		paths = append(paths, filepath.Join(dir, "config", "crd", "openreports.io_"+kind+".yaml"))
	}
	return existing(paths...)
}
