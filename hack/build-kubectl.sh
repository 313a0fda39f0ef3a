#!/usr/bin/env bash
# Builds kubectl from the k8s.io/kubectl module (hack/kubectl, at the control
# plane's version) into bin/k8s/kubectl, for the end-to-end suite and the demo.
# Nothing is downloaded but Go modules; it is rebuilt only when its stamp
# (module files + main + this script + Go version) changed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/hack/kubectl"
out="${K8S_BIN_DIR:-$root/bin/k8s}"
mkdir -p "$out"

want=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" "$0" | sha256sum | cut -c1-16)-$(go env GOVERSION)
if [ -x "$out/kubectl" ] && [ "$(cat "$out/.kubectl.stamp" 2>/dev/null)" = "$want" ]; then
  echo "kubectl: current ($out/kubectl)"
  exit 0
fi
echo "kubectl: building from Go modules..."
start=$(date +%s)
(
  cd "$src"
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=v1.37.2 \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37" -o "$out/kubectl.tmp" .
)
mv "$out/kubectl.tmp" "$out/kubectl"
echo "$want" > "$out/.kubectl.stamp"
echo "kubectl: built in $(( $(date +%s) - start ))s"
