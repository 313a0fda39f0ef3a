package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTable(t *testing.T) {
	dir := t.TempDir()
	figures := filepath.Join(dir, "figures.jsonl")
	bench := filepath.Join(dir, "bench.txt")
	if err := os.WriteFile(figures, []byte(`{"name":"manager_rss_mib","value":70,"unit":"MiB","scale":"1000 PHIWorkloads, 2000 pods"}
{"name":"manager_rss_mib","value":140,"unit":"MiB","scale":"10000 PHIWorkloads, 20000 pods"}
{"name":"quiet_writes","value":3,"unit":"writes","scale":"20 PHIWorkloads, 60 pods"}
{"name":"quiet_writes","value":0,"unit":"writes","scale":"10000 PHIWorkloads, 20000 pods"}
{"name":"pod_create_added_p99_ms","value":-25.4,"unit":"ms","scale":"12000 pods at 200/s","unjudged":"the apiserver alone took p99 2.362s at this rate (saturated)"}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bench, []byte("BenchmarkPodInjection-2   \t    2000\t    196260 ns/op\t    140900 p50-ns\t   1569261 p99-ns\t  102922 B/op\t     888 allocs/op\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	all, err := read(figures, bench)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	write(&out, all)
	for _, want := range []string{
		"| manager RSS (bin/manager, VmRSS) | ≤ 64 MiB at 1,000 | 70 MiB | 1000 PHIWorkloads, 2000 pods | **no** |",
		"| manager RSS (bin/manager, VmRSS) | ≤ 150 MiB at 10,000 | 140 MiB | 10000 PHIWorkloads, 20000 pods | yes |",
		"| writes in a quiet window after a full re-verification | 0 | 0 writes | 10000 PHIWorkloads, 20000 pods | yes |",
		"| pod handler p99 (injection) | ≤ 1 ms | 1.569 ms | in process, go test -bench | **no** |",
		"| pod handler allocated per request (injection) | ≤ 100 KB | 102.9 KB | in process, go test -bench | **no** |",
		"| leader SIGKILLed: the new leader's first reconcile | ≤ 20 s | not measured | | — |",
		"| pod creates at 200/s with injection: added p99 | ≤ 15 ms | -25.4 ms | 12000 pods at 200/s | — (not judged: the apiserver alone took p99 2.362s at this rate (saturated)) |",
		"2 goals met, 3 missed, 15 not measured or not judged.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
