"""Locate the binaries built for the local cluster (kubectl, helm, ...) and for the e2e checks
(Helm 4, kstatus, Argo CD's health checks), all built from source into the cache."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from .scripts import printed_path
from .state import REPO_ROOT

BUILD_SCRIPT = REPO_ROOT / "e2e" / "cluster" / "build-binaries.sh"
TOOL_SCRIPT = REPO_ROOT / "e2e" / "cluster" / "build-tool.sh"
# A cold Argo CD build takes about 7 min alone and much longer beside other builds.
TOOL_BUILD_TIMEOUT = 3600


class BinariesUnavailable(RuntimeError):
    """build-binaries.sh failed, so tests cannot get kubectl and friends."""


@functools.cache
def bin_dir() -> Path:
    """The pinned cache directory, e.g. ~/.cache/wasmkube/bin/k8s-v1.34.4-.../.

    Asks build-binaries.sh rather than recomputing the name, so the pins live in one place
    (versions.env). When the cache is warm the script only stats files; on a cold machine it
    builds everything (minutes), which is what the tests would need anyway.
    """
    return printed_path(BUILD_SCRIPT, lambda code, stderr: BinariesUnavailable(
        f"{BUILD_SCRIPT} failed with exit {code}:\n{stderr}"), capture_stderr=True)


def binary(name: str) -> Path:
    """Absolute path of one cached binary, e.g. binary("kubectl")."""
    path = bin_dir() / name
    if not path.exists():
        raise BinariesUnavailable(f"{path} does not exist; rerun {BUILD_SCRIPT}")
    return path


@functools.cache
def tool(name: str) -> Path:
    """One of build-tool.sh's clients ("helm4", "kstatus", "argocd-health"), built once and cached.

    The first call of a session may build it (minutes, cold); later calls, and later sessions,
    find it in the cache. A failed build raises: the tests that judge wasmkube with a tool fail
    rather than skip, so a broken toolchain cannot pass as green.
    """
    result = subprocess.run(["bash", str(TOOL_SCRIPT), name], capture_output=True, text=True,
                            timeout=TOOL_BUILD_TIMEOUT, check=False)  # fmt: skip
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        raise BinariesUnavailable(
            f"{TOOL_SCRIPT} {name} failed with exit {result.returncode}:\n{result.stderr[-4000:]}")
    return Path(lines[-1])
