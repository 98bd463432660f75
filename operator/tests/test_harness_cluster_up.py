"""How `localcluster up` judges components that were already running: restart what is stopped
or stays unhealthy, leave the rest alone. Sleepers stand in for the cluster's processes."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import lifecycle
from e2e.cluster.errors import ClusterError
from e2e.cluster.lifecycle import Cluster
from e2e.cluster.paths import Paths
from e2e.support.supervisor import Daemon, Supervisor, alive, is_stopped, terminate_groups
from e2e.support.waiting import wait_for

SLEEPER = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); time.sleep(120)"


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    monkeypatch.setattr(lifecycle, "GRACE_SECONDS", 0.5)
    handle = Cluster(Paths(tmp_path / "cluster"))
    yield handle
    names = [p.stem for p in handle.paths.run.glob("*.json")]
    handle.sup.stop(names, timeout=2)
    terminate_groups(Supervisor(handle.paths.state, {Path(sys.executable).name}).orphans(), 2)


def component(cluster: Cluster, name: str, healthy: Any) -> Daemon:
    argv = [sys.executable, "-c", SLEEPER, f"{cluster.paths.state}/{name}"]
    return Daemon(name, argv, healthy, timeout=5)


def started_earlier(cluster: Cluster, daemon: Daemon) -> int:
    """Started by an earlier `up` (another Supervisor instance), so not a child of this one."""
    earlier = Supervisor(cluster.paths.state, set())
    return earlier.start(daemon).pid


def test_a_healthy_component_is_left_running(cluster: Cluster) -> None:
    daemon = component(cluster, "kube-scheduler", lambda: True)
    pid = started_earlier(cluster, daemon)
    cluster._waiter(daemon, api=None)()  # type: ignore[arg-type]  # only KWOK's judgement asks the API
    assert cluster.sup.pid("kube-scheduler") == pid


def test_one_that_stays_unhealthy_past_the_grace_is_restarted(cluster: Cluster) -> None:
    state: dict[str, int] = {}
    daemon = component(cluster, "kube-apiserver", lambda: cluster.sup.pid("kube-apiserver") != state["old"])
    state["old"] = started_earlier(cluster, daemon)
    cluster._waiter(daemon, api=None)()  # type: ignore[arg-type]
    new = cluster.sup.pid("kube-apiserver")
    assert new is not None and new != state["old"]
    wait_for(lambda: not alive(state["old"]), 5, 0.05, "the old apiserver to be gone")


def test_one_that_recovers_within_the_grace_is_kept(cluster: Cluster) -> None:
    answers = iter([False, *[True] * 10])  # red once, then fine: kept
    daemon = component(cluster, "etcd", lambda: next(answers))
    pid = started_earlier(cluster, daemon)
    cluster._waiter(daemon, api=None)()  # type: ignore[arg-type]
    assert cluster.sup.pid("etcd") == pid


def test_a_restart_that_does_not_help_fails_as_a_cluster_error(cluster: Cluster) -> None:
    daemon = component(cluster, "kube-controller-manager", lambda: False)
    daemon.timeout = 0.5
    started_earlier(cluster, daemon)
    with pytest.raises(ClusterError, match="kube-controller-manager to become healthy"):
        cluster._waiter(daemon, api=None)()  # type: ignore[arg-type]


def test_stopped_components_are_stopped_for_a_restart(cluster: Cluster) -> None:
    frozen = component(cluster, "kwok", lambda: False)
    fine = component(cluster, "kube-scheduler", lambda: True)
    frozen_pid, fine_pid = started_earlier(cluster, frozen), started_earlier(cluster, fine)
    os.kill(frozen_pid, signal.SIGSTOP)
    wait_for(lambda: is_stopped(frozen_pid), 5, 0.02, "kwok to stop")
    cluster._stop_frozen({"kwok": frozen, "kube-scheduler": fine})
    wait_for(lambda: not alive(frozen_pid), 5, 0.05, "the stopped kwok to be gone")
    assert cluster.sup.pid("kwok") is None
    assert cluster.sup.pid("kube-scheduler") == fine_pid


def test_down_leaves_no_process_behind_even_when_stopped(cluster: Cluster) -> None:
    pids = [started_earlier(cluster, component(cluster, name, lambda: True)) for name in ("etcd", "kwok")]
    os.kill(pids[1], signal.SIGSTOP)
    cluster.sup = Supervisor(cluster.paths.state, {Path(sys.executable).name})  # so orphans are ours too
    cluster.down(purge=False)
    for pid in pids:
        wait_for(lambda p=pid: not alive(p), 5, 0.05, f"pid {pid} to be gone")
