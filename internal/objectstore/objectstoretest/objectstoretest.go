// Package objectstoretest starts the object store (versitygw, as
// hack/build-backup.sh builds it into bin/backup) for a test.
package objectstoretest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/phiguard/phiguard/internal/objectstore"
	"github.com/phiguard/phiguard/internal/testenv"
)

// Start runs the object store in a temporary directory for the test, and
// stops it at the end, failing the test if Stop fails. A missing binary
// fails the test, saying how to build it.
func Start(t testing.TB) *objectstore.Server {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(root, "bin", "backup", "versitygw")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s is missing: run `make objectstore` (hack/build-backup.sh versitygw builds it from Go modules): %v", path, err)
	}
	s, err := objectstore.Start(t.Context(), objectstore.Options{Binary: path, Dir: t.TempDir(), Out: t.Output()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping the object store: %v", err)
		}
	})
	return s
}
