"""Break the local cluster's control plane on purpose: kill the kube-apiserver, freeze etcd.

Goes through the cluster's own supervisor records (pid, kernel start time), so a pid that was
reused by an unrelated process is never signalled. Restarting goes through `localcluster up`,
which starts only the components that are missing or broken. Only for the cluster `make
cluster` runs: with WASMKUBE_EXISTING_CLUSTER=1 there are no such processes, and the tests that
need them skip.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import pytest

from e2e.cluster.layout import APISERVER_PORT
from e2e.cluster.paths import Paths
from e2e.support.supervisor import Supervisor, alive

from . import state
from .waiting import wait_for

__all__ = ["APISERVER_PORT", "cluster_up", "component_pid", "etcd_frozen", "frozen", "kill_apiserver",
           "require_local_control_plane", "supervisor"]


def supervisor() -> Supervisor:
    """The supervisor of the local cluster's processes (WASMKUBE_STATE honoured)."""
    return Paths.from_env().supervisor()


def require_local_control_plane() -> None:
    """Skip unless the control plane is made of processes that localcluster started."""
    if state.existing_cluster():
        pytest.skip("needs the processes of the local cluster (not WASMKUBE_EXISTING_CLUSTER)")
    for name in ("etcd", "kube-apiserver"):
        if component_pid(name) is None:
            pytest.skip(f"{name} of the local cluster is not running from {state.cluster_dir()}")


def component_pid(name: str) -> int | None:
    """The pid of a running cluster component, only if it is the very process `up` started."""
    return supervisor().pid(name)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def kill_apiserver(timeout: float = 15.0) -> None:
    """SIGKILL the kube-apiserver's process group (a crash: no graceful closing of watches)."""
    pid = component_pid("kube-apiserver")
    assert pid is not None, "kube-apiserver is not running"
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: not alive(pid) and not _port_open(APISERVER_PORT), timeout, 0.05,
             "kube-apiserver to go away after SIGKILL")


def cluster_up(timeout: float = 240.0) -> float:
    """`localcluster up`: restarts whatever is missing or broken; returns how long it took."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "e2e.cluster.localcluster", "up"], cwd=state.REPO_ROOT,
                            capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"localcluster up failed:\n{result.stderr[-3000:]}"
    return time.monotonic() - started


@contextmanager
def frozen(name: str, safety_seconds: float = 30.0) -> Iterator[int]:
    """SIGSTOP the component `name` for the duration of the block, SIGCONT afterwards.

    A detached `sleep; kill -CONT` is started first as a safety net: even if this test process
    dies inside the block, the component (and so the shared cluster) is thawed after
    `safety_seconds`. SIGCONT to a process that `up` has replaced meanwhile is harmless."""
    pid = component_pid(name)
    assert pid is not None, f"{name} is not running"
    safety = subprocess.Popen(["sh", "-c", f"sleep {safety_seconds}; kill -CONT {pid}"],
                              start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        safety.kill()
        safety.wait(5)


@contextmanager
def etcd_frozen(safety_seconds: float = 30.0) -> Iterator[int]:
    """SIGSTOP etcd for the duration of the block, SIGCONT afterwards (see `frozen`)."""
    with frozen("etcd", safety_seconds) as pid:
        yield pid
