package cli_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/phiguard/phiguard/internal/cli"
)

func TestInventory(t *testing.T) {
	w := newEPHIWorld(t, "inv")

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"inventory-table", nil},
		{"inventory-json", []string{"-o", "json"}},
		{"inventory-mermaid", []string{"--diagram", "mermaid"}},
		{"inventory-dot", []string{"--diagram", "dot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, append([]string{"inventory", "-n", w.clinic}, tc.args...)...)
			if err != nil {
				t.Fatalf("inventory %v: %v", tc.args, err)
			}
			golden(t, tc.name, out)
		})
	}

	t.Run("json is the result", func(t *testing.T) {
		res := runJSON[cli.InventoryResult](t, "inventory", "-n", w.clinic, "-o", "json")
		if len(res.Workloads) != 2 || res.Workloads[1].Name != "records" || len(res.Workloads[1].Pods) != 2 ||
			res.Workloads[1].Backup.StorageLocation != "clinic-backups" {
			t.Errorf("unexpected workloads: %+v", res.Workloads)
		}
		var ingress bool
		for _, e := range res.Network.Edges {
			if e.From == "pods:"+w.web+"/frontend" && e.To == "phiworkload:"+w.clinic+"/records" {
				ingress = len(e.Ports) == 1 && e.Ports[0] == "TCP/https" && len(e.Policies) == 1 && e.Policies[0] == w.clinic+"/allow-web"
			}
		}
		if !ingress {
			t.Errorf("no edge from the web namespace's frontend pods to records on TCP/https: %+v", res.Network.Edges)
		}
	})
}

// runJSON runs the command, which prints JSON, and decodes what it prints.
func runJSON[T any](t *testing.T, args ...string) T {
	t.Helper()
	var res T
	out, err := run(t, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	return res
}

func TestInventoryErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inventory", "-o", "wide"}, `unknown output format "wide": use one of table, json, yaml`},
		{[]string{"inventory", "--diagram", "svg"}, `unknown diagram "svg": use mermaid or dot`},
		{[]string{"inventory", "--diagram", "mermaid", "-o", "json"}, "--diagram prints the network map as text"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
