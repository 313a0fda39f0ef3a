#!/usr/bin/env bash
# Runs govulncheck on every package. It reads the live Go vulnerability
# database (vuln.go.dev) when it answers, and otherwise the offline snapshot
# in ../shared/vulndb (or $VULNDB, an absolute path or file:// URL), saying
# which one it used and, for the snapshot, how old it is. It fails on any
# finding the README's "Vulnerabilities" section does not explain.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
govulncheck=${GOVULNCHECK:-$root/bin/govulncheck}

db=${VULNDB:-}
if [ -z "$db" ]; then
  # A TCP connection is enough to tell: nothing is fetched here.
  if timeout 5 bash -c 'exec 3<>/dev/tcp/vuln.go.dev/443' 2>/dev/null; then
    db=https://vuln.go.dev
  else
    db=$root/../shared/vulndb
  fi
fi
case "$db" in
  https://*|file://*) ;;
  *)
    if [ ! -f "$db/index/db.json" ]; then
      echo "vulncheck: vuln.go.dev is unreachable and no offline database is at $db (set VULNDB to a copy of the Go vulnerability database)" >&2
      exit 1
    fi
    db=file://$(cd "$db" && pwd)
    ;;
esac
echo "vulncheck: database $db"
if [[ $db == file://* ]]; then
  echo "vulncheck: snapshot last modified $(sed -n 's/.*"modified": *"\([^"]*\)".*/\1/p' "${db#file://}/index/db.json")"
fi
cd "$root"
# Findings the README explains (rows "| GO-YYYY-NNNN | ..." of its
# "Vulnerabilities" section) are accepted; any other fails.
accepted=$(sed -n '/^### Vulnerabilities/,/^##/p' README.md | grep -oE '^\| GO-[0-9]{4}-[0-9]+' | tr -d '| ' | sort -u)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
"$govulncheck" -db "$db" ./... > "$out" 2>&1
rc=$?
set -e
cat "$out"
if [ $rc -ne 0 ] && [ $rc -ne 3 ]; then
  echo "vulncheck: govulncheck failed (exit $rc)" >&2
  exit $rc
fi
found=$(grep -oE '^Vulnerability #[0-9]+: GO-[0-9]{4}-[0-9]+' "$out" | awk '{print $3}' | sort -u)
unexplained=$(comm -23 <(echo "$found" | sed '/^$/d') <(echo "$accepted" | sed '/^$/d'))
stale=$(comm -13 <(echo "$found" | sed '/^$/d') <(echo "$accepted" | sed '/^$/d'))
if [ -n "$stale" ]; then
  echo "vulncheck: the README explains findings govulncheck no longer reports (remove their rows): $(echo $stale)"
fi
if [ -n "$unexplained" ]; then
  echo "vulncheck: findings neither fixed by an upgrade nor explained in the README's Vulnerabilities section: $(echo $unexplained)" >&2
  exit 1
fi
echo "vulncheck: $(echo "$found" | sed '/^$/d' | wc -l) findings, each explained in the README"
