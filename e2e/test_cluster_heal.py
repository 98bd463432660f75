"""The local cluster heals itself (issue #16): `localcluster up` repairs what it finds broken.

A laptop that slept for a few minutes left the apiserver failing /readyz and the KWOK pods
Ready=False for good, and `make demo` timed out. These tests break the running cluster the
same ways on purpose, SIGSTOP standing in for the sleep, and check that one `up` brings it
back. They are marked `breaks_cluster`, which conftest.py runs after every other test, and each
one leaves the cluster healthy again even when it fails (the `heals_afterwards` fixture).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.cluster.health import probes
from e2e.cluster.layout import COMPONENTS
from e2e.cluster.paths import Paths
from e2e.support import Cluster, state, wait_for
from e2e.support.controlplane import frozen, require_local_control_plane, supervisor
from e2e.support.supervisor import alive

pytestmark = pytest.mark.breaks_cluster

UP_TIMEOUT = 240.0
KWOK_NODE = "wasm-node-1"
# Longer than the controller-manager's node-monitor grace period (50 s), so it acts on resume.
PAUSE_SECONDS = 60.0


def run_up() -> subprocess.CompletedProcess[str]:
    """`python -m e2e.cluster.localcluster up`, as `make cluster` runs it."""
    return subprocess.run([sys.executable, "-m", "e2e.cluster.localcluster", "up"], cwd=state.REPO_ROOT,
                          capture_output=True, text=True, timeout=UP_TIMEOUT, check=False)


def unhealthy() -> list[str]:
    """What is wrong with the cluster's processes: missing, stopped, or not answering its probe."""
    sup, health = supervisor(), probes(Paths.from_env().pki)
    problems = []
    for name in COMPONENTS:
        if sup.pid(name) is None:
            problems.append(f"{name}: not running")
        elif sup.stopped(name):
            problems.append(f"{name}: stopped")
        elif not health[name]():
            problems.append(f"{name}: failing its health check")
    return problems


def wait_healthy(within: float) -> None:
    wait_for(lambda: not unhealthy(), within, 1, "every component running and healthy")


@pytest.fixture
def heals_afterwards(cluster: Cluster) -> Iterator[None]:
    """Whatever the test did or failed to do: no component left stopped, and `up` run once more."""
    require_local_control_plane()
    yield
    sup = supervisor()
    for name in COMPONENTS:
        pid = sup.pid(name)
        if pid is not None and sup.stopped(name):
            subprocess.run(["kill", "-CONT", str(pid)], check=False)
    result = run_up()
    assert result.returncode == 0, f"localcluster up after the test failed:\n{result.stderr[-3000:]}"


def test_up_restarts_a_stopped_controller_manager(heals_afterwards: None) -> None:
    sup = supervisor()
    old = sup.pid("kube-controller-manager")
    assert old is not None
    with frozen("kube-controller-manager", safety_seconds=UP_TIMEOUT + 60):
        wait_for(lambda: sup.stopped("kube-controller-manager"), 5, 0.05, "kube-controller-manager to stop")
        began = time.monotonic()
        result = run_up()
        took = time.monotonic() - began
    assert result.returncode == 0, result.stderr[-3000:]
    assert "restarting kube-controller-manager (process stopped by a signal" in result.stderr, result.stderr
    new = sup.pid("kube-controller-manager")
    assert new is not None and new != old
    assert not alive(old), "the stopped process must be gone, not merely continued"
    assert unhealthy() == [], f"after `up` ({took:.0f}s): {unhealthy()}"
    assert took < 120, f"`up` took {took:.0f}s to restart one component"


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    """Pause containers pinned to one KWOK node (KWOK marks them Running; nothing runs)."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {
            "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"nodeSelector": {"kubernetes.io/hostname": KWOK_NODE},
                                  "containers": [{"name": "main", "image": "registry.k8s.io/pause:3.10"}]}},
        },
    }


def _available(cluster: Cluster, namespace: str, name: str, replicas: int) -> bool:
    status = cluster.get_json("deployment", name, "-n", namespace).get("status") or {}
    return bool(status.get("availableReplicas") == replicas == status.get("readyReplicas"))


def _pods_not_ready(cluster: Cluster, namespace: str, name: str) -> list[str]:
    pods = cluster.get_json("pods", "-n", namespace, "-l", f"app={name}")["items"]
    return [p["metadata"]["name"] for p in pods
            if any(c["type"] == "Ready" and c["status"] == "False" for c in p["status"].get("conditions", []))]


def test_up_heals_after_the_host_was_paused(cluster: Cluster, namespace: str, heals_afterwards: None) -> None:
    """What a laptop's sleep does, and worse: the whole control plane stands still past the
    node-monitor grace period (50 s) and resumes with its clocks jumped, except KWOK, which stays
    stopped. The controller-manager finds the node leases old and marks the KWOK pods not Ready.
    One `up` (as `make cluster` or `make demo` runs it) must restart the stopped KWOK, replace the
    pods the outage left not Ready, and leave the Deployment Available and every component healthy."""
    cluster.apply(_deployment("sleeper", 2), namespace)
    wait_for(lambda: _available(cluster, namespace, "sleeper", 2), 60, 1, "deployment sleeper Available")
    with frozen("kwok", safety_seconds=UP_TIMEOUT + PAUSE_SECONDS + 120):
        with contextlib.ExitStack() as paused:
            for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"):
                paused.enter_context(frozen(name, safety_seconds=PAUSE_SECONDS + 60))
            time.sleep(PAUSE_SECONDS)
        wait_for(lambda: _pods_not_ready(cluster, namespace, "sleeper"), 60, 1,
                 "the node-lifecycle controller to mark the pods of the silent KWOK node not Ready")
        result = run_up()
    assert result.returncode == 0, result.stderr[-3000:]
    assert "restarting kwok (process stopped by a signal" in result.stderr, result.stderr
    assert "that a KWOK outage left not Ready" in result.stderr, result.stderr
    wait_for(lambda: _available(cluster, namespace, "sleeper", 2), 60, 1,
             f"deployment sleeper Available again after one `up`:\n{result.stderr[-2000:]}")
    assert unhealthy() == []
