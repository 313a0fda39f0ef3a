#!/usr/bin/env bash
# Runs each Go native fuzz target of test/fuzz for FUZZTIME (default 60s),
# one after another (go test fuzzes one target at a time), and prints per
# target the executions, their rate and whether it found a failing input,
# then the totals. A failing input is written by go test to
# test/fuzz/testdata/fuzz/<target>/ and its failure printed; the script then
# exits 1, after the other targets have run.
set -euo pipefail

cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-60s}
PKG=./test/fuzz

targets=$(go test -list '^Fuzz' "$PKG" | grep '^Fuzz')
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

# seconds turns go test's elapsed time (such as 1m0s or 59s) into seconds.
seconds() {
	awk '{ s = 0; rest = $0
		while (match(rest, /^[0-9.]+[hms]/)) {
			v = substr(rest, 1, RLENGTH - 1); u = substr(rest, RLENGTH, 1)
			s += v * (u == "h" ? 3600 : u == "m" ? 60 : 1); rest = substr(rest, RLENGTH + 1)
		}
		print s }' <<<"$1"
}

total=0
failed=()
printf '%-22s %12s %10s  %s\n' target executions per-second result
for t in $targets; do
	log="$logs/$t.log"
	if go test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" "$PKG" >"$log" 2>&1; then
		result=ok
	else
		result=FAILED
		failed+=("$t")
	fi
	last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -1 || true)
	execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
	elapsed=$(sed -nE 's/^fuzz: elapsed: ([0-9hms.]+),.*/\1/p' <<<"$last")
	execs=${execs:-0}
	secs=$(seconds "${elapsed:-0s}")
	rate=$(awk -v e="$execs" -v s="$secs" 'BEGIN { printf "%d", (s > 0 ? e / s : 0) }')
	total=$((total + execs))
	printf '%-22s %12d %10d  %s\n' "$t" "$execs" "$rate" "$result"
	if [[ $result == FAILED ]]; then
		grep -vE '^fuzz: (elapsed|minimizing)' "$log" | sed 's/^/    /'
	fi
done
printf '%-22s %12d\n' total "$total"
if ((${#failed[@]} > 0)); then
	echo "failing inputs found by: ${failed[*]} (see test/fuzz/testdata/fuzz/)" >&2
	exit 1
fi
