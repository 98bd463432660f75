#!/usr/bin/env bash
# Installs the Debian packages the local cluster and the integration tests need, and nothing else.
#
# Idempotent and cheap when warm: every package is checked with `dpkg -s` first, so apt (slow, needs
# root and the network) only runs when something is really missing.
#
#   busybox-static   the shell and tools inside the test container image
#   docker-registry  Debian's distribution 2.8 registry, the local OCI registry on 127.0.0.1:5001
#   openssl          handy for inspecting the cluster PKI by hand
#   clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt
#                    build the Wasm test modules (clang --target=wasm32-wasi, wat2wasm)
#   golang-go        only when no `go` is on PATH: build-binaries.sh compiles the cluster with it
#   procps iproute2  pgrep/ps and ss, used to find and verify cluster processes
set -euo pipefail

log() { echo "ensure-system-deps: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

wanted=(docker-registry openssl clang lld wasi-libc libclang-rt-14-dev-wasm32 wabt busybox-static procps iproute2)
command -v go >/dev/null 2>&1 || wanted+=(golang-go)

missing=()
for pkg in "${wanted[@]}"; do
  # `dpkg -s` also succeeds for removed-but-not-purged packages; require the installed state.
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  exit 0
fi

log "installing missing Debian packages: ${missing[*]}"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install by hand: ${missing[*]}"
if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    die "not root and no sudo; install by hand: apt-get install ${missing[*]}"
  fi
else
  sudo=()
fi

# Debian's docker-registry package would start a system service on 0.0.0.0:5000; the cluster runs
# its own registry on 127.0.0.1 instead, so keep maintainer scripts from starting any service.
cleanup_policy=0
if [[ ! -e /usr/sbin/policy-rc.d ]]; then
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
  cleanup_policy=1
fi
cleanup() {
  if ((cleanup_policy)); then "${sudo[@]}" rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q >&2 || die "apt-get update failed (is the Debian mirror reachable?)"
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
  || die "apt-get install failed for: ${missing[*]}"

for pkg in "${missing[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || die "$pkg is still not installed after apt-get"
done
log "done"
