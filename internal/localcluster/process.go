package localcluster

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is a component of the local cluster running as a child process
// (the manager, the Velero server, the object store), with its output in a
// log file.
type process struct {
	name    string // what it is, for messages: "the manager"
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed once the process has exited
	err     error         // the exit status; read it only after done is closed
	// reported is set once ExitError has described an unexpected exit, so
	// that Stop does not report it again.
	reported bool
}

// startProcess runs binary with args and extra environment variables; its
// stdout and stderr go to logPath. The process gets its own process group, so
// that a Ctrl-C in the terminal reaches only the caller, which stops it in
// order.
func startProcess(name, binary string, args, env []string, logPath string) (*process, error) {
	logFile, err := os.Create(filepath.Clean(logPath))
	if err != nil {
		return nil, fmt.Errorf("creating the log of %s: %w", name, err)
	}
	//nolint:gosec // G204: running the binary the caller chose is the point.
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s (%s): %w", name, binary, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited is closed when the process has exited.
func (p *process) Exited() <-chan struct{} { return p.done }

// ExitError describes an exit nobody asked for, with the end of the log.
// Call it only after Exited is closed.
func (p *process) ExitError() error {
	p.reported = true
	status := "exited"
	if p.err != nil {
		status = p.err.Error()
	}
	return fmt.Errorf("%s stopped unexpectedly (%s); the end of its log %s:\n%s", p.name, status, p.logPath, tail(p.logPath, 20))
}

// Stop sends SIGTERM and waits for the process to exit, killing it after
// timeout. It returns an error when the process did not exit cleanly.
func (p *process) Stop(timeout time.Duration) error {
	select {
	case <-p.done:
		if p.reported {
			return nil
		}
		return p.ExitError()
	default:
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGTERM to %s: %w", p.name, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-p.done:
		if p.err != nil {
			return fmt.Errorf("%s exited with %w; see %s", p.name, p.err, p.logPath)
		}
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM and was killed; see %s", p.name, timeout, p.logPath)
	}
}

// Kill ends the process with SIGKILL, as a node failure or an OOM kill
// would: no cleanup. It waits for the process to go.
func (p *process) Kill() error {
	select {
	case <-p.done:
		return p.ExitError()
	default:
	}
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGKILL to %s: %w", p.name, err)
	}
	<-p.done
	p.reported = true
	return nil
}

// LogPath is where the process's output goes.
func (p *process) LogPath() string { return p.logPath }

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
