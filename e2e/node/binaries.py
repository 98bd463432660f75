"""The node's executables: containerd, ctr, the shim and the pause image from build-node.sh,
kubelet from the cluster's build-binaries.sh, runc from Debian."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

from e2e.cluster.binaries import build_binaries
from e2e.support.scripts import printed_path

from .errors import NodeError

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "build-node.sh"


def read_versions() -> dict[str, str]:
    """The pins in versions.env (KEY=VALUE lines), shared with build-node.sh."""
    pins = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            pins[key] = value
    return pins


@dataclasses.dataclass(frozen=True)
class NodeBinaries:
    """The node's executables: build-node.sh's bin dir, the cached kubelet, Debian's runc."""

    bindir: Path
    kubelet: Path
    runc: str

    @property
    def containerd(self) -> Path:
        return self.bindir / "containerd"

    @property
    def ctr(self) -> Path:
        return self.bindir / "ctr"

    @property
    def pause_tar(self) -> Path:
        return self.bindir / "pause.tar"


def binaries_cached() -> bool:
    """True when containerd, the pause image and the shim are all built (no build is started)."""
    return subprocess.run(["bash", str(BUILD_SCRIPT), "--cached"], check=False).returncode == 0


def locate_binaries() -> NodeBinaries:
    """Build whatever is missing (minutes, once) and return absolute paths."""
    bindir = printed_path(BUILD_SCRIPT, lambda code, _: NodeError(
        f"{BUILD_SCRIPT} failed (exit {code}); see its output above"))
    kubelet = build_binaries() / "kubelet"
    runc = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if runc is None:
        raise NodeError("runc not found (build-node.sh installs Debian's runc)")
    if not kubelet.exists():
        raise NodeError(f"{kubelet} missing; e2e/cluster/build-binaries.sh should have built it")
    return NodeBinaries(bindir=bindir, kubelet=kubelet, runc=runc)
