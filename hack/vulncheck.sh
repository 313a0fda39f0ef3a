#!/usr/bin/env bash
# Runs govulncheck on every package. It reads the live Go vulnerability
# database (vuln.go.dev) when it answers, and otherwise the offline snapshot
# in ../shared/vulndb (or $VULNDB, an absolute path or file:// URL), saying
# which one it used and, for the snapshot, how old it is.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
govulncheck=${GOVULNCHECK:-$root/bin/govulncheck}

db=${VULNDB:-}
if [ -z "$db" ]; then
  if curl -fsS -m 5 -o /dev/null https://vuln.go.dev/index/db.json 2>/dev/null; then
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
"$govulncheck" -db "$db" ./...
