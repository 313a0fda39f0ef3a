// Package localcluster runs phiguard's full local cluster: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler built from Go
// modules (hack/build-controlplane.sh), put together by kwokctl in its binary
// runtime with two kwok-simulated Nodes, so that Deployments get ReplicaSets
// and Pods, pods are scheduled and run, and garbage collection cascades. The
// demo and the end-to-end suite use it; nothing touches ~/.kube/config.
package localcluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/phiguard/phiguard/internal/testenv"
)

// KubeVersion is the Kubernetes version the control plane is built at.
const KubeVersion = "v1.37.2"

// Nodes is how many simulated Nodes the cluster has: two, so that a
// workload's replicas can be spread over more than one node, as the
// Available safeguard asks.
const Nodes = 2

// Cluster is a running local cluster.
type Cluster struct {
	// Name is the kwokctl cluster name.
	Name string
	// WorkDir is kwokctl's working directory (KWOK_WORKDIR): its config,
	// certificates, logs, pids and etcd data.
	WorkDir string
	// Kubeconfig is the cluster's kubeconfig, under bin/.
	Kubeconfig string
	// Config is a rest config for the cluster, as its administrator.
	Config *rest.Config

	kwokctl string
	out     io.Writer
}

// Options say where the binaries are and how to name the cluster.
type Options struct {
	// Root is the repository root.
	Root string
	// Name is the cluster's name; its files live in bin/cluster/<name>.
	Name string
	// Out receives kwokctl's output.
	Out io.Writer
}

// binaries are the built binaries a cluster needs, relative to bin/.
var binaries = map[string]string{
	"etcdBinary":                  "k8s/etcd",
	"kubeApiserverBinary":         "k8s/kube-apiserver",
	"kubeControllerManagerBinary": "k8s/kube-controller-manager",
	"kubeSchedulerBinary":         "k8s/kube-scheduler",
	"kwokControllerBinary":        "kwok/kwok",
}

// Up creates and starts a fresh cluster (deleting a stale one of the same
// name), adds the simulated Nodes, and installs phiguard's and Velero's CRDs.
func Up(ctx context.Context, o Options) (*Cluster, error) {
	bin := filepath.Join(o.Root, "bin")
	config := "kind: KwokctlConfiguration\napiVersion: config.kwok.x-k8s.io/v1alpha1\noptions:\n" +
		"  runtime: binary\n  kubeVersion: " + KubeVersion + "\n  bindAddress: 127.0.0.1\n"
	for key, rel := range binaries {
		path := filepath.Join(bin, rel)
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("%s is missing: run `make cluster-tools` (builds the control plane and kwok from Go modules): %w", path, err)
		}
		config += fmt.Sprintf("  %s: %s\n", key, path)
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	c := &Cluster{
		Name:       o.Name,
		WorkDir:    filepath.Join(bin, "cluster", o.Name),
		Kubeconfig: filepath.Join(bin, "cluster", o.Name, "kubeconfig"),
		kwokctl:    filepath.Join(bin, "kwok", "kwokctl"),
		out:        out,
	}
	if err := os.MkdirAll(c.WorkDir, 0o750); err != nil {
		return nil, fmt.Errorf("creating %s: %w", c.WorkDir, err)
	}
	configPath := filepath.Join(c.WorkDir, "kwokctl.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return nil, fmt.Errorf("writing %s: %w", configPath, err)
	}
	// A cluster left behind by an interrupted run is replaced.
	if _, err := os.Stat(filepath.Join(c.WorkDir, "clusters", c.Name)); err == nil {
		if err := c.Down(ctx); err != nil {
			return nil, err
		}
	}
	if err := c.run(ctx, "create", "cluster", "--name", c.Name, "--config", configPath,
		"--kubeconfig", c.Kubeconfig, "--wait", "2m"); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", c.Kubeconfig, err)
	}
	cfg.QPS, cfg.Burst = 100, 200
	c.Config = cfg
	if err := c.run(ctx, "scale", "node", "--name", c.Name, "--replicas", strconv.Itoa(Nodes)); err != nil {
		return nil, err
	}
	if err := c.installCRDs(o.Root); err != nil {
		return nil, err
	}
	return c, c.waitNodeReady(ctx)
}

// Down stops the cluster and deletes its files (etcd data included).
func (c *Cluster) Down(ctx context.Context) error {
	if err := c.run(ctx, "delete", "cluster", "--name", c.Name, "--kubeconfig", c.Kubeconfig); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(c.WorkDir, "clusters", c.Name)); err != nil {
		return fmt.Errorf("removing the cluster's files: %w", err)
	}
	return nil
}

// Open returns the cluster of that name that Up started earlier (by another
// process, such as `make cluster-up`), for Down.
func Open(o Options) *Cluster {
	bin := filepath.Join(o.Root, "bin")
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	return &Cluster{Name: o.Name, WorkDir: filepath.Join(bin, "cluster", o.Name),
		Kubeconfig: filepath.Join(bin, "cluster", o.Name, "kubeconfig"), kwokctl: filepath.Join(bin, "kwok", "kwokctl"), out: out}
}

// run runs kwokctl in the cluster's working directory.
func (c *Cluster) run(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, c.kwokctl, args...) //nolint:gosec // G204: kwokctl, built by hack/build-kwok.sh
	cmd.Env = append(os.Environ(), "KWOK_WORKDIR="+c.WorkDir)
	cmd.Stdout, cmd.Stderr = c.out, c.out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kwokctl %v: %w (its logs: %s)", args, err, filepath.Join(c.WorkDir, "clusters", c.Name, "logs"))
	}
	return nil
}

// installCRDs installs phiguard's CRDs and Velero's (from the Velero module).
func (c *Cluster) installCRDs(root string) error {
	velero, err := testenv.VeleroCRDs()
	if err != nil {
		return err
	}
	paths := append([]string{filepath.Join(root, "config", "crd", "bases")}, velero...)
	if _, err := envtest.InstallCRDs(c.Config, envtest.CRDInstallOptions{Paths: paths, ErrorIfPathMissing: true}); err != nil {
		return fmt.Errorf("installing CRDs: %w", err)
	}
	return nil
}

// waitNodeReady waits for every simulated Node to report Ready.
func (c *Cluster) waitNodeReady(ctx context.Context) error {
	k8s, err := client.New(c.Config, client.Options{})
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var nodes corev1.NodeList
		if err := k8s.List(ctx, &nodes); err == nil && readyNodes(nodes.Items) >= Nodes {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fewer than %d Nodes became Ready within a minute; see the kwok-controller log under %s",
				Nodes, filepath.Join(c.WorkDir, "clusters", c.Name, "logs"))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for Ready Nodes: %w", ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// readyNodes counts the Nodes whose Ready condition is True.
func readyNodes(nodes []corev1.Node) int {
	n := 0
	for _, node := range nodes {
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				n++
			}
		}
	}
	return n
}

// InstallWebhooks installs phiguard's webhook configurations (as `make
// manifests` generates them) pointing at a local TLS server on 127.0.0.1 and
// a free port, with a fresh CA: the returned options hold the port and the
// serving certificate's directory for the manager. Cleanup removes the
// certificates.
func InstallWebhooks(cfg *rest.Config, root string) (*envtest.WebhookInstallOptions, error) {
	wh := &envtest.WebhookInstallOptions{
		Paths:            []string{filepath.Join(root, "config", "webhook", "manifests.yaml")},
		LocalServingHost: "127.0.0.1",
	}
	if err := wh.Install(cfg); err != nil {
		return nil, fmt.Errorf("installing the webhook configurations: %w", err)
	}
	return wh, nil
}

// SaveLogs copies the components' logs to dir, so that they outlive Down.
func (c *Cluster) SaveLogs(dir string) error {
	src := filepath.Join(c.WorkDir, "clusters", c.Name, "logs")
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name())) //nolint:gosec // the cluster's own log files
		if err != nil {
			return fmt.Errorf("reading a log: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), data, 0o600); err != nil { //nolint:gosec // names read from the cluster's own log directory
			return fmt.Errorf("writing a log: %w", err)
		}
	}
	return nil
}
