// Command cluster starts and stops phiguard's full local cluster (see
// internal/localcluster): `make cluster-up` and `make cluster-down`.
//
//	go run ./hack/cluster up|down [-name phiguard]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/phiguard/phiguard/internal/localcluster"
	"github.com/phiguard/phiguard/internal/testenv"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 || (args[0] != "up" && args[0] != "down") {
		return fmt.Errorf("usage: cluster up|down [-name NAME]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	name := fs.String("name", "phiguard", "Name of the cluster; its files are in bin/cluster/<name>.")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("parsing flags: %w", err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := localcluster.Options{Root: root, Name: *name, Out: os.Stderr}
	start := time.Now()
	if args[0] == "down" {
		if err := localcluster.Open(opts).Down(ctx); err != nil {
			return err
		}
		fmt.Printf("cluster %s stopped and deleted\n", *name)
		return nil
	}
	c, err := localcluster.Up(ctx, opts)
	if err != nil {
		return err
	}
	fmt.Printf("cluster %s is up in %s (Kubernetes %s: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok with one Node; phiguard's and Velero's CRDs installed)\n",
		c.Name, time.Since(start).Round(100*time.Millisecond), localcluster.KubeVersion)
	fmt.Printf("kubeconfig: %s\n", c.Kubeconfig)
	fmt.Printf("stop it with: make cluster-down\n")
	return nil
}
