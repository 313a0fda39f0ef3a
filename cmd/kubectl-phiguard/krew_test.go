package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// manifestPath is the krew plugin manifest; krew wants it named after the plugin.
const manifestPath = "../../plugins/phiguard.yaml"

// The placeholders of the manifest that `make plugin-dist` replaces with
// the release's tag and each archive's sha256.
const (
	versionPlaceholder = "v0.0.0-release"
	sha256Placeholder  = "release-sha256-%s-%s" // os, arch
)

// krewPlugin is the part of krew's Plugin (v1alpha2) the manifest uses;
// decoding is strict, so a misspelt field fails.
type krewPlugin struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string         `json:"version"`
		Homepage         string         `json:"homepage"`
		ShortDescription string         `json:"shortDescription"`
		Description      string         `json:"description"`
		Platforms        []krewPlatform `json:"platforms"`
	} `json:"spec"`
}

type krewPlatform struct {
	Selector struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	URI    string `json:"uri"`
	SHA256 string `json:"sha256"`
	Bin    string `json:"bin"`
}

var (
	// semver is krew's version form: a semantic version with a leading v.
	semver = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
	// sha256Sum is a sha256 as krew wants it: 64 lowercase hex digits.
	sha256Sum = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

func TestKrewManifest(t *testing.T) {
	raw, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	var p krewPlugin
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		t.Fatalf("decoding %s: %v", manifestPath, err)
	}
	if p.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || p.Kind != "Plugin" {
		t.Errorf("apiVersion %q, kind %q: want krew.googlecontainertools.github.com/v1alpha2 Plugin", p.APIVersion, p.Kind)
	}
	if want := strings.TrimSuffix(filepath.Base(manifestPath), ".yaml"); p.Metadata.Name != want {
		t.Errorf("metadata.name %q: krew wants the manifest's file name, %q", p.Metadata.Name, want)
	}
	if !semver.MatchString(p.Spec.Version) {
		t.Errorf("spec.version %q is not a semantic version with a leading v", p.Spec.Version)
	}
	for field, v := range map[string]string{"homepage": p.Spec.Homepage, "shortDescription": p.Spec.ShortDescription, "description": p.Spec.Description} {
		if strings.TrimSpace(v) == "" {
			t.Errorf("spec.%s is empty", field)
		}
	}
	if !strings.HasPrefix(p.Spec.Homepage, "https://") {
		t.Errorf("spec.homepage %q is not an https URL", p.Spec.Homepage)
	}

	checkPlatforms(t, &p)
}

// checkPlatforms checks each platform's binary, archive URI and sha256, and
// that the platforms are those make plugin-dist builds.
func checkPlatforms(t *testing.T, p *krewPlugin) {
	t.Helper()
	platforms := make([]string, 0, len(p.Spec.Platforms))
	for _, pl := range p.Spec.Platforms {
		goos, arch := pl.Selector.MatchLabels["os"], pl.Selector.MatchLabels["arch"]
		platforms = append(platforms, goos+"/"+arch)
		if pl.Bin != "kubectl-phiguard" {
			t.Errorf("%s/%s: bin %q, want kubectl-phiguard (what make plugin builds)", goos, arch, pl.Bin)
		}
		wantURI := fmt.Sprintf("%s/releases/download/%s/kubectl-phiguard_%s_%s.tar.gz", p.Spec.Homepage, p.Spec.Version, goos, arch)
		if pl.URI != wantURI {
			t.Errorf("%s/%s: uri %q, want %q", goos, arch, pl.URI, wantURI)
		}
		if placeholder := fmt.Sprintf(sha256Placeholder, goos, arch); pl.SHA256 != placeholder && !sha256Sum.MatchString(pl.SHA256) {
			t.Errorf("%s/%s: sha256 %q is neither a sha256 nor the placeholder %q", goos, arch, pl.SHA256, placeholder)
		}
	}
	slices.Sort(platforms)
	if want := []string{"darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"}; !slices.Equal(platforms, want) {
		t.Errorf("platforms %v, want %v", platforms, want)
	}
}
