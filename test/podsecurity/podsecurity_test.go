// Package podsecurity checks that the manager's pod, as config/manager
// installs it, passes the restricted Pod Security Standard (see
// internal/podsecurity); test/chart checks the Helm chart's the same way.
package podsecurity

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phiguard/phiguard/internal/podsecurity"
)

func manifest(t *testing.T) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "manager", "manager.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestConfigManagerIsRestricted(t *testing.T) {
	problems, err := podsecurity.Problems(manifest(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

// TestTheCheckCanFail keeps the check honest: a container that allows
// privilege escalation fails it.
func TestTheCheckCanFail(t *testing.T) {
	data := string(manifest(t))
	weakened := strings.Replace(data, "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true", 1)
	if weakened == data {
		t.Fatal("the manifest no longer sets allowPrivilegeEscalation: false")
	}
	deployments, err := podsecurity.Deployments([]byte(weakened))
	if err != nil {
		t.Fatal(err)
	}
	detail, err := podsecurity.Restricted(deployments[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "allowPrivilegeEscalation") {
		t.Errorf("a container allowing privilege escalation passed the restricted check (detail %q)", detail)
	}
}
