// Command demo runs phiguard end to end on one machine, with nothing to install:
// it starts the full local cluster (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler built from Go modules, and kwok with two simulated Nodes; see
// internal/localcluster), runs the manager binary against it as a separate
// process with its webhooks called by the apiserver, applies the samples in
// config/samples and shows the compliance table until every sample
// PHIWorkload has settled.
//
//	go run ./hack/demo [-manager bin/manager] [-timeout 120s] [-refresh 2s]
//
// With DEMO_EXIT=1 it stops once the samples have settled; otherwise it keeps
// refreshing the table until interrupted (Ctrl-C or SIGTERM). Either way it
// stops the manager and then the cluster before it exits, also on errors.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/phiguard/phiguard/internal/localcluster"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

// demoCluster is the name of the demo's local cluster.
const demoCluster = "phiguard-demo"

// sampleNamespace is the namespace of the samples' workloads.
const sampleNamespace = "clinic"

// compliantSample is the sample PHIWorkload (and app label) that meets every
// safeguard: the demo has settled only once it is Ready.
const compliantSample = "patient-records"

// managerStopTimeout is how long the manager gets to stop after SIGTERM.
const managerStopTimeout = 15 * time.Second

// options are the demo's settings, from flags and the environment.
type options struct {
	root            string        // repository root
	manager         string        // manager binary
	timeout         time.Duration // how long the samples may take to settle
	refresh         time.Duration // how often the table is redrawn
	exitAfterSettle bool          // DEMO_EXIT=1: stop once settled
}

// paths are the files the demo writes, under bin/demo.
type paths struct {
	dir           string
	managerLog    string
	clusterLog    string
	kubeconfig    string // the cluster's, written by localcluster
	componentLogs string // the cluster components' logs
	evidence      string // the manager's evidence trail (--evidence-dir)
	oscal         string // the samples' evidence as OSCAL assessment results
}

func main() {
	opts, err := parseOptions(os.Args[1:])
	if err == nil {
		err = run(opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func parseOptions(args []string) (options, error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return options{}, err
	}
	opts := options{root: root, exitAfterSettle: os.Getenv("DEMO_EXIT") == "1"}
	fs := flag.NewFlagSet("demo", flag.ExitOnError)
	fs.StringVar(&opts.manager, "manager", filepath.Join(root, "bin", "manager"),
		"Manager binary to run (build it with `go build -o bin/manager ./cmd`).")
	fs.DurationVar(&opts.timeout, "timeout", 120*time.Second,
		"How long the samples may take to settle before the demo fails.")
	fs.DurationVar(&opts.refresh, "refresh", 2*time.Second, "How often the compliance table is redrawn.")
	_ = fs.Parse(args) // ExitOnError: a bad flag exits with the usage
	if opts.timeout <= 0 || opts.refresh <= 0 {
		return options{}, errors.New("-timeout and -refresh must be positive")
	}
	return opts, nil
}

func run(opts options) (err error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Logs of envtest and the client are not part of the demo's output; every
	// failure they could report comes back as an error.
	ctrllog.SetLogger(zap.New(zap.WriteTo(io.Discard)))

	p, err := preparePaths(opts.root)
	if err != nil {
		return err
	}
	out := newScreen(os.Stdout, p)

	fmt.Printf("Starting the local cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok) from %s ...\n",
		out.rel(filepath.Join(opts.root, "bin")))
	start := time.Now()
	clusterLog, err := os.Create(p.clusterLog)
	if err != nil {
		return fmt.Errorf("creating the cluster log: %w", err)
	}
	defer func() { _ = clusterLog.Close() }()
	cluster, err := localcluster.Up(ctx, localcluster.Options{Root: opts.root, Name: demoCluster, Out: clusterLog})
	// Stop even when Up failed half way, so that no component is left behind.
	defer func() { err = errors.Join(err, stopCluster(cluster, opts.root, clusterLog)) }()
	if err != nil {
		return fmt.Errorf("starting the local cluster (its log: %s): %w", out.rel(p.clusterLog), err)
	}
	fmt.Printf("  up in %s, two simulated Nodes; phiguard's and Velero's CRDs installed\n", time.Since(start).Round(100*time.Millisecond))
	backups, err := startBackups(ctx, cluster, opts.root)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopBackups(backups)) }()
	wh, err := localcluster.InstallWebhooks(cluster.Config, opts.root)
	if err != nil {
		return err
	}
	defer func() { _ = wh.Cleanup() }()
	c, err := phischeme.NewClient(cluster.Config)
	if err != nil {
		return err
	}

	mgr, err := launchManager(ctx, c, cluster.Kubeconfig, opts, p, out, wh)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopManager(mgr)) }()
	// The apiserver calls its webhooks for every sample: they must serve first.
	if err := mgr.WaitReady(ctx, opts.timeout); err != nil {
		return err
	}

	samples := filepath.Join(opts.root, "config", "samples")
	fmt.Printf("Applying the samples in %s (server-side apply, field manager %s)\n", out.rel(samples), fieldOwner)
	workloads, err := applySamples(ctx, c, samples)
	if err != nil {
		return err
	}
	if err := prepareBackups(ctx, c, backups, workloads, opts.timeout); err != nil {
		return err
	}
	w := &watcher{client: c, screen: out, manager: mgr, expected: workloads, refresh: opts.refresh,
		ready: []types.NamespacedName{{Namespace: sampleNamespace, Name: compliantSample}}}
	list, err := w.waitSettled(ctx, opts.timeout)
	if err != nil {
		return err
	}
	if err := showSettled(ctx, c, cluster.Kubeconfig, backups, evidenceShown{workloads: workloads, oscal: p.oscal, timeout: opts.timeout}); err != nil {
		return err
	}
	if err := out.summary(list, opts.exitAfterSettle); err != nil {
		return err
	}
	if opts.exitAfterSettle {
		return nil
	}
	return w.watch(ctx)
}

// showSettled prints what the settled samples show beyond the table: what
// admission refuses, the pods with their sidecars, the samples' inventory
// with the map of their allowed network flows, and their backups in the
// bucket with the restore drills, and the evidence trail.
func showSettled(ctx context.Context, c client.Client, kubeconfig string, backups *localcluster.Backups, ev evidenceShown) error {
	if err := showAdmission(ctx, c); err != nil {
		return err
	}
	pods, err := renderPods(ctx, c, sampleNamespace)
	if err != nil {
		return err
	}
	inventory, err := renderInventory(ctx, kubeconfig, sampleNamespace)
	if err != nil {
		return err
	}
	for _, b := range [][]byte{pods, inventory} {
		if _, err := os.Stdout.Write(b); err != nil {
			return fmt.Errorf("writing to stdout: %w", err)
		}
	}
	if err := showBackups(ctx, os.Stdout, c, backups, sampleNamespace); err != nil {
		return err
	}
	return showEvidence(ctx, os.Stdout, kubeconfig, ev.workloads, ev.oscal, ev.timeout)
}

// evidenceShown is what the evidence shown waits for and writes.
type evidenceShown struct {
	workloads []types.NamespacedName // attested before it is shown
	oscal     string                 // where the OSCAL export goes
	timeout   time.Duration
}

// launchManager starts bin/manager against the cluster, with its evidence
// trail in bin/demo/evidence.
func launchManager(ctx context.Context, c client.Client, kubeconfig string, opts options, p paths, out *screen, wh *envtest.WebhookInstallOptions) (*localcluster.Manager, error) {
	if err := prepareEvidence(ctx, c, p); err != nil {
		return nil, err
	}
	fmt.Printf("Starting the manager %s; its log goes to %s, its evidence to %s\n", out.rel(opts.manager), out.rel(p.managerLog), out.rel(p.evidence))
	mgr, err := localcluster.StartManager(localcluster.ManagerOptions{
		Binary: opts.manager, Kubeconfig: kubeconfig, LogPath: p.managerLog, Webhooks: wh,
		EvidenceDir: p.evidence, Args: evidenceArgs})
	if err != nil {
		return nil, fmt.Errorf("starting the manager: %w", err)
	}
	return mgr, nil
}

// prepareEvidence creates the manager's namespace, where it keeps its
// signing key and publishes its evidence trail, and removes the trail of an
// earlier demo (another cluster's, signed by another key).
func prepareEvidence(ctx context.Context, c client.Client, p paths) error {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: managerNamespace}}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", managerNamespace, err)
	}
	if err := os.RemoveAll(p.evidence); err != nil {
		return fmt.Errorf("removing the evidence of an earlier demo: %w", err)
	}
	return nil
}

// preparePaths creates bin/demo and returns the files in it.
func preparePaths(root string) (paths, error) {
	dir := filepath.Join(root, "bin", "demo")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return paths{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	return paths{
		dir:           dir,
		managerLog:    filepath.Join(dir, "manager.log"),
		evidence:      filepath.Join(dir, "evidence"),
		oscal:         filepath.Join(dir, "evidence-oscal.json"),
		clusterLog:    filepath.Join(dir, "cluster.log"),
		kubeconfig:    filepath.Join(root, "bin", "cluster", demoCluster, "kubeconfig"),
		componentLogs: filepath.Join(dir, "cluster-logs"),
	}, nil
}

func stopManager(m *localcluster.Manager) error {
	fmt.Println("Stopping the manager ...")
	if err := m.Stop(managerStopTimeout); err != nil {
		return fmt.Errorf("stopping the manager: %w", err)
	}
	return nil
}

func stopBackups(b *localcluster.Backups) error {
	fmt.Println("Stopping Velero and the object store ...")
	if err := b.Stop(managerStopTimeout); err != nil {
		return fmt.Errorf("stopping Velero and the object store: %w", err)
	}
	return nil
}

func stopCluster(c *localcluster.Cluster, root string, log io.Writer) error {
	fmt.Println("Stopping the local cluster ...")
	if c == nil { // Up failed before it returned one: remove what it started.
		c = localcluster.Open(localcluster.Options{Root: root, Name: demoCluster, Out: log})
	}
	// Keep the components' logs (they go with the cluster's files).
	_ = c.SaveLogs(filepath.Join(root, "bin", "demo", "cluster-logs"))
	if err := c.Down(context.Background()); err != nil {
		return fmt.Errorf("stopping the local cluster: %w", err)
	}
	return nil
}
