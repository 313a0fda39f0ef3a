#!/usr/bin/env bash
# Usage: hack/build-backup.sh [velero|velero-plugin-for-aws|versitygw...] (default: all)
#
# Builds the backup side of the local cluster from the Go module proxy into
# bin/backup: the Velero server (github.com/vmware-tanzu/velero, through the
# wrapper module in hack/velero, which carries Velero's replace of kopia), its
# object-store plugin velero-plugin-for-aws, and the S3-compatible object store
# versitygw. Nothing else is downloaded; each binary is rebuilt only when its
# version or the Go version changes.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out="${BACKUP_BIN_DIR:-$root/bin/backup}"
mkdir -p "$out"

velero_plugin_for_aws=v1.14.3
versitygw=v1.8.0
gov=$(go env GOVERSION)

# build NAME STAMP COMMAND...: runs COMMAND (which writes $out/NAME.tmp) unless
# $out/NAME is current for STAMP. One at a time: each link is large.
build() {
  local name=$1 want=$2-$gov stamp
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

# Velero's version, as its release build stamps it: Velero writes it into
# every backup's metadata.
velero_version=$(cd "$root/hack/velero" && go list -m -f '{{.Version}}' github.com/vmware-tanzu/velero)
velero_build() {
  (cd "$root/hack/velero" && CGO_ENABLED=0 go build -trimpath -o "$out/velero.tmp" \
    -ldflags "-s -w -X github.com/vmware-tanzu/velero/pkg/buildinfo.Version=$velero_version -X github.com/vmware-tanzu/velero/pkg/buildinfo.GitTreeState=clean" ./cmd/velero)
}
# go install PACKAGE@VERSION honours the module's own go.mod; GOBIN then holds
# the binary under the package's last path element.
install_build() { # NAME PACKAGE@VERSION [LDFLAGS]
  local tmp="$out/.gobin-$(basename "$1")"
  rm -rf "$tmp" && mkdir -p "$tmp"
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w ${3:-}" "$2"
  mv "$tmp/$(basename "${2%@*}")" "$out/$1.tmp" && rm -rf "$tmp"
}

components=("$@")
[ ${#components[@]} -gt 0 ] || components=(velero velero-plugin-for-aws versitygw)
for c in "${components[@]}"; do
  case $c in
  velero)
    build velero "$velero_version-$(cat "$root/hack/velero/go.mod" "$root/hack/velero/go.sum" "$root/hack/velero/cmd/velero/main.go" | sha256sum | cut -c1-16)" velero_build ;;
  velero-plugin-for-aws)
    # Velero loads every executable in its --plugin-dir as a plugin: the AWS
    # plugin lives in a directory of its own.
    mkdir -p "$out/plugins"
    build plugins/velero-plugin-for-aws "$velero_plugin_for_aws" install_build plugins/velero-plugin-for-aws \
      "github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws@$velero_plugin_for_aws" ;;
  versitygw)
    build versitygw "$versitygw-stamped" install_build versitygw "github.com/versity/versitygw/cmd/versitygw@$versitygw" "-X main.Version=$versitygw" ;;
  *) echo "unknown component: $c (velero, velero-plugin-for-aws, versitygw)" >&2; exit 2 ;;
  esac
done
