"""containerd: its config (runc by default, the `wasmtime` handler for wasmkube's shim), the
local registry's hosts.toml, the daemon as the supervisor runs it, and the pause image."""

from __future__ import annotations

import subprocess

from e2e.support.supervisor import Daemon

from .binaries import NodeBinaries
from .errors import NodeError, log
from .layout import CHILD_PATH, CNI_BIN_DIR, CRI_NAMESPACE, REGISTRY, RUNTIME_HANDLER, SHIM_RUNTIME_TYPE
from .network import cni_conflist
from .paths import NodePaths
from .preflight import lacks_cap_sys_resource


def containerd_config(paths: NodePaths, bins: NodeBinaries, pause_image: str) -> str:
    """containerd 2.x config (version 3): private root/state/socket, runc default, and the
    `wasmtime` handler -> io.containerd.wasmtime.v1 -> containerd-shim-wasmtime-v1 on PATH."""
    # Clamp OOM score adjustments to containerd's own (0) when they cannot be lowered anyway.
    restrict_oom = "true" if lacks_cap_sys_resource() else "false"
    cri_runtime = 'plugins."io.containerd.cri.v1.runtime"'
    runtimes = f"{cri_runtime}.containerd.runtimes"
    return f"""\
# Written by e2e/node/realnode.py; rewritten on every `up`. Version 3 is the containerd 2.0-2.2
# format; 2.3 migrates it to its version 4 in memory at start-up (and logs that it did).
version = 3
root = "{paths.containerd_root}"
state = "{paths.containerd_state}"
# containerd 2.3 always adds the host's /etc/containerd/conf.d/*.toml to `imports` (no setting
# removes it); `up` warns when that directory holds drop-ins that would change this config.
# NRI would listen on /var/run/nri/nri.sock, a host-wide path; nothing here uses it.
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = "{paths.socket}"
[ttrpc]
  address = "{paths.socket}.ttrpc"
[debug]
  level = "info"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{paths.containerd_root}/opt"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{pause_image}"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "{paths.certs_d}"

[{cri_runtime}]
  # Pod network namespaces under our state dir instead of /var/run/netns.
  netns_mounts_under_state_dir = true
  restrict_oom_score_adj = {restrict_oom}
  [{cri_runtime}.containerd]
    default_runtime_name = "runc"
    [{runtimes}.runc]
      runtime_type = "io.containerd.runc.v2"
      [{runtimes}.runc.options]
        BinaryName = "{bins.runc}"
        Root = "{paths.containerd_state}/runc"
        SystemdCgroup = false
    [{runtimes}.{RUNTIME_HANDLER}]
      runtime_type = "{SHIM_RUNTIME_TYPE}"
      [{runtimes}.{RUNTIME_HANDLER}.options]
        SystemdCgroup = false
  [{cri_runtime}.cni]
    bin_dirs = ["{CNI_BIN_DIR}"]
    conf_dir = "{paths.cni_conf}"
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
"""


def registry_hosts_toml() -> str:
    """certs.d/127.0.0.1:5001/hosts.toml: the local registry speaks plain HTTP."""
    return f"""\
server = "http://{REGISTRY}"

[host."http://{REGISTRY}"]
  capabilities = ["pull", "resolve"]
"""


def ctr(paths: NodePaths, bins: NodeBinaries, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """containerd's own client against our socket, in the CRI namespace."""
    return subprocess.run([str(bins.ctr), "--address", str(paths.socket), "--namespace", CRI_NAMESPACE, *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def containerd_daemon(paths: NodePaths, bins: NodeBinaries, pause_image: str) -> Daemon:
    """containerd as the supervisor runs it; healthy once `ctr version` gets an answer."""
    config = paths.config / "containerd.toml"
    env = {"PATH": f"{bins.bindir}:{CHILD_PATH}", "HOME": str(paths.root)}

    def healthy() -> bool:
        try:
            return ctr(paths, bins, "version", timeout=5).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    return Daemon(
        "containerd", [str(bins.containerd), f"--config={config}"], healthy, timeout=60,
        files={config: containerd_config(paths, bins, pause_image),
               paths.certs_d / REGISTRY / "hosts.toml": registry_hosts_toml(),
               paths.cni_conf / "10-wasmkube.conflist": cni_conflist(paths)},
        env=env, identity={"env": env})


def import_pause_image(paths: NodePaths, bins: NodeBinaries, image: str) -> None:
    """The CRI sandbox image, imported from the local tar (no registry serves one here)."""
    listed = ctr(paths, bins, "images", "ls", "--quiet")
    if image in listed.stdout.split():
        return
    log(f"importing {image}")
    result = ctr(paths, bins, "images", "import", "--platform", "linux/amd64", str(bins.pause_tar))
    if result.returncode != 0:
        raise NodeError(f"ctr images import failed: {result.stderr.strip()}")


def containerd_answers(paths: NodePaths) -> bool:
    """For `status`: whether our containerd answers, using the bin dir of the last `up` (no build)."""
    bindir = paths.known_bindir()
    if bindir is None:
        return False
    result = subprocess.run([str(bindir / "ctr"), "--address", str(paths.socket), "version"],
                            capture_output=True, timeout=10, check=False)
    return result.returncode == 0
