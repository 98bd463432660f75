"""Working on a cluster that others share: a lock around each phase, audit on demand, cleanup.

The local cluster's ports are fixed, so every engineer and CI job on a machine uses the same
cluster. Each phase that loads it (a row of the benchmark) holds an flock on
$WASMKUBE_CLUSTER_LOCK, the same lock `flock(1)` takes, and holds it only for that phase, so
others can get in between rows. Auditing is switched on for the operator rows (it needs an API
server restart) and switched back off at the end if it was off before.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from e2e.cluster.paths import Paths as ClusterPaths
from e2e.support import state
from e2e.support.cluster import Cluster

from .kubeapi import KubeApi


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


@contextlib.asynccontextmanager
async def cluster_lock(lock_file: Path | None, phase: str) -> AsyncIterator[None]:
    """Hold the shared cluster lock for one phase (no-op without WASMKUBE_CLUSTER_LOCK)."""
    if lock_file is None:
        yield
        return
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for the cluster lock {lock_file} ({phase})")
            await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def external_cluster() -> bool:
    return state.existing_cluster()


def audit_log_path() -> Path:
    return state.cluster_dir() / "audit.log"


def registry_log_path() -> Path:
    return state.cluster_dir() / "logs" / "registry.log"


def audit_active() -> bool:
    """Whether the running API server was started with an audit log (from its start record)."""
    record = ClusterPaths.from_env().supervisor().record("kube-apiserver")
    return record is not None and any(arg.startswith("--audit-log-path=") for arg in record.argv)


def set_audit(enabled: bool) -> str | None:
    """(Re)start the API server with or without auditing; None on success, else why not."""
    if external_cluster():
        return "an existing cluster (WASMKUBE_EXISTING_CLUSTER=1) has no audit log the benchmark can switch on"
    if audit_active() == enabled:
        return None
    env = {k: v for k, v in os.environ.items() if k != "WASMKUBE_AUDIT"}
    if enabled:
        env["WASMKUBE_AUDIT"] = "1"
    say(f"restarting the API server with auditing {'on' if enabled else 'off'}")
    result = subprocess.run([sys.executable, "-m", "e2e.cluster.localcluster", "up"], env=env, cwd=state.REPO_ROOT,
                            capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0 or audit_active() != enabled:
        return f"localcluster up (WASMKUBE_AUDIT={int(enabled)}) failed: {result.stderr.strip()[-500:]}"
    return None


async def wait_api_ready(api: KubeApi, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while True:
        with contextlib.suppress(Exception):
            status, _ = await api.request("GET", "/readyz")
            if status == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError("API server not ready")
        await asyncio.sleep(0.5)


async def create_namespace(api: KubeApi, name: str) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {"wasmkube.dev/bench": "true"}}}
    await api.call("POST", "/api/v1/namespaces", body=body, ok=(201,))


async def delete_namespace(api: KubeApi, name: str, within: float = 600.0) -> float | None:
    """Delete and wait until it is gone; seconds taken, or None if still there after `within` s."""
    started = time.monotonic()
    await api.delete(f"/api/v1/namespaces/{name}")
    while time.monotonic() - started < within:
        if await api.get(f"/api/v1/namespaces/{name}") is None:
            return time.monotonic() - started
        await asyncio.sleep(1.0)
    return None


def other_operators(own: set[int]) -> list[str]:
    """`wasmkube run` processes on this machine that are not ours (e.g. a `make demo` operator).

    A second cluster-wide operator reconciles the benchmark's WasmApps too and races ours for
    every Deployment, so its presence must be reported next to the numbers it spoils."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in own or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv if a]
        if "run" in words and ("wasmkube.cli" in words or any(w.endswith("/wasmkube") for w in words[:2])):
            found.append(f"pid {entry.name}: {' '.join(words)[:160]}")
    return found


def kubectl(cluster: Cluster, *args: str, input: str | None = None, check: bool = True) -> str:
    return cluster.kubectl(*args, input=input, check=check, timeout=300).stdout


def apply_manifest(cluster: Cluster, manifest: str | list[dict[str, Any]]) -> None:
    text = manifest if isinstance(manifest, str) else json.dumps({"apiVersion": "v1", "kind": "List",
                                                                  "items": manifest})
    kubectl(cluster, "apply", "-f", "-", input=text)


def delete_manifest(cluster: Cluster, manifest: str) -> None:
    kubectl(cluster, "delete", "--ignore-not-found", "--wait=false", "-f", "-", input=manifest, check=False)


_SUFFIX = {"k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def quantity(value: str) -> int:
    """A count-like Kubernetes quantity ("110", "1k") as an integer."""
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * _SUFFIX[suffix])
    return int(float(value))
