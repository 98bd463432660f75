"""What the numbers were measured on: hardware, kernel, load, and the versions of everything.

Benchmark numbers without the machine are meaningless, and on a shared 2-core box the load
average at the start matters as much as the core count, so it is recorded too.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from e2e.support.state import REPO_ROOT

from .procstat import loadavg


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            name, _, value = line.partition(":" if ":" in line else "=")
            if name.strip() == key:
                return value.strip().strip('"')
    except OSError:
        pass
    return None


def _run(*cmd: str) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False, cwd=REPO_ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def _package(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (REPO_ROOT / "e2e" / "cluster" / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            pins[key.strip()] = value.strip()
    return pins


def describe(apiserver_version: str | None) -> dict[str, Any]:
    mem_kb = _first("/proc/meminfo", "MemTotal")
    return {
        "nproc": os.cpu_count(),
        "nproc_available": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
        "cpu_model": _first("/proc/cpuinfo", "model name"),
        "kernel": f"{platform.system()} {platform.release()} {platform.version()}",
        "os": _first("/etc/os-release", "PRETTY_NAME"),
        "python": sys.version.split()[0],
        "loadavg_at_start": loadavg(),
        "versions": {
            "wasmkube": _package("wasmkube"),
            "kopf": _package("kopf"),
            "kubernetes_client": _package("kubernetes"),
            "aiohttp": _package("aiohttp"),
            "py_spy": _package("py-spy"),
            "kube_apiserver": apiserver_version,
            "go": _run("go", "version"),
            "cluster_pins": _pins(),
            "git_commit": _run("git", "rev-parse", "--short", "HEAD"),
            "git_dirty": bool(_run("git", "status", "--porcelain", "--untracked-files=no")),
        },
    }
