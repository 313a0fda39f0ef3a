package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	phiguardv1alpha1 "github.com/phiguard/phiguard/api/v1alpha1"
	"github.com/phiguard/phiguard/internal/localcluster"
	"github.com/phiguard/phiguard/internal/report"
	"github.com/phiguard/phiguard/internal/safeguard"
)

// clearScreen moves the cursor home and clears the terminal.
const clearScreen = "\x1b[H\x1b[2J"

// screen is where the demo draws. On a terminal each frame replaces the last;
// elsewhere (a pipe, a CI log) frames follow each other under a separator line.
type screen struct {
	out   io.Writer
	tty   bool
	cwd   string
	paths paths
}

func newScreen(f *os.File, p paths) *screen {
	info, err := f.Stat()
	tty := err == nil && info.Mode()&os.ModeCharDevice != 0
	cwd, _ := os.Getwd() // only used to shorten paths
	return &screen{out: f, tty: tty, cwd: cwd, paths: p}
}

// rel returns path relative to the working directory when it lies below it.
func (s *screen) rel(path string) string {
	if s.cwd == "" {
		return path
	}
	if r, err := filepath.Rel(s.cwd, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// frame draws a titled frame in one write.
func (s *screen) frame(title string, body []byte) error {
	var b bytes.Buffer
	if s.tty {
		b.WriteString(clearScreen)
	} else {
		b.WriteString(strings.Repeat("-", 100) + "\n")
	}
	b.WriteString(title + "\n\n")
	b.Write(body)
	if _, err := s.out.Write(b.Bytes()); err != nil {
		return fmt.Errorf("writing to stdout: %w", err)
	}
	return nil
}

// summary prints the detail of every workload, then how to look further.
func (s *screen) summary(list []phiguardv1alpha1.PHIWorkload, exiting bool) error {
	details, err := renderDetails(list)
	if err != nil {
		return err
	}
	body := append([]byte("\n"), details...)
	body = append(body, s.instructions(exiting)...)
	if _, err := s.out.Write(body); err != nil {
		return fmt.Errorf("writing to stdout: %w", err)
	}
	return nil
}

func (s *screen) instructions(exiting bool) string {
	kubeconfig := s.rel(s.paths.kubeconfig)
	var b strings.Builder
	fmt.Fprintf(&b, "Kubeconfig (cluster administrator): %s\n", kubeconfig)
	fmt.Fprintf(&b, "With kubectl:  KUBECONFIG=%s kubectl get phiw -A\n", kubeconfig)
	fmt.Fprintf(&b, "Manager log:   %s\n", s.rel(s.paths.managerLog))
	fmt.Fprintf(&b, "Cluster log:   %s (each component's log goes to %s when the demo stops)\n", s.rel(s.paths.clusterLog), s.rel(s.paths.componentLogs))
	switch {
	case exiting:
		b.WriteString("DEMO_EXIT=1: stopping now.\n")
	case s.tty:
		b.WriteString("The cluster keeps running and the table refreshes. Press Ctrl-C to stop.\n")
	default:
		b.WriteString("The cluster keeps running; the table is printed again when it changes. Send SIGINT or SIGTERM to stop.\n")
	}
	return b.String()
}

// watcher lists the PHIWorkloads and draws them.
type watcher struct {
	client   client.Client
	screen   *screen
	manager  *localcluster.Manager
	expected []types.NamespacedName // the PHIWorkloads the demo applied
	// ready are the samples that meet every safeguard: the demo has settled
	// only once each is Ready.
	ready   []types.NamespacedName
	refresh time.Duration
}

func (w *watcher) list(ctx context.Context) ([]phiguardv1alpha1.PHIWorkload, error) {
	var list phiguardv1alpha1.PHIWorkloadList
	if err := w.client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing PHIWorkloads: %w", err)
	}
	return list.Items, nil
}

// waitSettled redraws the table every refresh until every PHIWorkload has
// settled (see unsettled), and returns the settled list. It fails when timeout
// passes first, when a workload is Stalled, when the manager exits or when ctx
// is cancelled.
func (w *watcher) waitSettled(ctx context.Context, timeout time.Duration) ([]phiguardv1alpha1.PHIWorkload, error) {
	start := time.Now()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	ticker := time.NewTicker(w.refresh)
	defer ticker.Stop()
	for {
		list, err := w.list(ctx)
		if err != nil {
			return nil, err
		}
		pending := append(unsettled(list, w.expected), notReady(list, w.ready)...)
		pending = append(pending, notDrilled(list, w.ready)...)
		pending = append(pending, drillPending(list, w.expected)...)
		elapsed := time.Since(start).Round(time.Second)
		title := fmt.Sprintf("phiguard demo: waiting for the PHIWorkloads to settle (%s of %s)", elapsed, timeout)
		if len(pending) == 0 {
			title = fmt.Sprintf("phiguard demo: every PHIWorkload reports its %d safeguards and Ready (settled after %s)",
				len(safeguard.New(safeguard.Options{}).Names()), elapsed)
		}
		body, err := render(list, false)
		if err != nil {
			return nil, err
		}
		if err := w.screen.frame(title, body); err != nil {
			return nil, err
		}
		if len(pending) == 0 {
			return list, nil
		}
		if err := stalled(list); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("interrupted while waiting for the PHIWorkloads to settle: %w", context.Cause(ctx))
		case <-w.manager.Exited():
			return nil, w.manager.ExitError()
		case <-deadline.C:
			return nil, fmt.Errorf("the PHIWorkloads did not settle within %s (raise it with -timeout):\n  %s\nsee the manager log %s",
				timeout, strings.Join(pending, "\n  "), w.screen.rel(w.screen.paths.managerLog))
		case <-ticker.C:
		}
	}
}

// watch keeps redrawing until ctx is cancelled (the normal way to stop) or the
// manager exits. On a terminal it redraws every refresh; elsewhere it prints
// only when the output changed, to keep logs short.
func (w *watcher) watch(ctx context.Context) error {
	ticker := time.NewTicker(w.refresh)
	defer ticker.Stop()
	var last []byte
	for {
		select {
		case <-ctx.Done():
			fmt.Println()
			return nil
		case <-w.manager.Exited():
			return w.manager.ExitError()
		case <-ticker.C:
		}
		list, err := w.list(ctx)
		if err != nil {
			if ctx.Err() != nil {
				continue // interrupted during the request: stop at the top of the loop
			}
			return err
		}
		body, err := render(list, true)
		if err != nil {
			return err
		}
		if !w.screen.tty && bytes.Equal(body, last) {
			continue
		}
		last = body
		if w.screen.tty {
			body = append(body, w.screen.instructions(false)...)
		}
		title := "phiguard demo: PHIWorkloads at " + time.Now().Format(time.TimeOnly)
		if err := w.screen.frame(title, body); err != nil {
			return err
		}
	}
}

// render renders the table and, with details, the detail of each workload.
func render(list []phiguardv1alpha1.PHIWorkload, details bool) ([]byte, error) {
	var b bytes.Buffer
	if err := report.Table(&b, list); err != nil {
		return nil, err
	}
	if details {
		b.WriteString("\n")
		d, err := renderDetails(list)
		if err != nil {
			return nil, err
		}
		b.Write(d)
	}
	return b.Bytes(), nil
}

// renderDetails renders the per-safeguard detail of each workload, each
// followed by a blank line.
func renderDetails(list []phiguardv1alpha1.PHIWorkload) ([]byte, error) {
	var b bytes.Buffer
	for i := range list {
		if err := report.Detail(&b, &list[i]); err != nil {
			return nil, err
		}
		b.WriteString("\n")
	}
	return b.Bytes(), nil
}
