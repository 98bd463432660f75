#!/usr/bin/env bash
# Builds the local cluster's binaries from source through the Go module proxy and caches them
# under $WASMKUBE_CACHE/bin/<pin>/ (default ~/.cache/wasmkube). A binary already in the cache is
# never rebuilt, so a warm run costs a few stat calls. Prints the bin directory on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${WASMKUBE_CACHE:-$HOME/.cache/wasmkube}"
bindir="$cache/bin/k8s-$KUBERNETES_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION-helm-$HELM_VERSION"
mkdir -p "$bindir"
export GOMODCACHE="${GOMODCACHE:-$cache/gomod}"
export GOCACHE="${GOCACHE:-$cache/gobuild}"
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

log() { echo "build-binaries: $*" >&2; }

if ! command -v go >/dev/null 2>&1; then
  log "Go is not installed; it is needed to build the cluster binaries"; exit 1
fi

# Kubernetes server binaries and kubectl. The version ldflags make /version report the real
# release, which Helm's kubeVersion checks and kubectl's skew warnings read.
k8s_missing=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; do
  [[ -x "$bindir/$b" ]] || k8s_missing+=("$b")
done
if ((${#k8s_missing[@]})); then
  log "building ${k8s_missing[*]} $KUBERNETES_VERSION (cold build: several minutes)"
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  ldflags="-s -w"
  for kv in "gitVersion=$KUBERNETES_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=clean \
            gitCommit=0000000000000000000000000000000000000000 buildDate=1970-01-01T00:00:00Z; do
    ldflags+=" -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
  done
  pkgs=()
  for b in "${k8s_missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  (cd "$here/gobuild" && go build -trimpath -ldflags "$ldflags" -o "$bindir/" "${pkgs[@]}")
fi

if [[ ! -x "$bindir/etcd" ]]; then
  log "building etcd $ETCD_VERSION"
  (cd "$here/etcdbuild" && go build -trimpath -ldflags "-s -w" -o "$bindir/etcd" go.etcd.io/etcd/server/v3)
fi

# KWOK and Helm have no replace directives, so `go install pkg@version` builds them as released.
if [[ ! -x "$bindir/kwok" ]]; then
  log "building kwok $KWOK_VERSION"
  GOBIN="$bindir" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
fi
if [[ ! -x "$bindir/helm" ]]; then
  log "building helm $HELM_VERSION"
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  GOBIN="$bindir" go install -trimpath -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
fi

echo "$bindir"
