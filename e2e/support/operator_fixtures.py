"""Session fixtures that put the operator on the local cluster: CRDs, runtimes, artifacts, process.

Imported into `e2e/conftest.py`, so every integration test module shares one operator process
(cluster-wide, like a default Helm install) and one set of example artifacts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from e2e.registry import artifacts
from e2e.registry.pusher import Pusher
from e2e.registry.server import RegistryServer, registry_server

from .cluster import REGISTRY, Cluster
from .operator import OperatorProcess
from .state import REPO_ROOT
from .waiting import wait_for


@dataclass(frozen=True)
class ExampleImages:
    """References of the artifacts the examples and tests run, in the cluster's registry."""

    module: artifacts.PushedArtifact
    component: artifacts.PushedArtifact
    spin: artifacts.PushedArtifact
    container: artifacts.PushedArtifact


def install_crds(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO_ROOT / "crds"))
    for crd in ("wasmapps.wasmkube.dev", "wasmruntimes.wasmkube.dev"):
        cluster.kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")


def push_examples(host: str = REGISTRY) -> ExampleImages:
    """Push the artifacts `examples/*.yaml` name (idempotent: same bytes, same digests).

    Builds what is not cached yet: the greeter component from examples/greeter (about a second,
    plus a one-time install of wasm-tools into ~/.cache/wasmkube/tools) and the wasip1 module."""
    pusher = Pusher(host)
    try:
        return ExampleImages(
            module=artifacts.cncf_module(pusher, "examples/hello-wasi", "v1"),
            # the real greeter, built from examples/greeter (cached after the first build)
            component=artifacts.greeter_http(pusher, "examples/greeter-http", "v1"),
            spin=artifacts.spin_app(pusher, "examples/spin-hello", "v1"),
            container=artifacts.container_image(pusher, "examples/busybox", "v1"),
        )
    finally:
        pusher.close()


@pytest.fixture(scope="session")
def crds(cluster: Cluster) -> None:
    install_crds(cluster)


@pytest.fixture(scope="session")
def example_images(registry: str) -> ExampleImages:
    return push_examples(registry)


@pytest.fixture(scope="session")
def private_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry behind basic auth, for pull-secret tests."""
    with registry_server(tmp_path_factory.mktemp("private-registry"), auth=("puller", "s3cret-pass")) as server:
        yield server


@pytest.fixture(scope="session")
def flaky_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry that tests stop and start to simulate an outage."""
    with registry_server(tmp_path_factory.mktemp("flaky-registry")) as server:
        yield server


@pytest.fixture(scope="session")
def operator(
    cluster: Cluster,
    crds: None,
    example_images: ExampleImages,
    private_registry: RegistryServer,
    flaky_registry: RegistryServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator, cluster-wide, with the example runtimes installed."""
    log_dir = Path(tmp_path_factory.mktemp("operator"))
    process = OperatorProcess(
        cluster.kubeconfig,
        log_dir / "operator.log",
        extra_args=[
            "--insecure-registry", REGISTRY,
            "--insecure-registry", private_registry.host,
            "--insecure-registry", flaky_registry.host,
            "--registry-timeout-seconds", "3",
            "--registry-ttl-seconds", "2",
            "--resync-seconds", "30",
        ],
    )
    process.start()
    cluster.kubectl("apply", "-f", str(REPO_ROOT / "examples" / "wasmruntimes.yaml"))
    wait_for(
        lambda: all(_ready(cluster, "wasmruntime", name) for name in ("wasmtime", "spin")),
        timeout=60, interval=0.5, message="example WasmRuntimes Ready",
    )
    yield process
    code = process.stop()
    print(f"\n--- operator log tail (exit {code}) ---\n{process.log_tail(60)}")


def _ready(cluster: Cluster, kind: str, name: str, namespace: str | None = None) -> bool:
    args = ["get", kind, name, "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]
    if namespace:
        args += ["-n", namespace]
    result = cluster.kubectl(*args, check=False)
    return result.returncode == 0 and result.stdout.strip() == "True"


@contextmanager
def pause_session_operator(process: OperatorProcess) -> Iterator[None]:
    """Stop the session operator (SIGTERM, as Kubernetes would) for a test that needs to be the
    only operator on the cluster, and start it again afterwards on the same ports and log.

    The session operator watches all namespaces, so while it runs a test cannot crash, restart
    or fail over "the" operator without a second one quietly doing the work. Restarting it also
    re-lists everything, as a real restart would."""
    code = process.stop()
    print(f"\n[session operator paused (exit {code})]")
    try:
        yield
    finally:
        process.start()
        print(f"[session operator resumed, pid {process.pid}]")
