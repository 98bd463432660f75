"""Fixtures for the integration tests: the local cluster, a fresh namespace per test, the registry.

Without a cluster the tests skip locally (run `make cluster`), but under CI=true they fail:
CI must never report green because the cluster silently did not come up.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.support import (
    REGISTRY,
    BinariesUnavailable,
    Cluster,
    registry_unreachable_reason,
    wait_for,
)

E2E_DIR = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs the local cluster (make cluster)")
    config.addinivalue_line(
        "markers", "breaks_cluster: breaks the local cluster on purpose and heals it; runs after every other test")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under e2e/ talks to the cluster, so mark it `integration` (select with -m).

    Tests marked `breaks_cluster` are moved to the end (a stable sort: every other test keeps
    its place), so a cluster they fail to heal cannot take the rest of the run down with it.
    """
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)
    items.sort(key=lambda item: item.get_closest_marker("breaks_cluster") is not None)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def no_cluster(reason: str) -> None:
    """Fail under CI, skip otherwise; never returns."""
    if in_ci():
        pytest.fail(f"local cluster unusable under CI=true: {reason}", pytrace=False)
    pytest.skip("no local cluster: run `make cluster`" + (f" ({reason})" if reason else ""))


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The running local cluster; also exports KUBECONFIG so client libraries and subprocesses
    (e.g. an operator started by a test) talk to it and never to a developer's real cluster."""
    try:
        handle = Cluster.local()
    except BinariesUnavailable as err:
        no_cluster(str(err))
    reason = handle.unreachable_reason()
    if reason is not None:
        no_cluster(reason)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(handle.kubeconfig))
        yield handle


@pytest.fixture(scope="session")
def registry() -> str:
    """host:port of the local OCI registry (plain HTTP, no auth)."""
    reason = registry_unreachable_reason()
    if reason is not None:
        no_cluster(reason)
    return REGISTRY


def _namespace_name(test_name: str) -> str:
    """A DNS-1123 label (<= 63 chars) that says which test made it and cannot collide."""
    slug = re.sub(r"[^a-z0-9-]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"e2e-{slug}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def namespace(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards without waiting for the deletion.

    Waits for the `default` ServiceAccount first: the controller-manager creates it a moment after
    the namespace, and the ServiceAccount admission plugin rejects pods until it exists.
    """
    name = _namespace_name(request.node.name)
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("label", "namespace", name, "wasmkube.dev/e2e=true")
    wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", name, check=False)
             .returncode == 0, timeout=30, interval=0.2, message=f"ServiceAccount default in {name}")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


# The operator and what it needs (CRDs, example artifacts, extra registries): shared by all tests.
from e2e.support.operator_fixtures import (  # noqa: E402
    crds,
    example_images,
    flaky_registry,
    operator,
    private_registry,
)

__all__ = ["crds", "example_images", "flaky_registry", "operator", "private_registry"]

# Dedicated operators for the reliability/security tests, and the reliability summary line.
from e2e.support.reliability_fixtures import (  # noqa: E402
    exclusive_operators,
    pytest_terminal_summary,
    session_operator_paused,
)

__all__ += ["exclusive_operators", "pytest_terminal_summary", "session_operator_paused"]

# The real node and what runs on it: for every test that executes Wasm.
from e2e.support.realnode_fixtures import pusher, real_node, wasmtime_runtime_class  # noqa: E402

__all__ += ["pusher", "real_node", "wasmtime_runtime_class"]

# WasmApps and WasmRuntimes in every reported state, judged by kstatus and Argo CD.
from e2e.support.live_states import live_states  # noqa: E402

__all__ += ["live_states"]
