#!/usr/bin/env bash
# Builds one of the clients the e2e tests judge wasmkube with, and caches it like the cluster
# binaries (build-binaries.sh) under $WASMKUBE_CACHE/bin/<tool>-<pin>/, keyed by version (and, for
# our own checkers, by a hash of their source, so an edit rebuilds). A cached tool is never
# rebuilt; the first build's wall time is logged and kept in build.log beside the binary.
# Prints the binary's path on stdout.
#
#   build-tool.sh helm4           Helm 4 ($HELM4_VERSION), `go install` as released
#   build-tool.sh kstatus         e2e/tools/kstatus: sigs.k8s.io/cli-utils kstatus status.Compute
#   build-tool.sh argocd-health   e2e/tools/argocd-health: Argo CD's Lua health checks (about 7 min cold)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$(cd "$here/../tools" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${WASMKUBE_CACHE:-$HOME/.cache/wasmkube}"
export GOMODCACHE="${GOMODCACHE:-$cache/gomod}"
export GOCACHE="${GOCACHE:-$cache/gobuild}"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

log() { echo "build-tool: $*" >&2; }
die() { log "$*"; exit 1; }

tool="${1:-}"
command -v go >/dev/null 2>&1 || die "Go is not installed; it is needed to build $tool"

# A source tree's identity: the hash of its go.mod, go.sum and Go files.
source_hash() { (cd "$1" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12); }

# The pin in versions.env must be what the module's go.mod requires, or the cache key would lie.
require_pin() {
  local dir="$1" module="$2" version="$3"
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?$module[[:space:]]+$version\$" "$dir/go.mod" ||
    die "$dir/go.mod does not require $module $version (versions.env); update one of them"
}

case "$tool" in
  helm4)
    name=helm; key="helm-$HELM4_VERSION" ;;
  kstatus)
    require_pin "$tools/kstatus" sigs.k8s.io/cli-utils "$KSTATUS_CLI_UTILS_VERSION"
    name=kstatus; key="kstatus-cli-utils-$KSTATUS_CLI_UTILS_VERSION-$(source_hash "$tools/kstatus")" ;;
  argocd-health)
    require_pin "$tools/argocd-health" github.com/argoproj/argo-cd/v3 "$ARGOCD_VERSION"
    name=argocd-health; key="argocd-health-$ARGOCD_VERSION-$(source_hash "$tools/argocd-health")" ;;
  *)
    die "usage: $0 helm4|kstatus|argocd-health" ;;
esac

dir="$cache/bin/$key"
if [[ -x "$dir/$name" ]]; then
  echo "$dir/$name"; exit 0
fi

# One build at a time per tool, however many test sessions ask for it.
mkdir -p "$cache/bin"
exec 9>"$cache/bin/.$key.lock"
flock 9
if [[ -x "$dir/$name" ]]; then
  echo "$dir/$name"; exit 0
fi

staging="$(mktemp -d "$cache/bin/.$key.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
log "building $key (cold builds: helm4 about 3 min, kstatus under 2 min, argocd-health about 7 min)"
start=$SECONDS
case "$tool" in
  helm4)
    GOBIN="$staging" nice -n 10 go install -trimpath -ldflags "-s -w \
      -X helm.sh/helm/v4/internal/version.version=$HELM4_VERSION \
      -X helm.sh/helm/v4/internal/version.metadata=" "helm.sh/helm/v4/cmd/helm@$HELM4_VERSION" ;;
  kstatus|argocd-health)
    (cd "$tools/$tool" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$staging/$name" .) ;;
esac
elapsed=$((SECONDS - start))
echo "$key built in ${elapsed} s on $(date -u +%Y-%m-%dT%H:%M:%SZ) ($(go version))" >"$staging/build.log"
log "$(cat "$staging/build.log")"
mv "$staging" "$dir"
trap - EXIT
echo "$dir/$name"
