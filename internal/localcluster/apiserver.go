package localcluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"
)

// The kube-apiserver of a running cluster can be stopped and started again on
// its own, etcd and the other components left running, to see how clients
// ride out an outage of the control plane. kwokctl (v0.8.0) stops and starts
// only whole clusters from its command line, so this does what its binary
// runtime does for one component, with the files it keeps for each in
// clusters/<name>/: the process id in pids/<binary>.pid, the output in
// logs/<binary>.log, and the binary, arguments, environment and working
// directory in kwok.yaml. A component started here is then found by kwokctl
// like any other (Down stops it).

// apiServerComponent is the kube-apiserver's component name in kwok.yaml.
const apiServerComponent = "kube-apiserver"

// component is what kwok.yaml says of one component: how kwokctl runs it.
type component struct {
	Name    string   `json:"name"`
	Binary  string   `json:"binary"`
	Args    []string `json:"args"`
	WorkDir string   `json:"workDir"`
	Envs    []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"envs"`
}

// StopAPIServer stops the cluster's kube-apiserver: SIGTERM, and SIGKILL if it
// has not exited after grace (an apiserver drains its requests for up to a
// minute; a grace of zero kills it at once). It returns once the process is
// gone, so that from then on nothing answers on the apiserver's address.
func (c *Cluster) StopAPIServer(ctx context.Context, grace time.Duration) error {
	comp, err := c.component(apiServerComponent)
	if err != nil {
		return err
	}
	pidPath := c.pidPath(comp)
	pid, err := readPid(pidPath)
	if err != nil {
		return fmt.Errorf("the kube-apiserver's pid (is it running?): %w", err)
	}
	if grace > 0 {
		if err := signal(pid, syscall.SIGTERM); err != nil {
			return err
		}
		if err := waitGone(ctx, pid, grace); err == nil {
			return removePid(pidPath)
		}
	}
	if err := signal(pid, syscall.SIGKILL); err != nil {
		return err
	}
	if err := waitGone(ctx, pid, 10*time.Second); err != nil {
		return fmt.Errorf("the kube-apiserver (pid %d) survived SIGKILL: %w", pid, err)
	}
	return removePid(pidPath)
}

// StartAPIServer starts the cluster's kube-apiserver again after
// StopAPIServer, as kwokctl started it, and waits up to timeout until it is
// ready (/readyz). Then it starts again, as a kubelet would, each other
// component that exited meanwhile: kube-controller-manager and
// kube-scheduler exit when they cannot renew their leader lease for 10 s. It
// returns the names of those. Each component's output is appended to its
// log, after that of its earlier lives.
func (c *Cluster) StartAPIServer(ctx context.Context, timeout time.Duration) ([]string, error) {
	comps, err := c.components()
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(comps, func(comp component) bool { return comp.Name == apiServerComponent })
	if i < 0 {
		return nil, fmt.Errorf("the cluster's kwok.yaml names no component %s", apiServerComponent)
	}
	apiserver := comps[i]
	if pid, err := readPid(c.pidPath(apiserver)); err == nil && alive(pid) {
		return nil, fmt.Errorf("the kube-apiserver is running (pid %d): stop it with StopAPIServer first", pid)
	}
	exited, err := c.start(apiserver)
	if err != nil {
		return nil, err
	}
	if err := c.waitAPIServerReady(ctx, exited, c.logPath(apiserver), timeout); err != nil {
		return nil, err
	}
	var restarted []string
	for _, comp := range slices.Delete(comps, i, i+1) {
		if pid, err := readPid(c.pidPath(comp)); err == nil && alive(pid) {
			continue
		}
		if _, err := c.start(comp); err != nil {
			return restarted, err
		}
		restarted = append(restarted, comp.Name)
	}
	return restarted, nil
}

// start runs a component as kwokctl does, in a session of its own (it
// outlives this process and is no part of a Ctrl-C in the terminal), and
// records its pid. The returned channel is closed when it exits.
func (c *Cluster) start(comp component) (<-chan struct{}, error) {
	logFile, err := os.OpenFile(filepath.Clean(c.logPath(comp)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s: %w", comp.Name, err)
	}
	//nolint:gosec // G204: the binary and arguments kwokctl wrote for the cluster's component
	cmd := exec.Command(comp.Binary, comp.Args...)
	cmd.Dir = comp.WorkDir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = os.Environ()
	for _, e := range comp.Envs {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	_ = logFile.Close() // the child holds its own copy
	if err != nil {
		return nil, fmt.Errorf("starting %s (%s): %w", comp.Name, comp.Binary, err)
	}
	exited := make(chan struct{})
	go func() {
		// Reaps it whenever it exits (StopAPIServer, or kwokctl's Down).
		_ = cmd.Wait()
		close(exited)
	}()
	if err := os.WriteFile(c.pidPath(comp), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return nil, fmt.Errorf("writing the pid of %s: %w", comp.Name, err)
	}
	return exited, nil
}

// waitAPIServerReady polls the apiserver's /readyz until it answers ok, the
// process exits or timeout passes.
func (c *Cluster) waitAPIServerReady(ctx context.Context, exited <-chan struct{}, logPath string, timeout time.Duration) error {
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		return fmt.Errorf("creating a client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("/readyz answered %q", body)
		}
		select {
		case <-exited:
			return fmt.Errorf("the kube-apiserver exited while starting; the end of its log %s:\n%s", logPath, tail(logPath, 20))
		case <-ctx.Done():
			return fmt.Errorf("the kube-apiserver was not ready within %s (last: %w); its log: %s", timeout, last, logPath)
		case <-tick.C:
		}
	}
}

// components reads how kwokctl runs the cluster's components from its
// kwok.yaml, whose first document is the KwokctlConfiguration.
func (c *Cluster) components() ([]component, error) {
	path := filepath.Join(c.clusterDir(), "kwok.yaml")
	f, err := os.Open(filepath.Clean(path))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's configuration: %w", err)
	}
	defer func() { _ = f.Close() }()
	doc, err := utilyaml.NewYAMLReader(bufio.NewReader(f)).Read()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var conf struct {
		Components []component `json:"components"`
	}
	if err := yaml.Unmarshal(doc, &conf); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return conf.Components, nil
}

// component returns the named component of kwok.yaml.
func (c *Cluster) component(name string) (component, error) {
	comps, err := c.components()
	if err != nil {
		return component{}, err
	}
	if i := slices.IndexFunc(comps, func(comp component) bool { return comp.Name == name }); i >= 0 {
		return comps[i], nil
	}
	return component{}, fmt.Errorf("the cluster's kwok.yaml names no component %s", name)
}

// clusterDir is kwokctl's directory of the cluster.
func (c *Cluster) clusterDir() string { return filepath.Join(c.WorkDir, "clusters", c.Name) }

// pidPath is where kwokctl keeps a component's process id: named after its
// binary.
func (c *Cluster) pidPath(comp component) string {
	return filepath.Join(c.clusterDir(), "pids", filepath.Base(comp.Binary)+".pid")
}

// logPath is a component's log, named after its binary.
func (c *Cluster) logPath(comp component) string {
	return filepath.Join(c.clusterDir(), "logs", filepath.Base(comp.Binary)+".log")
}

// readPid reads a pid file.
func readPid(path string) (int, error) {
	raw, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", path, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return 0, fmt.Errorf("parsing %s: %w", path, err)
	}
	return pid, nil
}

// signal sends sig to pid; a process already gone is no error.
func signal(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("sending %s to pid %d: %w", sig, pid, err)
	}
	return nil
}

// waitGone waits up to timeout for pid to exit.
func waitGone(ctx context.Context, pid int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if !alive(pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pid %d still running: %w", pid, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// alive reports whether pid is a process that has not exited: it exists and
// is not a zombie (state Z, or X while being reaped, in /proc/<pid>/stat).
// The components kwokctl started are not this process's children: once one
// exits it stays a zombie until its new parent reaps it, which may take a
// while, and a zombie still answers signal 0.
func alive(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses; the
	// state follows the last ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return true
	}
	state := s[i+2]
	return state != 'Z' && state != 'X'
}

// removePid removes a stopped component's pid file, as kwokctl does.
func removePid(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}
