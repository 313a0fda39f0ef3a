#!/usr/bin/env bash
# Builds the backup side of the local cluster from the Go module proxy into
# bin/backup: the Velero server (github.com/vmware-tanzu/velero, through the
# wrapper module in hack/velero, which carries Velero's replace of kopia), its
# object-store plugin velero-plugin-for-aws, and the S3-compatible object store
# versitygw. Nothing else is downloaded; each binary is rebuilt only when its
# version, this script or the Go version changes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="${BACKUP_BIN_DIR:-$root/bin/backup}"
mkdir -p "$out"

velero_plugin_for_aws=v1.14.3
versitygw=v1.8.0
gov=$(go env GOVERSION)
script=$(sha256sum "$0" | cut -c1-16)

# build NAME STAMP COMMAND...: runs COMMAND (which writes $out/NAME.tmp) unless
# $out/NAME is current for STAMP. One at a time: each link is large.
build() {
  local name=$1 want=$2-$script-$gov stamp
  stamp="$out/.$(basename "$1").stamp"
  shift 2
  if [ -x "$out/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    echo "backup: $name is current ($out/$name)"
    return
  fi
  echo "backup: building $name from Go modules (first build takes minutes; cached afterwards)..."
  local start
  start=$(date +%s)
  ( while sleep 30; do echo "backup: still building $name ($(( $(date +%s) - start ))s)"; done ) &
  local ticker=$!
  if ! "$@"; then kill $ticker 2>/dev/null || true; exit 1; fi
  kill $ticker 2>/dev/null || true
  mv "$out/$name.tmp" "$out/$name"
  echo "$want" > "$stamp"
  echo "backup: built $name in $(( $(date +%s) - start ))s"
}

velero_build() {
  (cd "$root/hack/velero" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/velero.tmp" ./cmd/velero)
}
# go install PACKAGE@VERSION honours the module's own go.mod; GOBIN then holds
# the binary under the package's last path element.
install_build() { # NAME PACKAGE@VERSION
  local tmp="$out/.gobin-$(basename "$1")"
  rm -rf "$tmp" && mkdir -p "$tmp"
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" "$2"
  mv "$tmp/$(basename "${2%@*}")" "$out/$1.tmp" && rm -rf "$tmp"
}

build velero "$(cat "$root/hack/velero/go.mod" "$root/hack/velero/go.sum" "$root/hack/velero/cmd/velero/main.go" | sha256sum | cut -c1-16)" velero_build
# Velero loads every executable in its --plugin-dir as a plugin: the AWS plugin
# lives in a directory of its own.
mkdir -p "$out/plugins"
build plugins/velero-plugin-for-aws "$velero_plugin_for_aws" install_build plugins/velero-plugin-for-aws \
  "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws@$velero_plugin_for_aws"
build versitygw "$versitygw" install_build versitygw "github.com/versity/versitygw/cmd/versitygw@$versitygw"
