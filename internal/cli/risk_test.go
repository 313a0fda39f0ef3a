package cli_test

import (
	"strings"
	"testing"

	"github.com/phiguard/phiguard/internal/cli"
)

func TestRisk(t *testing.T) {
	w := newEPHIWorld(t, "risk")
	at := ephiNow.Format("2006-01-02T15:04:05Z07:00")

	for _, tc := range []struct{ name, output string }{
		{"risk-markdown", "table"}, {"risk-json", "json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, "risk", "-n", w.clinic, "--at", at, "-o", tc.output)
			if err != nil {
				t.Fatalf("risk -o %s: %v", tc.output, err)
			}
			golden(t, tc.name, out)
		})
	}

	t.Run("json is the result", func(t *testing.T) {
		res := runJSON[cli.RiskResult](t, "risk", "-n", w.clinic, "--at", at, "-o", "json")
		if len(res.Decisions) != 2 || !res.Decisions[0].Expired || res.Decisions[1].Expired ||
			len(res.UnencryptedStorageClasses) != 1 || res.UnencryptedStorageClasses[0].StorageClass != w.plain {
			t.Errorf("unexpected result: %+v", res)
		}
	})

	t.Run("a later time finds more expired", func(t *testing.T) {
		res := runJSON[cli.RiskResult](t, "risk", "-n", w.clinic, "--at", "2030-01-20T00:00:00Z", "-o", "json")
		if len(res.Decisions) != 2 || !res.Decisions[0].Expired || !res.Decisions[1].Expired {
			t.Errorf("want both decisions expired, got %+v", res.Decisions)
		}
	})

	t.Run("every namespace", func(t *testing.T) {
		out, err := run(t, "risk", "-A", "--at", at)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"- Namespaces: every namespace of the cluster", "| " + w.clinic + "/records |", "| " + w.clinic + "/intake |"} {
			if !strings.Contains(out, want) {
				t.Errorf("risk -A does not contain %q:\n%s", want, out)
			}
		}
	})
}

func TestRiskErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"risk", "-o", "wide"}, `unknown output format "wide": use one of table, json, yaml`},
		{[]string{"risk", "--at", "tomorrow"}, `--at "tomorrow" is not an RFC 3339 time`},
		{[]string{"risk", "--expiring-within", "-1h"}, "--expiring-within -1h0m0s is negative"},
	} {
		_, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got error %v, want one containing %q", tc.args, err, tc.want)
		}
	}
}
