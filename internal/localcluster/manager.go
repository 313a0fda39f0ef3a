package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Manager is the phiguard manager, running as a child process against a
// local control plane, with the flags it has in production.
type Manager struct {
	cmd     *exec.Cmd
	logPath string
	probe   string        // host:port of the health and readiness probes
	done    chan struct{} // closed once the process has exited
	err     error         // the exit status; read it only after done is closed
	// reported is set once ExitError has described an unexpected exit, so that
	// Stop does not report it again.
	reported bool
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
	// Args are more flags.
	Args []string
}

// StartManager runs the manager binary; its stdout and stderr go to LogPath.
func StartManager(o ManagerOptions) (*Manager, error) {
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("manager binary: %w (build it with `make build`)", err)
	}
	logFile, err := os.Create(filepath.Clean(o.LogPath))
	if err != nil {
		return nil, fmt.Errorf("creating the manager log: %w", err)
	}
	probe := o.ProbeAddress
	if probe == "" {
		if probe, err = freeAddress(); err != nil {
			_ = logFile.Close()
			return nil, err
		}
	}
	wh := o.Webhooks
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
	}, o.Args...)
	//nolint:gosec // G204: running the manager binary the caller chose is the point.
	cmd := exec.Command(o.Binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Its own process group: a Ctrl-C in the terminal reaches only the demo,
	// which stops the manager before the control plane it talks to.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting the manager %s: %w", o.Binary, err)
	}
	m := &Manager{cmd: cmd, logPath: o.LogPath, probe: probe, done: make(chan struct{})}
	go func() {
		m.err = cmd.Wait()
		_ = logFile.Close()
		close(m.done)
	}()
	return m, nil
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

// Exited is closed when the manager has exited.
func (m *Manager) Exited() <-chan struct{} { return m.done }

// ExitError describes an exit of the manager that nobody asked for, with the
// end of its log. Call it only after Exited is closed.
func (m *Manager) ExitError() error {
	m.reported = true
	status := "exited"
	if m.err != nil {
		status = m.err.Error()
	}
	return fmt.Errorf("the manager stopped unexpectedly (%s); the end of its log %s:\n%s", status, m.logPath, tail(m.logPath, 20))
}

// Stop sends SIGTERM and waits for the manager to exit, killing it after
// timeout. It returns an error when the manager did not exit cleanly.
func (m *Manager) Stop(timeout time.Duration) error {
	select {
	case <-m.done:
		if m.reported {
			return nil
		}
		return m.ExitError()
	default:
	}
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGTERM: %w", err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-m.done:
		if m.err != nil {
			return fmt.Errorf("the manager exited with %w; see %s", m.err, m.logPath)
		}
		return nil
	case <-timer.C:
		_ = m.cmd.Process.Kill()
		<-m.done
		return fmt.Errorf("the manager did not stop within %s of SIGTERM and was killed; see %s", timeout, m.logPath)
	}
}

// Kill ends the manager with SIGKILL, as a node failure or an OOM kill would:
// no cleanup, no leader-election release. It waits for the process to go.
func (m *Manager) Kill() error {
	select {
	case <-m.done:
		return m.ExitError()
	default:
	}
	if err := m.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGKILL: %w", err)
	}
	<-m.done
	m.reported = true
	return nil
}

// LogPath is where the manager's log goes.
func (m *Manager) LogPath() string { return m.logPath }

// tail returns the last n lines of a file, indented, or a note that it cannot
// be read.
func tail(path string, n int) string {
	data, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return "  (cannot read it: " + err.Error() + ")"
	}
	data = bytes.TrimRight(data, "\n")
	if len(data) == 0 {
		return "  (the log is empty)"
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
