package testenv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// GarbageCollector is a kube-controller-manager running only the garbage
// collector against an envtest control plane, so that tests see owner
// references do their work: delete an owner, and its dependents go.
type GarbageCollector struct {
	cmd *exec.Cmd
	dir string
}

// StartGarbageCollector starts kube-controller-manager (built into the same
// directory as the control plane by `make controlplane`) with only the
// garbage collector enabled. Its log goes to log.
func StartGarbageCollector(env *envtest.Environment, log io.Writer) (*GarbageCollector, error) {
	bin := filepath.Join(env.BinaryAssetsDirectory, "kube-controller-manager")
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("kube-controller-manager missing in %s: run `make controlplane` (builds it from Go modules): %w",
			env.BinaryAssetsDirectory, err)
	}
	user, err := env.AddUser(envtest.User{Name: "garbage-collector", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding the garbage collector's user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return nil, fmt.Errorf("making the garbage collector's kubeconfig: %w", err)
	}
	dir, err := os.MkdirTemp("", "phiguard-gc-")
	if err != nil {
		return nil, fmt.Errorf("creating a directory for the garbage collector: %w", err)
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("writing the garbage collector's kubeconfig: %w", err), os.RemoveAll(dir))
	}
	cmd := exec.Command(bin, //nolint:gosec // the binary this repository builds
		"--kubeconfig="+path,
		"--controllers=garbagecollector",
		"--leader-elect=false",
		"--secure-port=0", // no serving: nothing scrapes or probes it here
		"--use-service-account-credentials=false",
	)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("starting kube-controller-manager: %w", err), os.RemoveAll(dir))
	}
	return &GarbageCollector{cmd: cmd, dir: dir}, nil
}

// Stop ends kube-controller-manager and removes its files.
func (g *GarbageCollector) Stop() error {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	// Its exit status is not interesting: it exits non-zero on SIGTERM.
	var exitErr error
	select {
	case exitErr = <-done:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		exitErr = <-done
	}
	_ = exitErr
	if err := os.RemoveAll(g.dir); err != nil {
		return fmt.Errorf("removing the garbage collector's files: %w", err)
	}
	return nil
}
