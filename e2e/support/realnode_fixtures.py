"""Fixtures for tests that run real workloads on the real node (`real-node-1`).

Shared by every e2e file that executes Wasm: the node itself (started when not already up and
stopped again at the end if this session started it; WASMKUBE_KEEP_REAL_NODE=1 keeps it), the
`wasmtime` RuntimeClass and a registry pusher. A machine that cannot run the node skips these
tests locally; under CI=true every failure to bring the node up fails.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from e2e.node import NODE_NAME, NodeError, NodeUnsupported, ensure_real_node, realnode, stop_real_node
from e2e.node import workloads as wl
from e2e.registry.pusher import Pusher

from .cluster import REGISTRY, Cluster


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _existing_node(cluster: Cluster) -> str:
    """On an existing cluster, the node WASMKUBE_REAL_NODE names, which must be Ready already."""
    if not os.environ.get("WASMKUBE_REAL_NODE"):
        pytest.fail("WASMKUBE_EXISTING_CLUSTER=1: set WASMKUBE_REAL_NODE to the node that has the wasmtime shim",
                    pytrace=False)
    ready = cluster.kubectl("get", "node", NODE_NAME, "-o",
                            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}", check=False)
    if ready.stdout.strip() != "True":
        pytest.fail(f"node {NODE_NAME} is not Ready: {ready.stderr.strip() or ready.stdout.strip()}", pytrace=False)
    return NODE_NAME


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> Iterator[str]:
    """real-node-1, Ready. Skips (locally) only when the machine cannot run a node at all."""
    if os.environ.get("WASMKUBE_EXISTING_CLUSTER") == "1":
        yield _existing_node(cluster)
        return
    was_up = realnode.RealNode(realnode.NodePaths.from_env()).is_up()
    started = time.monotonic()
    try:
        ensure_real_node()
    except NodeUnsupported as err:
        if _in_ci():
            pytest.fail(f"real node unsupported under CI=true: {err}", pytrace=False)
        pytest.skip(f"this machine cannot run a real node: {err}")
    except NodeError as err:
        pytest.fail(f"real node did not come up: {err}", pytrace=False)
    if not was_up:
        print(f"\nreal node up in {time.monotonic() - started:.1f}s")
    yield NODE_NAME
    if not was_up and os.environ.get("WASMKUBE_KEEP_REAL_NODE") != "1":
        stop_real_node()


@pytest.fixture(scope="session")
def wasmtime_runtime_class(cluster: Cluster, real_node: str) -> Iterator[str]:
    """RuntimeClass `wasmtime`: the operator's if present, else a temporary one of ours."""
    created = wl.ensure_runtime_class(cluster.kubectl)
    yield wl.RUNTIME_CLASS
    if created:
        wl.delete_runtime_class(cluster.kubectl)


@pytest.fixture(scope="session")
def pusher() -> Iterator[Pusher]:
    client = Pusher(REGISTRY)
    yield client
    client.close()
