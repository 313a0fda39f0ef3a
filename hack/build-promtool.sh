#!/usr/bin/env bash
# Builds promtool from the github.com/prometheus/prometheus module (hack/promtool
# pins it as a tool) into bin/promtool, for the alert rule unit tests
# (charts/phiguard/tests). Nothing is downloaded but Go modules; it is rebuilt
# only when its stamp (module files + this script + Go version) changed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/hack/promtool"
out="${PROMTOOL_BIN_DIR:-$root/bin}"
mkdir -p "$out"

want=$(cat "$src/go.mod" "$src/go.sum" "$0" | sha256sum | cut -c1-16)-$(go env GOVERSION)
if [ -x "$out/promtool" ] && [ "$(cat "$out/.promtool.stamp" 2>/dev/null)" = "$want" ]; then
  echo "promtool: current ($out/promtool)"
  exit 0
fi
echo "promtool: building from Go modules..."
start=$(date +%s)
(
  cd "$src"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/promtool.tmp" github.com/prometheus/prometheus/cmd/promtool
)
mv "$out/promtool.tmp" "$out/promtool"
echo "$want" > "$out/.promtool.stamp"
echo "promtool: built in $(( $(date +%s) - start ))s"
