// Package objectstore runs an S3-compatible object store, versitygw with its
// POSIX backend, as a child process: the backup target of the local cluster,
// the end-to-end suite and the tests of phiguard's immutability check. Bucket
// versioning and Object Lock work as on S3, so a locked bucket really refuses
// to delete a backup.
package objectstore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// Region is the region the store answers for.
const Region = "us-east-1"

// How long Start waits for the store to answer, and Stop for it to exit
// after SIGTERM before it is killed.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 10 * time.Second
	pollInterval = 50 * time.Millisecond
)

// startAttempts is how often Start tries a fresh port: the free port it
// picks is closed again before versitygw binds it, so another process may
// take it in between.
const startAttempts = 3

// Options say which binary to run and where it keeps its data.
type Options struct {
	// Binary is the path to the versitygw executable.
	Binary string
	// Dir holds the store's data; it is created if missing. Objects live in
	// Dir/data, older versions of objects in Dir/versions, metadata in
	// Dir/meta.
	Dir string
	// Out receives versitygw's output; nil discards it.
	Out io.Writer
}

// Server is a running object store. Its root user's keys are random.
type Server struct {
	// Endpoint is the store's URL, such as "http://127.0.0.1:39123".
	Endpoint string
	// AccessKey is the root user's access key ID.
	AccessKey string
	// SecretKey is the root user's secret access key.
	SecretKey string
	// Region is the region the store answers for, Region.
	Region string

	host     string // 127.0.0.1:PORT
	cmd      *exec.Cmd
	done     chan struct{} // closed once the process has exited
	err      error         // the exit status; read it only after done is closed
	output   *tailBuffer   // the end of the process's output, for errors
	stopOnce sync.Once
	stopErr  error
}

// Start runs versitygw with its POSIX backend on a free port of 127.0.0.1
// and returns once it answers S3 requests with its keys.
func Start(ctx context.Context, o Options) (*Server, error) {
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("the object store's binary: %w", err)
	}
	for _, dir := range []string{o.dataDir(), o.versionsDir(), o.metaDir()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("creating the object store's directory: %w", err)
		}
	}
	var err error
	for range startAttempts {
		var s *Server
		if s, err = start(ctx, o); err == nil {
			return s, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, err
}

// dataDir holds the buckets: each bucket is a directory, each object a file.
func (o Options) dataDir() string { return filepath.Join(o.Dir, "data") }

// versionsDir holds the versions an object had before it was overwritten.
// versitygw turns bucket versioning (and so Object Lock) on only when it has
// one, and refuses one inside the data directory.
func (o Options) versionsDir() string { return filepath.Join(o.Dir, "versions") }

// metaDir holds the objects' and buckets' metadata (versioning, Object
// Lock, retention) in files of their own: versitygw keeps it in extended
// attributes otherwise, which not every filesystem a test or CI runs on
// allows.
func (o Options) metaDir() string { return filepath.Join(o.Dir, "meta") }

// start makes one attempt to run the store on a fresh port.
func start(ctx context.Context, o Options) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	host := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{
		Endpoint:  "http://" + host,
		AccessKey: rand.Text(),
		SecretKey: rand.Text() + rand.Text(),
		Region:    Region,
		done:      make(chan struct{}),
		host:      host,
		output:    &tailBuffer{max: 4096},
	}
	out := o.Out
	if out == nil {
		out = io.Discard
	}
	//nolint:gosec // G204: running the binary the caller chose is the point.
	s.cmd = exec.Command(o.Binary,
		"--port", host,
		"--region", s.Region,
		"--quiet",
		"posix", "--versioning-dir", o.versionsDir(), "--sidecar", o.metaDir(), o.dataDir())
	// The keys go through the environment, where other users cannot read
	// them, rather than the command line.
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	s.cmd.Stdout = io.MultiWriter(out, s.output)
	s.cmd.Stderr = s.cmd.Stdout
	s.cmd.SysProcAttr = sysProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the object store (%s): %w", o.Binary, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

// waitReady polls ListBuckets until the store answers it, the process exits
// or startTimeout passes.
func (s *Server) waitReady(ctx context.Context) error {
	client, err := s.Client()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	ticker := time.NewTicker(pollInterval)
	defer ticker.Stop()
	for {
		_, err := client.ListBuckets(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return s.exitedError("the object store exited before answering")
		case <-ctx.Done():
			return fmt.Errorf("the object store did not answer at %s (last error: %w); its output:\n%s", s.Endpoint, err, s.output)
		case <-ticker.C:
		}
	}
}

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	return port, nil
}

// Client returns an S3 client for the store, signed with the root user's keys.
func (s *Server) Client() (*minio.Client, error) {
	c, err := minio.New(s.host, &minio.Options{
		Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
		Region:       s.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("creating an S3 client for %s: %w", s.Endpoint, err)
	}
	return c, nil
}

// Stop sends SIGTERM, waits for the process to exit and kills it after a
// timeout. It returns an error when the process did not exit cleanly; later
// calls return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	select {
	case <-s.done:
		return s.exitedError("the object store had already exited")
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("sending SIGTERM to the object store: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-s.done:
		if s.err != nil && !terminatedBy(s.err, syscall.SIGTERM) {
			return fmt.Errorf("the object store exited with %w; its output:\n%s", s.err, s.output)
		}
		return nil
	case <-timer.C:
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("the object store did not stop within %s of SIGTERM and was killed", stopTimeout)
	}
}

// exitedError reports that the store exited when it should not have: what
// happened, its exit status and the end of its output. Call it only after
// done is closed.
func (s *Server) exitedError(what string) error {
	if s.err == nil {
		return fmt.Errorf("%s (exit status 0); its output:\n%s", what, s.output)
	}
	return fmt.Errorf("%s (%w); its output:\n%s", what, s.err, s.output)
}

// terminatedBy reports whether a process's exit status is death by sig.
func terminatedBy(err error, sig syscall.Signal) bool {
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return false
	}
	status, ok := exit.Sys().(syscall.WaitStatus)
	return ok && status.Signaled() && status.Signal() == sig
}

// Pid is the store's process ID.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// Write implements io.Writer.
func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = t.buf[over:]
	}
	return len(p), nil
}

// String returns what the buffer holds.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
