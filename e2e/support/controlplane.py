"""Break the local cluster's control plane on purpose: kill the kube-apiserver, freeze etcd.

Uses the same pid records as `e2e/cluster/localcluster.py` (`run/<component>.json`: pid, kernel
start time, start spec), so a pid that was reused by an unrelated process is never signalled.
Restarting goes through `localcluster.py up`, which starts only the components that are missing.
Only for the cluster `make cluster` runs: with WASMKUBE_EXISTING_CLUSTER=1 there are no such
processes, and the tests that need them skip.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .binaries import REPO_ROOT

LOCALCLUSTER = REPO_ROOT / "e2e" / "cluster" / "localcluster.py"
APISERVER_PORT = 16443


def state_dir() -> Path:
    override = os.environ.get("WASMKUBE_STATE")
    return Path(override).resolve() if override else REPO_ROOT / ".wasmkube" / "cluster"


def require_local_control_plane() -> None:
    """Skip unless the control plane is made of processes that localcluster.py started."""
    if os.environ.get("WASMKUBE_EXISTING_CLUSTER") == "1" or (state_dir() / "external-cluster").exists():
        pytest.skip("needs the processes of the local cluster (not WASMKUBE_EXISTING_CLUSTER)")
    for name in ("etcd", "kube-apiserver"):
        if component_pid(name) is None:
            pytest.skip(f"{name} of the local cluster is not running from {state_dir()}")


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return fields[19] if fields and fields[0] != "Z" else None


def component_pid(name: str) -> int | None:
    """The pid of a running cluster component, only if it is the very process `up` started."""
    try:
        record = json.loads((state_dir() / "run" / f"{name}.json").read_text())
    except (OSError, ValueError):
        return None
    pid = int(record["pid"])
    return pid if _start_time(pid) == record.get("start_time") else None


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def kill_apiserver(timeout: float = 15.0) -> None:
    """SIGKILL the kube-apiserver's process group (a crash: no graceful closing of watches)."""
    pid = component_pid("kube-apiserver")
    assert pid is not None, "kube-apiserver is not running"
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while _start_time(pid) is not None or _port_open(APISERVER_PORT):
        assert time.monotonic() < deadline, "kube-apiserver did not go away after SIGKILL"
        time.sleep(0.05)


def cluster_up(timeout: float = 240.0) -> float:
    """`localcluster.py up`: restarts whatever is missing; returns how long it took."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(LOCALCLUSTER), "up"], capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"localcluster.py up failed:\n{result.stderr[-3000:]}"
    return time.monotonic() - started


@contextmanager
def etcd_frozen(safety_seconds: float = 30.0) -> Iterator[int]:
    """SIGSTOP etcd for the duration of the block, SIGCONT afterwards.

    A detached `sleep; kill -CONT` is started first as a safety net: even if this test process
    dies inside the block, etcd (and so the shared cluster) is thawed after `safety_seconds`."""
    pid = component_pid("etcd")
    assert pid is not None, "etcd is not running"
    safety = subprocess.Popen(["sh", "-c", f"sleep {safety_seconds}; kill -CONT {pid}"],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)
        safety.kill()
        safety.wait(5)
