"""The node's executables: containerd, ctr, the shim and the pause image from build-node.sh,
kubelet from the cluster's build-binaries.sh, runc from Debian."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

from e2e.cluster.binaries import build_binaries

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


def _last_stdout_line(script: Path) -> Path:
    """Run a build script (its progress goes to our stderr) and return the dir it prints last."""
    result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise NodeError(f"{script} failed (exit {result.returncode}); see its output above")
    return Path(lines[-1])


def binaries_cached() -> bool:
    """True when containerd, the pause image and the shim are all built (no build is started)."""
    return subprocess.run(["bash", str(BUILD_SCRIPT), "--cached"], check=False).returncode == 0


def locate_binaries() -> NodeBinaries:
    """Build whatever is missing (minutes, once) and return absolute paths."""
    bindir = _last_stdout_line(BUILD_SCRIPT)
    kubelet = build_binaries() / "kubelet"
    runc = shutil.which("runc", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if runc is None:
        raise NodeError("runc not found (build-node.sh installs Debian's runc)")
    if not kubelet.exists():
        raise NodeError(f"{kubelet} missing; e2e/cluster/build-binaries.sh should have built it")
    return NodeBinaries(bindir=bindir, kubelet=kubelet, runc=runc)
