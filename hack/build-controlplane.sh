#!/usr/bin/env bash
# Builds the local control plane (etcd, kube-apiserver, and on request
# kube-controller-manager and kube-scheduler) from Go modules into bin/k8s.
# Nothing is downloaded but Go modules; each binary is rebuilt only when its
# stamp (module files + this script + Go version) changed.
#
# Usage: hack/build-controlplane.sh [component...]   (default: etcd kube-apiserver)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/hack/controlplane"
out="${K8S_BIN_DIR:-$root/bin/k8s}"
mkdir -p "$out"

k8s_version=v1.37.2
ldflags="-s -w -X k8s.io/component-base/version.gitVersion=${k8s_version} \
-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=37 \
-X k8s.io/component-base/version.gitTreeState=clean"

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(etcd kube-apiserver)

stamp=$(cat "$src/go.mod" "$src/go.sum" "$0" | sha256sum | cut -c1-16)-$(go env GOVERSION)

for c in "${components[@]}"; do
  [ -f "$src/cmd/$c/main.go" ] || { echo "unknown component: $c" >&2; exit 2; }
  want="$stamp-$(sha256sum "$src/cmd/$c/main.go" | cut -c1-16)"
  if [ -x "$out/$c" ] && [ "$(cat "$out/.$c.stamp" 2>/dev/null)" = "$want" ]; then
    echo "control plane: $c is current ($out/$c)"
    continue
  fi
  echo "control plane: building $c from Go modules (first build takes minutes; cached afterwards)..."
  start=$(date +%s)
  # Linking a Kubernetes binary peaks near 3 GB: build one at a time.
  (
    cd "$src"
    # Print a progress line every 30 s so a long first build is visibly alive.
    ( while sleep 30; do echo "control plane: still building $c ($(( $(date +%s) - start ))s)"; done ) &
    ticker=$!
    trap 'kill $ticker 2>/dev/null || true' EXIT
    CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$out/$c.tmp" "./cmd/$c"
  )
  mv "$out/$c.tmp" "$out/$c"
  echo "$want" > "$out/.$c.stamp"
  echo "control plane: built $c in $(( $(date +%s) - start ))s"
done
