"""Where the e2e harness keeps its state: one helper, one variable to move it all."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.cluster.paths import Paths
from e2e.node.paths import NodePaths
from e2e.support import state
from e2e.support.cluster import default_kubeconfig


def test_defaults_live_in_the_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WASMKUBE_STATE", raising=False)
    root = state.REPO_ROOT / ".wasmkube"
    assert (state.REPO_ROOT / "pyproject.toml").exists()
    assert state.cluster_dir() == root / "cluster"
    assert state.node_dir() == root / "node"
    assert state.kubeconfig() == default_kubeconfig() == Paths.from_env().kubeconfig == root / "kubeconfig"
    assert NodePaths.from_env().root == root / "node" and NodePaths.from_env().cluster == root / "cluster"


def test_wasmkube_state_moves_everything_beside_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WASMKUBE_STATE", "sandbox/cluster")  # relative: resolved once, here
    assert state.cluster_dir() == tmp_path / "sandbox" / "cluster"
    assert state.kubeconfig() == default_kubeconfig() == tmp_path / "sandbox" / "kubeconfig"
    assert NodePaths.from_env().root == tmp_path / "sandbox" / "node"
    assert Paths.from_env().state == tmp_path / "sandbox" / "cluster"


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WASMKUBE_CACHE", raising=False)
    assert state.cache_dir() == Path.home() / ".cache" / "wasmkube"
    monkeypatch.setenv("WASMKUBE_CACHE", str(tmp_path))
    assert state.cache_dir() == tmp_path


def test_existing_cluster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WASMKUBE_STATE", str(tmp_path / "cluster"))
    monkeypatch.delenv("WASMKUBE_EXISTING_CLUSTER", raising=False)
    assert not state.existing_cluster()
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "external-cluster").write_text("/some/kubeconfig\n")
    assert state.existing_cluster()
