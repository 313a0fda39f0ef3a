package localcluster

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Manager is the phiguard manager, running as a child process against a
// local control plane, with the flags it has in production.
type Manager struct {
	*process
	probe string // host:port of the health and readiness probes
}

// ManagerOptions say how to run the manager binary.
type ManagerOptions struct {
	// Binary is the built manager (bin/manager).
	Binary string
	// Kubeconfig is the control plane's kubeconfig.
	Kubeconfig string
	// LogPath receives the manager's stdout and stderr.
	LogPath string
	// Webhooks are where the apiserver calls the webhooks, and their certificates.
	Webhooks *envtest.WebhookInstallOptions
	// ProbeAddress is where the health and readiness probes bind
	// (default: a free port on 127.0.0.1).
	ProbeAddress string
	// EvidenceDir is the directory of the manager's evidence trail (its
	// segments, and its buffer under buffer/); default: "evidence" next to
	// LogPath.
	EvidenceDir string
	// PodName names the replica (POD_NAME), and with it its admission
	// evidence shard; default "manager-0". Managers running side by side
	// need names of their own.
	PodName string
	// Args are more flags.
	Args []string
}

// StartManager runs the manager binary; its stdout and stderr go to LogPath.
func StartManager(o ManagerOptions) (*Manager, error) {
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("manager binary: %w (build it with `make build`)", err)
	}
	probe := o.ProbeAddress
	if probe == "" {
		var err error
		if probe, err = freeAddress(); err != nil {
			return nil, err
		}
	}
	wh := o.Webhooks
	if o.EvidenceDir == "" {
		o.EvidenceDir = filepath.Join(filepath.Dir(o.LogPath), "evidence")
	}
	if o.PodName == "" {
		o.PodName = "manager-0"
	}
	args := append([]string{
		"--kubeconfig=" + o.Kubeconfig,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + probe,
		"--namespace=phiguard-system",
		"--zap-log-level=info",
		// The apiserver calls the webhooks here, trusting the CA in the
		// webhook configurations.
		"--webhook-host=" + wh.LocalServingHost,
		fmt.Sprintf("--webhook-port=%d", wh.LocalServingPort),
		"--webhook-cert-dir=" + wh.LocalServingCertDir,
		"--webhook-cert-source=files",
		"--evidence-dir=" + o.EvidenceDir,
	}, o.Args...)
	p, err := startProcess("the manager", o.Binary, args, []string{"POD_NAME=" + o.PodName}, o.LogPath)
	if err != nil {
		return nil, err
	}
	return &Manager{process: p, probe: probe}, nil
}

// WaitReady waits until the manager's readiness probe answers 200 (its
// webhook server serves, so the apiserver's calls to it succeed), for at most
// timeout. It fails at once, with the end of the log, when the manager exits.
func (m *Manager) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	url := "http://" + m.probe + "/readyz"
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("probing the manager: %w", err)
		}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-m.done:
			return m.ExitError()
		case <-ctx.Done():
			return fmt.Errorf("the manager was not ready (%s) within %s; its log: %s", url, timeout, m.logPath)
		case <-tick.C:
		}
	}
}

// freeAddress returns a loopback address with a port nothing listens on.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	return addr, nil
}
