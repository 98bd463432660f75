"""The other host changes `up` and kubelet make outside `.wasmkube/node`, and their undoing:
/dev/kmsg, kernel tunables, container log links and fixed paths no setting moves."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from .layout import KERNEL_TUNABLES
from .paths import NodePaths


def ensure_dev_kmsg(paths: NodePaths) -> None:
    """kubelet's OOM watcher opens /dev/kmsg; where it is missing, point it at /dev/console
    (what kind does) and remember to remove the link again."""
    if not Path("/dev/kmsg").exists():
        os.symlink("/dev/console", "/dev/kmsg")
        paths.kmsg_marker.write_text("symlink /dev/kmsg -> /dev/console\n")


def save_kernel_tunables(paths: NodePaths) -> None:
    """Record the sysctls kubelet is about to change, once (a restart must not record its own)."""
    if paths.tunables.exists():
        return
    values = {key: Path(f"/proc/sys/{key}").read_text().strip() for key in KERNEL_TUNABLES}
    paths.tunables.write_text(json.dumps(values, indent=2))


def restore_kernel_tunables(paths: NodePaths) -> None:
    if not paths.tunables.exists():
        return
    for key, value in json.loads(paths.tunables.read_text()).items():
        with contextlib.suppress(OSError):
            Path(f"/proc/sys/{key}").write_text(value)
    paths.tunables.unlink()


def remove_container_log_links(paths: NodePaths) -> None:
    """kubelet's /var/log/containers/*.log symlinks that point into our pod log dir."""
    links = Path("/var/log/containers")
    if not links.is_dir():
        return
    for link in links.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(f"{paths.pod_logs}/"):
                link.unlink()


# Paths that kubelet, containerd's CNI library and the shims use whatever their configuration says.
FIXED_FILES = ("/var/lib/kubelet/device-plugins/kubelet.sock",)
FIXED_GLOBS = (("/var/lib/cni/results", "wasmkube-*"),)  # libcni's cache: <network>-<container>-<if>
FIXED_DIRS = ("/var/lib/kubelet/device-plugins", "/var/lib/kubelet", "/var/lib/cni/results", "/var/lib/cni",
              "/var/log/containers", "/run/containerd/wasmtime/k8s.io", "/run/containerd/wasmtime",
              "/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc/k8s.io", "/run/containerd/runc",
              "/run/containerd")


def remove_fixed_path_leftovers() -> None:
    """Our files at those fixed paths, then the directories if that left them empty (an empty
    directory is all another user of the path could share with us, so rmdir is safe)."""
    for name in FIXED_FILES:
        Path(name).unlink(missing_ok=True)
    for directory, pattern in FIXED_GLOBS:
        for entry in Path(directory).glob(pattern):
            entry.unlink(missing_ok=True)
    for name in FIXED_DIRS:
        with contextlib.suppress(OSError):
            Path(name).rmdir()
