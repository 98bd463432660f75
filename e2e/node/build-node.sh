#!/usr/bin/env bash
# Builds what the real node (e2e/node/realnode.py) runs, and caches it under
# $WASMKUBE_CACHE/node/ (default ~/.cache/wasmkube/node). Each piece lives in a directory named
# after its pin and is built only when missing, so a warm run costs a few stat calls:
#
#   containerd-<v>/   containerd, ctr, containerd-shim-runc-v2   (Go module proxy, CGO off)
#   pause-<v>/        pause (static, from pause.c in the k8s.io/kubernetes module) and pause.tar
#   shim-<hash>/      containerd-shim-wasmtime-v1 from e2e/shim (hash of its sources + Cargo.lock);
#                     cargo's own cache is shim-target/, so a source change recompiles one crate
#
# runc and the CNI plugins come from Debian (runc, containernetworking-plugins), installed here
# when missing. The last line on stdout is a bin directory with all of the above linked in; cold
# build times are appended to build-times.log next to the caches.
#
# `build-node.sh --cached` builds and installs nothing: it exits 0 if every piece is already in
# the cache, 1 if a build would be needed (how `make demo` decides whether to use the real node).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

base_cache="${WASMKUBE_CACHE:-$HOME/.cache/wasmkube}"
cache="$base_cache/node"
mkdir -p "$cache"
export GOMODCACHE="${GOMODCACHE:-$base_cache/gomod}"
export GOCACHE="${GOCACHE:-$base_cache/gobuild}"
export GOFLAGS="-mod=mod -buildvcs=false"
times_log="$cache/build-times.log"

log() { echo "build-node: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Run "$@" and record how long it took, so the cost of a cold cache is on record.
timed() {
  local what="$1"; shift
  local started=$SECONDS
  "$@"
  local took=$((SECONDS - started))
  echo "$(date -u +%FT%TZ) $what ${took}s" >>"$times_log"
  log "$what: built in ${took}s"
}

# Debian packages: runtime pieces (runc, CNI plugins) and the shim's build needs. The shim needs
# only pkg-config + libseccomp-dev (libcontainer's seccomp support) and protoc (containerd-client's
# generated gRPC code); dbus is vendored by the crate and built by cc.
ensure_packages() {
  local wanted=(runc containernetworking-plugins gcc libc6-dev pkg-config libseccomp-dev protobuf-compiler)
  local missing=() pkg status
  for pkg in "${wanted[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ "$(id -u)" == 0 ]] || die "missing Debian packages (need root to install): ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  # A fresh machine may have empty package lists: refresh them once before giving up.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
    || { apt-get update -q >&2 \
         && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } \
    || die "apt-get install failed for: ${missing[*]}"
}

# containerd's go.mod has no replace directives, so `go install module/cmd/x@version` builds the
# released code. CGO off: that leaves out only the btrfs snapshotter, which we do not use.
build_containerd() {
  local dir="$1" tmp="$1.tmp" mod="github.com/containerd/containerd/v2"
  rm -rf "$tmp"; mkdir -p "$tmp"
  GOBIN="$tmp" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X $mod/version.Version=$CONTAINERD_VERSION -X $mod/version.Package=$mod" \
    "$mod/cmd/containerd@$CONTAINERD_VERSION" "$mod/cmd/ctr@$CONTAINERD_VERSION" \
    "$mod/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
  mv "$tmp" "$dir"
}

# pause.c ships inside the k8s.io/kubernetes module zip; its Makefile builds it -Os -static.
build_pause() {
  local dir="$1" tmp="$1.tmp" src
  src="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_MODULE_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')/build/pause/linux/pause.c"
  [[ -f "$src" ]] || die "pause.c not found in k8s.io/kubernetes@$KUBERNETES_MODULE_VERSION"
  rm -rf "$tmp"; mkdir -p "$tmp"
  gcc -Os -Wall -Werror -static -DVERSION="v$PAUSE_VERSION-wasmkube" -o "$tmp/pause" "$src"
  python3 "$here/pack_image.py" --binary "$tmp/pause" --name "$PAUSE_IMAGE" --output "$tmp/pause.tar"
  mv "$tmp" "$dir"
}

shim_hash() {
  (cd "$repo/e2e/shim" && find Cargo.toml Cargo.lock src -type f -print0 | sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -c1-12
}

build_shim() {
  local dir="$1" tmp="$1.tmp"
  command -v cargo >/dev/null 2>&1 || die "cargo is not installed; it builds the Wasm shim"
  rm -rf "$tmp"; mkdir -p "$tmp"
  CARGO_TARGET_DIR="$cache/shim-target" cargo build --release --locked \
    --manifest-path "$repo/e2e/shim/Cargo.toml" >&2
  cp "$cache/shim-target/release/containerd-shim-wasmtime-v1" "$tmp/"
  mv "$tmp" "$dir"
}

containerd_dir="$cache/containerd-$CONTAINERD_VERSION"
pause_dir="$cache/pause-$PAUSE_VERSION"
shim_dir="$cache/shim-$(shim_hash)"

if [[ "${1:-}" == "--cached" ]]; then
  [[ -x "$containerd_dir/containerd" && -f "$pause_dir/pause.tar" && -x "$shim_dir/containerd-shim-wasmtime-v1" ]]
  exit
fi

command -v go >/dev/null 2>&1 || die "Go is not installed; it builds containerd"
ensure_packages

[[ -x "$containerd_dir/containerd" ]] || { log "building containerd $CONTAINERD_VERSION (cold: minutes)";
  timed "containerd-$CONTAINERD_VERSION" build_containerd "$containerd_dir"; }
[[ -f "$pause_dir/pause.tar" ]] || { log "building the pause image $PAUSE_IMAGE";
  timed "pause-$PAUSE_VERSION" build_pause "$pause_dir"; }
[[ -x "$shim_dir/containerd-shim-wasmtime-v1" ]] || {
  log "building containerd-shim-wasmtime-v1 (cold: many minutes; wasmtime is large)";
  timed "$(basename "$shim_dir")" build_shim "$shim_dir"; }

# One directory with everything, named after all the pins: e2e/node/containerd.py puts it first on
# containerd's PATH, which is how containerd finds containerd-shim-{runc-v2,wasmtime-v1}.
bindir="$cache/bin-$CONTAINERD_VERSION-pause-$PAUSE_VERSION-$(basename "$shim_dir")"
if [[ ! -e "$bindir/.complete" ]]; then
  mkdir -p "$bindir"
  for f in "$containerd_dir"/* "$pause_dir/pause.tar" \
           "$shim_dir/containerd-shim-wasmtime-v1"; do
    ln -sfn "$f" "$bindir/$(basename "$f")"
  done
  touch "$bindir/.complete"
fi
echo "$bindir"
