// Command demo runs phiguard end to end on one machine, with nothing to install
// and no cluster: it starts the local etcd and kube-apiserver from bin/k8s (with
// phiguard's CRDs), runs the manager binary against them as a separate process,
// applies the samples in config/samples and shows the compliance table until
// every sample PHIWorkload has settled.
//
//	go run ./hack/demo [-manager bin/manager] [-timeout 60s] [-refresh 2s]
//
// With DEMO_EXIT=1 it stops once the samples have settled; otherwise it keeps
// refreshing the table until interrupted (Ctrl-C or SIGTERM). Either way it
// stops the manager and then the control plane before it exits, also on errors.
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

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	phischeme "github.com/phiguard/phiguard/internal/scheme"
	"github.com/phiguard/phiguard/internal/testenv"
)

// demoUser is the admin user whose kubeconfig the demo writes for the manager
// and for the person running the demo.
const demoUser = "phiguard-demo"

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
	dir        string
	kubeconfig string
	managerLog string
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
	fs.DurationVar(&opts.timeout, "timeout", 60*time.Second,
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

	env, err := testenv.NewWithWebhooks()
	if err != nil {
		return err
	}
	// Velero's own CRDs (no Velero runs here): phiguard keeps a backup
	// Schedule for the sample and reports that no storage location exists.
	velero, err := testenv.VeleroCRDs()
	if err != nil {
		return err
	}
	env.CRDInstallOptions.Paths = append(env.CRDInstallOptions.Paths, velero...)
	fmt.Printf("Starting etcd and kube-apiserver from %s ...\n", out.rel(testenv.BinaryDir(opts.root)))
	cfg, err := env.Start()
	// Stop even when Start failed half way, so that no etcd or kube-apiserver is left behind.
	defer func() { err = errors.Join(err, stopControlPlane(env)) }()
	if err != nil {
		return fmt.Errorf("starting the control plane: %w", err)
	}
	if err := writeKubeconfig(env, p.kubeconfig); err != nil {
		return err
	}
	c, err := newClient(cfg)
	if err != nil {
		return err
	}

	fmt.Printf("Starting the manager %s; its log goes to %s\n", out.rel(opts.manager), out.rel(p.managerLog))
	mgr, err := startManager(opts.manager, p.kubeconfig, p.managerLog, &env.WebhookInstallOptions)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopManager(mgr)) }()

	samples := filepath.Join(opts.root, "config", "samples")
	fmt.Printf("Applying the samples in %s (server-side apply, field manager %s)\n", out.rel(samples), fieldOwner)
	workloads, err := applySamples(ctx, c, samples)
	if err != nil {
		return err
	}
	w := &watcher{client: c, screen: out, manager: mgr, expected: workloads, refresh: opts.refresh}
	list, err := w.waitSettled(ctx, opts.timeout)
	if err != nil {
		return err
	}
	if err := showAdmission(ctx, c); err != nil {
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

// preparePaths creates bin/demo and returns the files in it.
func preparePaths(root string) (paths, error) {
	dir := filepath.Join(root, "bin", "demo")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return paths{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	return paths{
		dir:        dir,
		kubeconfig: filepath.Join(dir, "kubeconfig"),
		managerLog: filepath.Join(dir, "manager.log"),
	}, nil
}

// writeKubeconfig adds the demo's admin user and writes its kubeconfig. The
// file holds a client key, so only its owner may read it.
func writeKubeconfig(env *envtest.Environment, path string) error {
	user, err := env.AddUser(envtest.User{Name: demoUser, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the %s user: %w", demoUser, err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("making the kubeconfig of %s: %w", demoUser, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing the kubeconfig: %w", err)
	}
	return nil
}

func newClient(cfg *rest.Config) (client.Client, error) {
	scheme, err := phischeme.New()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client for the control plane: %w", err)
	}
	return c, nil
}

func stopManager(m *managerProcess) error {
	fmt.Println("Stopping the manager ...")
	if err := m.Stop(managerStopTimeout); err != nil {
		return fmt.Errorf("stopping the manager: %w", err)
	}
	return nil
}

func stopControlPlane(env *envtest.Environment) error {
	fmt.Println("Stopping kube-apiserver and etcd ...")
	if err := env.Stop(); err != nil {
		return fmt.Errorf("stopping the control plane: %w", err)
	}
	return nil
}
