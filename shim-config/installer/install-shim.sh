#!/usr/bin/env bash
# Installs one containerd Wasm shim on a node and registers it as a containerd runtime handler.
#
# Meant to run in a privileged pod with the node's root filesystem mounted at NODE_ROOT (see
# daemonset.yaml), or by hand on a node with NODE_ROOT=/. Every step is idempotent: a second run on
# an unchanged node changes no file, makes no backup and does not restart containerd.
#
# Settings (environment variables):
#   SHIM_NAME          short name used in the node label, e.g. wasmtime or spin (required)
#   SHIM_BINARY        path of the shim binary to install, inside this container (required)
#   RUNTIME_TYPE       containerd runtime type, io.containerd.<name>.<version>, e.g.
#                      io.containerd.wasmtime.v1 (required). containerd turns it into the binary
#                      name containerd-shim-<name>-<version>, looked up on its PATH.
#   HANDLER            the runtimes.<handler> key, which RuntimeClass.handler must name (default:
#                      SHIM_NAME)
#   NODE_ROOT          where the node's root filesystem is (default /)
#   CONTAINERD_CONFIG  containerd's config file (default $NODE_ROOT/etc/containerd/config.toml)
#   NEW_CONFIG_VERSION config version written when CONTAINERD_CONFIG does not exist (default 2)
#   SYSTEMD_CGROUP     true|false for the runtime's SystemdCgroup option (default: true when the
#                      config already sets SystemdCgroup = true for another runtime, else false;
#                      it must match the kubelet's cgroup driver or pod metrics break)
#   LINK_DIR           a directory on containerd's PATH, relative to the node, where the binary is
#                      linked (default /usr/local/bin)
#   TOML_CHECK         auto|python|grep: how the config is checked (default auto: python when a
#                      python3 with tomllib is available, else grep). python parses the config
#                      and the result (refusing invalid TOML); grep only reads the version line and
#                      looks for a runtime of the same name, so a config that was already invalid
#                      stays invalid.
#   RESTART_CMD        shell command that restarts containerd (default: see restart_containerd)
#   CONTAINERD_SERVICE systemd unit restarted by the default RESTART_CMD (default containerd;
#                      k3s nodes use k3s or k3s-agent, RKE2 nodes rke2-server or rke2-agent)
#   NODE_NAME          the node to label wasmkube.dev/shim-<SHIM_NAME>=ready (downward API)
#   LABEL_CMD          shell command that labels the node; it sees NODE_NAME, SHIM_LABEL_KEY and
#                      SHIM_LABEL_VALUE in its environment (default: kubectl, else the API
#                      server through python3, with the pod's service account)
#
# Exit codes: 0 done (or nothing to do), 2 bad settings, 3 containerd config refused (the file is
# left untouched), 4 containerd restart failed, 5 labelling the node failed.
set -euo pipefail

log() { echo "install-shim: $*" >&2; }
die() {
  local code="$1"
  shift
  log "error: $*"
  exit "$code"
}

NODE_ROOT="${NODE_ROOT:-/}"
NODE_ROOT="${NODE_ROOT%/}"  # "/" becomes "", so "$NODE_ROOT/etc" is "/etc"
SHIM_NAME="${SHIM_NAME:-}"
SHIM_BINARY="${SHIM_BINARY:-}"
RUNTIME_TYPE="${RUNTIME_TYPE:-}"
HANDLER="${HANDLER:-$SHIM_NAME}"
CONTAINERD_CONFIG="${CONTAINERD_CONFIG:-$NODE_ROOT/etc/containerd/config.toml}"
NEW_CONFIG_VERSION="${NEW_CONFIG_VERSION:-2}"
SYSTEMD_CGROUP="${SYSTEMD_CGROUP:-}"
LINK_DIR="${LINK_DIR:-/usr/local/bin}"
TOML_CHECK="${TOML_CHECK:-auto}"
RESTART_CMD="${RESTART_CMD:-}"
CONTAINERD_SERVICE="${CONTAINERD_SERVICE:-containerd}"
NODE_NAME="${NODE_NAME:-}"
LABEL_CMD="${LABEL_CMD:-}"

# Where things live as the node sees them (used in symlinks and messages) and as we reach them.
INSTALL_DIR="/opt/wasmkube/bin"
STATE_DIR="/opt/wasmkube/state"
dns_label='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'

validate_settings() {
  [[ -n "$SHIM_NAME" ]] || die 2 "SHIM_NAME is required (e.g. wasmtime)"
  [[ "$SHIM_NAME" =~ $dns_label ]] || die 2 "SHIM_NAME '$SHIM_NAME' must be a DNS label"
  [[ "$HANDLER" =~ $dns_label ]] || die 2 "HANDLER '$HANDLER' must be a DNS label (RuntimeClass rule)"
  [[ -n "$SHIM_BINARY" && -f "$SHIM_BINARY" ]] || die 2 "SHIM_BINARY '$SHIM_BINARY' is not a file"
  # containerd maps io.containerd.<name>.<version> to the binary containerd-shim-<name>-<version>.
  [[ "$RUNTIME_TYPE" =~ ^io\.containerd\.([a-z0-9-]+)\.(v[0-9]+)$ ]] \
    || die 2 "RUNTIME_TYPE '$RUNTIME_TYPE' must look like io.containerd.<name>.v<N>"
  SHIM_FILE="containerd-shim-${BASH_REMATCH[1]}-${BASH_REMATCH[2]}"
  case "$NEW_CONFIG_VERSION" in 2 | 3) ;; *) die 2 "NEW_CONFIG_VERSION must be 2 or 3" ;; esac
  case "$SYSTEMD_CGROUP" in "" | true | false) ;; *) die 2 "SYSTEMD_CGROUP must be true or false" ;; esac
  case "$TOML_CHECK" in
    auto) if python3 -c 'import tomllib' 2>/dev/null; then TOML_CHECK="python"; else TOML_CHECK="grep"; fi ;;
    python) python3 -c 'import tomllib' 2>/dev/null || die 2 "TOML_CHECK=python needs python3 >= 3.11" ;;
    grep) ;;
    *) die 2 "TOML_CHECK must be auto, python or grep" ;;
  esac
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Copies the binary only when its content differs. The new file is renamed over the old one rather
# than written in place: running shims keep executing the old inode, and writing to a busy
# executable would fail with ETXTBSY. containerd starts a new shim process per pod, so a new
# binary is picked up without restarting containerd.
install_binary() {
  local dest="$NODE_ROOT$INSTALL_DIR/$SHIM_FILE"
  mkdir -p "$NODE_ROOT$INSTALL_DIR"
  if [[ -f "$dest" && "$(sha256_of "$dest")" == "$(sha256_of "$SHIM_BINARY")" ]]; then
    log "$dest is up to date"
  else
    local tmp="$dest.tmp.$$"
    cp "$SHIM_BINARY" "$tmp"
    chmod 0755 "$tmp"
    mv -f "$tmp" "$dest"
    log "installed $dest (sha256 $(sha256_of "$dest"))"
  fi
  # runtime_type names the shim by type, so containerd must find the binary on its PATH. A link in
  # a PATH directory is used instead of an absolute runtime_type or BinaryName because containerd
  # fails to start shims outside its PATH in some versions (containerd/containerd#11480).
  local link="$NODE_ROOT$LINK_DIR/$SHIM_FILE"
  if [[ "$(readlink "$link" 2>/dev/null || true)" != "$INSTALL_DIR/$SHIM_FILE" ]]; then
    mkdir -p "$NODE_ROOT$LINK_DIR"
    ln -sfn "$INSTALL_DIR/$SHIM_FILE" "$link"
    log "linked $LINK_DIR/$SHIM_FILE -> $INSTALL_DIR/$SHIM_FILE"
  fi
}

# Prints the config's top-level version. python mode parses the whole file (and so rejects invalid
# TOML); grep mode only reads "version = N" before the first table header.
config_version() {
  local file="$1"
  if [[ "$TOML_CHECK" == python ]]; then
    python3 - "$file" <<'PY'
import sys, tomllib
try:
    with open(sys.argv[1], "rb") as f:
        doc = tomllib.load(f)
except tomllib.TOMLDecodeError as err:
    sys.exit(f"not valid TOML: {err}")
version = doc.get("version")
print(version if isinstance(version, int) else "")
PY
  else
    awk '/^[[:space:]]*\[/ { exit }
         /^[[:space:]]*version[[:space:]]*=/ {
           v = $0; sub(/^[^=]*=[[:space:]]*/, "", v); sub(/[[:space:]]*(#.*)?$/, "", v); print v; exit
         }' "$file"
  fi
}

# The CRI plugin that owns runtime handlers moved in containerd 2.x (config version 3).
cri_plugin_for_version() {
  case "$1" in
    2) echo "io.containerd.grpc.v1.cri" ;;
    3) echo "io.containerd.cri.v1.runtime" ;;
    *) return 1 ;;
  esac
}

runtime_block() {
  local plugin="$1" systemd_cgroup="$2"
  local table="plugins.\"$plugin\".containerd.runtimes.$HANDLER"
  cat <<EOF
# BEGIN wasmkube $HANDLER
# Managed by wasmkube's install-shim.sh; edits between these markers are overwritten.
[$table]
  runtime_type = "$RUNTIME_TYPE"
[$table.options]
  SystemdCgroup = $systemd_cgroup
# END wasmkube $HANDLER
EOF
}

# Prints the file with this handler's marker block replaced by the file $2 (pass /dev/null to drop
# it), in place so that the order of several shims' blocks stays stable. Fails when the markers are
# unbalanced, because then we cannot tell which lines are ours.
replace_our_block() {
  awk -v begin="# BEGIN wasmkube $HANDLER" -v end="# END wasmkube $HANDLER" -v block="$2" '
    $0 == begin { if (inside) exit 1; inside = 1; while ((getline line < block) > 0) print line; next }
    $0 == end   { if (!inside) exit 1; inside = 0; next }
    !inside     { print }
    END         { if (inside) exit 1 }' "$1"
}

# Checks the candidate config with tomllib: valid TOML (a duplicate table would stop containerd
# from starting) and the runtime reachable at the path containerd will read.
python_check_candidate() {
  python3 - "$1" "$2" "$HANDLER" "$RUNTIME_TYPE" <<'PY'
import sys, tomllib
path, plugin, handler, runtime_type = sys.argv[1:]
try:
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    found = doc["plugins"][plugin]["containerd"]["runtimes"][handler]["runtime_type"]
except tomllib.TOMLDecodeError as err:
    sys.exit(f"the updated config would not be valid TOML: {err}")
except (KeyError, TypeError):
    sys.exit(f"the updated config does not define plugins.{plugin}.containerd.runtimes.{handler}")
if found != runtime_type:
    sys.exit(f"runtime_type is {found!r}, expected {runtime_type!r}")
PY
}

# Writes the runtime section; sets CONFIG_CHANGED=1 when the file's bytes changed.
configure_containerd() {
  CONFIG_CHANGED=0
  local config="$CONTAINERD_CONFIG" existed=1
  if [[ ! -e "$config" ]]; then
    # containerd runs on built-in defaults without a config file, and a file holding only a
    # version line and our section keeps those defaults (containerd merges it over them).
    # Version 2 is the default because containerd 2.x also reads it (migrating it on load),
    # while containerd 1.x cannot read version 3.
    existed=0
    log "$config does not exist; starting a version $NEW_CONFIG_VERSION config"
  fi

  # Work on a snapshot so that every check and the final comparison see the same bytes.
  local current="$WORK/current.toml" stripped="$WORK/stripped.toml" candidate="$WORK/candidate.toml"
  if ((existed)); then
    [[ -f "$config" && -r "$config" ]] || die 3 "$config is not a readable file"
    cp "$config" "$current"
  fi

  local version plugin
  if ((existed)); then
    version="$(config_version "$current" 2>&1)" || die 3 "cannot read $config: $version; file left untouched"
  else
    version="$NEW_CONFIG_VERSION"
  fi
  if [[ -z "$version" ]]; then
    die 3 "$config has no top-level 'version = 2|3' line; version 1 configs (the old plugins.cri layout) are not supported; file left untouched"
  fi
  plugin="$(cri_plugin_for_version "$version")" \
    || die 3 "$config has 'version = $version'; only 2 (containerd 1.x) and 3 (containerd 2.x) are supported; file left untouched"

  if ((existed)); then
    replace_our_block "$current" /dev/null >"$stripped" \
      || die 3 "$config has an unbalanced '# BEGIN/END wasmkube $HANDLER' marker pair; fix it by hand; file left untouched"
  else
    printf 'version = %s\n' "$version" >"$stripped"
  fi

  # A runtime of the same name defined outside our markers (by hand, or by k3s, which adds Wasm
  # runtimes itself) would make a duplicate table: leave it to its owner.
  if grep -Eq "containerd\.runtimes\.\"?${HANDLER}\"?([].]|$)" "$stripped"; then
    die 3 "$config already defines a '$HANDLER' runtime outside wasmkube's markers; choose another HANDLER or remove it; file left untouched"
  fi

  local systemd_cgroup="$SYSTEMD_CGROUP"
  if [[ -z "$systemd_cgroup" ]]; then
    # Follow the other runtimes (runc): the kubelet's cgroup driver is what has to match.
    if grep -Eq '^[[:space:]]*SystemdCgroup[[:space:]]*=[[:space:]]*true' "$stripped"; then
      systemd_cgroup=true
    else
      systemd_cgroup=false
    fi
  fi

  local block="$WORK/block.toml"
  runtime_block "$plugin" "$systemd_cgroup" >"$block"
  if ((existed)) && grep -qxF "# BEGIN wasmkube $HANDLER" "$current"; then
    replace_our_block "$current" "$block" >"$candidate"
  else
    cat "$stripped" >"$candidate"
    # Keep a last line without a newline from running into our first marker.
    if [[ -n "$(tail -c1 "$candidate")" ]]; then
      echo >>"$candidate"
    fi
    cat "$block" >>"$candidate"
  fi

  if ((existed)) && cmp -s "$candidate" "$current"; then
    log "$config already has the $HANDLER runtime ($RUNTIME_TYPE)"
    return 0
  fi

  if [[ "$TOML_CHECK" == python ]]; then
    local problem
    problem="$(python_check_candidate "$candidate" "$plugin" 2>&1)" \
      || die 3 "refusing to write $config: $problem; file left untouched"
  fi

  mkdir -p "$(dirname "$config")"
  # Write next to the config and rename, so containerd never reads a half-written file; copy the
  # original first so the new file keeps its mode and owner.
  local staged="$config.wasmkube-new.$$"
  if ((existed)); then
    local backup
    backup="$config.wasmkube-backup-$(date -u +%Y%m%dT%H%M%SZ)"
    if [[ -e "$backup" ]]; then backup="$backup-$$"; fi
    cp -p "$config" "$backup"
    log "backed up $config to $backup"
    cp -p "$config" "$staged"
    cat "$candidate" >"$staged"
  else
    cp "$candidate" "$staged"
    chmod 0644 "$staged"
  fi
  mv -f "$staged" "$config"
  CONFIG_CHANGED=1
  log "configured runtime '$HANDLER' ($RUNTIME_TYPE) under plugins.\"$plugin\" in $config"
}

# containerd reads its config only at start. The default is a restart through the host's systemd
# (pod needs hostPID to reach PID 1's mount namespace). Without systemd we do not guess: sending
# SIGHUP, as some installers do, does not reload containerd (it does not handle SIGHUP, so Go's
# default makes it exit) and would leave an unsupervised containerd dead.
restart_containerd() {
  if [[ -n "$RESTART_CMD" ]]; then
    sh -c "$RESTART_CMD"
  elif nsenter -t 1 -m -- test -d /run/systemd/system 2>/dev/null; then
    log "restarting $CONTAINERD_SERVICE through systemd"
    nsenter -t 1 -m -- systemctl restart "$CONTAINERD_SERVICE"
  else
    log "cannot restart containerd: the host has no systemd (or this pod lacks hostPID); set RESTART_CMD"
    return 1
  fi
}

# The restart marker survives a failed restart, so the next run retries it even though the config
# no longer changes, and the node is only labelled ready once containerd has loaded the runtime.
restart_if_needed() {
  local marker="$NODE_ROOT$STATE_DIR/restart-pending-$HANDLER"
  if ((CONFIG_CHANGED)); then
    mkdir -p "$NODE_ROOT$STATE_DIR"
    : >"$marker"
  fi
  [[ -e "$marker" ]] || return 0
  restart_containerd || die 4 "containerd restart failed; it will be retried on the next run"
  rm -f "$marker"
  log "containerd restarted"
}

label_with_api() {
  python3 - <<'PY'
import json, os, ssl, urllib.request

sa = "/var/run/secrets/kubernetes.io/serviceaccount"
with open(f"{sa}/token") as f:
    token = f.read().strip()
host, port = os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"]
if ":" in host:
    host = f"[{host}]"
body = {"metadata": {"labels": {os.environ["SHIM_LABEL_KEY"]: os.environ["SHIM_LABEL_VALUE"]}}}
request = urllib.request.Request(
    f"https://{host}:{port}/api/v1/nodes/{os.environ['NODE_NAME']}",
    data=json.dumps(body).encode(),
    method="PATCH",
    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/merge-patch+json"},
)
urllib.request.urlopen(request, context=ssl.create_default_context(cafile=f"{sa}/ca.crt"), timeout=30)
PY
}

label_node() {
  export NODE_NAME SHIM_LABEL_KEY="wasmkube.dev/shim-$SHIM_NAME" SHIM_LABEL_VALUE=ready
  if [[ -n "$LABEL_CMD" ]]; then
    sh -c "$LABEL_CMD" || die 5 "LABEL_CMD failed"
  elif [[ -z "$NODE_NAME" ]]; then
    log "NODE_NAME is not set; not labelling the node (label it $SHIM_LABEL_KEY=$SHIM_LABEL_VALUE yourself)"
    return 0
  elif command -v kubectl >/dev/null 2>&1; then
    kubectl label node "$NODE_NAME" "$SHIM_LABEL_KEY=$SHIM_LABEL_VALUE" --overwrite >&2 \
      || die 5 "kubectl label failed"
  elif command -v python3 >/dev/null 2>&1; then
    label_with_api || die 5 "labelling node $NODE_NAME through the API server failed"
  else
    die 5 "neither kubectl nor python3 is available to label the node; set LABEL_CMD"
  fi
  log "node ${NODE_NAME:-?} labelled $SHIM_LABEL_KEY=$SHIM_LABEL_VALUE"
}

main() {
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  validate_settings
  install_binary
  configure_containerd
  restart_if_needed
  label_node
}

main "$@"
