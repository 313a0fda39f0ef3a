package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DirSink stores segments as files under a local directory: the embedded
// default, on a volume the manager mounts. A segment appears whole or not at
// all (written aside, synced, then hard-linked into place, which also refuses
// to replace an existing one) and read-only.
type DirSink struct {
	root string
}

// NewDirSink returns a sink writing under dir, creating it if needed.
func NewDirSink(dir string) (*DirSink, error) {
	if dir == "" {
		return nil, errors.New("evidence directory is empty")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("evidence directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("creating evidence directory: %w", err)
	}
	return &DirSink{root: abs}, nil
}

// Location implements Sink.
func (d *DirSink) Location() string { return "dir:" + d.root }

// path returns the file of an object's name, refusing names that leave root.
func (d *DirSink) path(name string) (string, error) {
	clean := filepath.Clean(filepath.FromSlash(name))
	if clean == "." || filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("evidence object name %q leaves the directory", name)
	}
	return filepath.Join(d.root, clean), nil
}

// Put implements Sink.
func (d *DirSink) Put(_ context.Context, name string, data []byte) error {
	file, err := d.path(name)
	if err != nil {
		return err
	}
	dir := filepath.Dir(file)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".put-*")
	if err != nil {
		return fmt.Errorf("writing evidence %s: %w", name, err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing evidence %s: %w", name, err)
	}
	if err := tmp.Chmod(0o440); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("writing evidence %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("syncing evidence %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing evidence %s: %w", name, err)
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s: %w", name, ErrExists)
		}
		return fmt.Errorf("storing evidence %s: %w", name, err)
	}
	return syncDir(dir)
}

// syncDir makes a directory's new entries durable.
func syncDir(dir string) error {
	f, err := os.Open(dir) // #nosec G304 -- the sink's own directory
	if err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	defer func() { _ = f.Close() }()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}

// List implements Sink.
func (d *DirSink) List(_ context.Context, prefix string) ([]Entry, error) {
	var entries []Entry
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return fmt.Errorf("naming %s: %w", p, err)
		}
		name := filepath.ToSlash(rel)
		if strings.HasPrefix(name, prefix) {
			entries = append(entries, Entry{Name: name, Versions: 1})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing evidence under %s: %w", d.root, err)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// Get implements Sink.
func (d *DirSink) Get(_ context.Context, name string) ([]byte, error) {
	file, err := d.path(name)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(file) // #nosec G304 -- confined to the sink's directory by path
	if err != nil {
		return nil, fmt.Errorf("reading evidence %s: %w", name, err)
	}
	return data, nil
}
