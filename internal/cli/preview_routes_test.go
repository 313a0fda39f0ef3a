package cli

import (
	"maps"
	"slices"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"

	"github.com/phiguard/phiguard/internal/safeguard"
	phischeme "github.com/phiguard/phiguard/internal/scheme"
)

// The preview routes requests by phiguard's generated webhook
// configurations: every webhook they name must be served by a handler the
// manager registers, and every handler the manager registers must be named
// there, or some judgement would be silently missing from the preview.
func TestWebhookRoutesMatchTheRegisteredHandlers(t *testing.T) {
	routes, err := webhookRoutes()
	if err != nil {
		t.Fatal(err)
	}
	scheme, err := phischeme.New()
	if err != nil {
		t.Fatal(err)
	}
	registry := safeguard.New(safeguard.Options{})
	// The manager is never started: no request reaches this address.
	server, err := registerWebhooks(&rest.Config{Host: "https://127.0.0.1:1"}, scheme,
		safeguard.AdmissionEnv{Registry: registry, Clock: clock.RealClock{}})
	if err != nil {
		t.Fatal(err)
	}
	var configured []string
	for _, r := range routes {
		if !slices.Contains(configured, r.path) {
			configured = append(configured, r.path)
		}
		if _, ok := server.handler(r.path); !ok {
			t.Errorf("webhook %s is configured at %s, where no handler is registered", r.name, r.path)
		}
	}
	served := slices.Sorted(maps.Keys(server.hooks))
	slices.Sort(configured)
	if !slices.Equal(configured, served) {
		t.Errorf("configured webhook paths %v, registered handlers %v", configured, served)
	}
	if len(routes) < 10 || routes[0].mutating != true || routes[len(routes)-1].mutating {
		t.Errorf("want the mutating webhooks first, then the validating ones; got %d routes", len(routes))
	}
}
