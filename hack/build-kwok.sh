#!/usr/bin/env bash
# Builds kwok and kwokctl (sigs.k8s.io/kwok, pinned below) from the Go module
# proxy into bin/kwok, for the full local cluster. Nothing else is downloaded;
# the binaries are rebuilt only when the version or Go version changes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/bin/kwok"
version=v0.8.0
want="$version-$(go env GOVERSION)"
mkdir -p "$out"
if [ -x "$out/kwok" ] && [ -x "$out/kwokctl" ] && [ "$(cat "$out/.stamp" 2>/dev/null)" = "$want" ]; then
  echo "kwok: $version is current ($out)"
  exit 0
fi
start=$(date +%s)
echo "kwok: building kwok and kwokctl $version from Go modules (first build takes a few minutes)..."
# One at a time: each link is large.
for c in kwokctl kwok; do
  GOBIN="$out" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/$c@$version"
done
echo "$want" > "$out/.stamp"
echo "kwok: built in $(( $(date +%s) - start ))s"
