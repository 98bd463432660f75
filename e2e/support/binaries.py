"""Locate the binaries built for the local cluster (kubectl, helm, ...)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "e2e" / "cluster" / "build-binaries.sh"


class BinariesUnavailable(RuntimeError):
    """build-binaries.sh failed, so tests cannot get kubectl and friends."""


@functools.cache
def bin_dir() -> Path:
    """The pinned cache directory, e.g. ~/.cache/wasmkube/bin/k8s-v1.34.4-.../.

    Asks build-binaries.sh rather than recomputing the name, so the pins live in one place
    (versions.env). When the cache is warm the script only stats files; on a cold machine it
    builds everything (minutes), which is what the tests would need anyway.
    """
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, check=False)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise BinariesUnavailable(
            f"{BUILD_SCRIPT} failed with exit {result.returncode}:\n{result.stderr[-4000:]}")
    return Path(lines[-1])


def binary(name: str) -> Path:
    """Absolute path of one cached binary, e.g. binary("kubectl")."""
    path = bin_dir() / name
    if not path.exists():
        raise BinariesUnavailable(f"{path} does not exist; rerun {BUILD_SCRIPT}")
    return path
