"""The operator and real registries: classification, digest pinning, Track, auth and outages."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from e2e.registry import artifacts
from e2e.registry.artifacts import PushedArtifact
from e2e.registry.pusher import Pusher
from e2e.registry.server import RegistryServer
from e2e.support import REGISTRY, Cluster, wait_for
from e2e.support.apps import condition, events_for, get, wait_condition, wait_ready, wasmapp
from e2e.support.operator import OperatorProcess


@pytest.fixture
def pusher(operator: OperatorProcess) -> Iterator[Pusher]:
    push = Pusher(REGISTRY)
    yield push
    push.close()


def repo(prefix: str) -> str:
    """A repository nobody else pushes to, so tags in one test never race another test."""
    return f"e2e/{prefix}-{uuid.uuid4().hex[:8]}"


def deployment_image(cluster: Cluster, name: str, namespace: str) -> Any:
    """The Deployment's image (a str), or None when there is no Deployment."""
    deployment = get(cluster, "deployment", name, namespace)
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"] if deployment else None


@pytest.mark.parametrize(
    ("builder", "kind", "layout"),
    [
        (artifacts.cncf_module, "Module", "CNCFWasmArtifact"),
        (artifacts.cncf_component, "Component", "CNCFWasmArtifact"),
        (artifacts.wasm_layers_module, "Module", "WasmLayers"),
        (artifacts.wasm_layers_component, "Component", "WasmLayers"),
        (artifacts.wasm_index, "Module", "WasmLayers"),
        (artifacts.spin_app, "SpinApp", "SpinOCI"),
    ],
    ids=["cncf-module", "cncf-component", "wasm-layers-module", "wasm-layers-component", "index", "spin"],
)
def test_each_artifact_kind_is_classified_and_pinned(cluster: Cluster, namespace: str, pusher: Pusher,
                                                      builder: Callable[..., PushedArtifact], kind: str,
                                                      layout: str) -> None:
    pushed = builder(pusher, repo("kind"), "v1")
    cluster.apply(wasmapp("app", pushed.reference), namespace)
    app = wait_ready(cluster, "app", namespace)
    artifact = app["status"]["artifact"]
    assert (artifact["kind"], artifact["layout"]) == (kind, layout)
    assert artifact["digest"] == pushed.digest  # for an index: the index digest, as the node resolves it
    assert artifact["size"] > 0 and artifact["reference"] == pushed.reference
    repository = pushed.reference.rsplit(":", 1)[0]
    assert deployment_image(cluster, "app", namespace) == f"{repository}@{pushed.digest}"
    assert app["status"]["runtime"] == ("spin" if kind == "SpinApp" else "wasmtime")


def test_missing_artifact_is_not_found_and_nothing_rolls_out(cluster: Cluster, namespace: str,
                                                             operator: OperatorProcess) -> None:
    cluster.apply(wasmapp("ghost", f"{REGISTRY}/{repo('missing')}:v1"), namespace)
    stalled = wait_condition(cluster, "wasmapp", "ghost", namespace, "Stalled", reason="NotFound")
    assert condition(stalled, "Ready")["status"] == "False"
    assert get(cluster, "deployment", "ghost", namespace) is None
    assert any(e["reason"] == "NotFound" and e["type"] == "Warning" for e in events_for(cluster, "ghost", namespace))


def test_track_rolls_out_a_moved_tag(cluster: Cluster, namespace: str, pusher: Pusher) -> None:
    repository = repo("track")
    first = artifacts.cncf_module(pusher, repository, "stable")
    cluster.apply(wasmapp("tracker", first.reference, updatePolicy="Track", trackIntervalSeconds=30), namespace)
    wait_ready(cluster, "tracker", namespace)
    assert deployment_image(cluster, "tracker", namespace).endswith(first.digest)

    moved = artifacts.wasm_layers_module(pusher, repository, "stable")  # same tag, other bytes
    assert moved.digest != first.digest
    wait_for(lambda: (deployment_image(cluster, "tracker", namespace) or "").endswith(moved.digest),
             timeout=75, interval=1, message="Track rolled out the moved tag")
    app = wait_ready(cluster, "tracker", namespace)
    assert app["status"]["artifact"]["digest"] == moved.digest
    new_digest = [e for e in events_for(cluster, "tracker", namespace) if e["reason"] == "NewDigest"]
    assert new_digest and moved.digest in new_digest[0]["message"]


def test_pinned_keeps_its_digest_when_the_tag_moves(cluster: Cluster, namespace: str, pusher: Pusher) -> None:
    repository = repo("pinned")
    first = artifacts.cncf_module(pusher, repository, "v1")
    cluster.apply(wasmapp("pinned", first.reference), namespace)
    wait_ready(cluster, "pinned", namespace)
    artifacts.wasm_layers_module(pusher, repository, "v1")
    # A spec change that is not the image (scaling) must not re-resolve the tag.
    cluster.kubectl("scale", "wasmapp", "pinned", "-n", namespace, "--replicas=2")
    wait_for(lambda: get(cluster, "deployment", "pinned", namespace)["spec"]["replicas"] == 2, timeout=30,
             message="scaled")
    assert deployment_image(cluster, "pinned", namespace).endswith(first.digest)


def _pull_secret(name: str, registry: RegistryServer) -> dict[str, Any]:
    auth = base64.b64encode(f"{registry.username}:{registry.password}".encode()).decode()
    config = {"auths": {registry.host: {"username": registry.username, "password": registry.password,
                                        "auth": auth}}}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()}}


def test_private_registry_needs_the_pull_secret(cluster: Cluster, namespace: str, operator: OperatorProcess,
                                                private_registry: RegistryServer) -> None:
    push = Pusher(private_registry.host, auth=private_registry.auth)
    try:
        pushed = artifacts.cncf_module(push, repo("private"), "v1")
    finally:
        push.close()
    cluster.apply(wasmapp("private", pushed.reference), namespace)
    wait_condition(cluster, "wasmapp", "private", namespace, "Stalled", reason="Unauthorized")
    assert get(cluster, "deployment", "private", namespace) is None

    cluster.apply(_pull_secret("regcred", private_registry), namespace)
    cluster.kubectl("patch", "wasmapp", "private", "-n", namespace, "--type=merge",
                    "-p", '{"spec": {"imagePullSecrets": [{"name": "regcred"}]}}')
    app = wait_ready(cluster, "private", namespace)
    assert app["status"]["artifact"]["digest"] == pushed.digest
    pod_spec = get(cluster, "deployment", "private", namespace)["spec"]["template"]["spec"]
    assert pod_spec["imagePullSecrets"] == [{"name": "regcred"}]


def test_registry_outage_never_touches_the_running_app(cluster: Cluster, namespace: str, operator: OperatorProcess,
                                                       flaky_registry: RegistryServer) -> None:
    push = Pusher(flaky_registry.host)
    repository = repo("outage")
    try:
        v1 = artifacts.cncf_module(push, repository, "v1")
        cluster.apply(wasmapp("survivor", v1.reference, replicas=2), namespace)
        wait_ready(cluster, "survivor", namespace)
        before = get(cluster, "deployment", "survivor", namespace)

        flaky_registry.stop()
        try:
            # A change that needs the registry: the new tag cannot be resolved while it is down.
            cluster.kubectl("patch", "wasmapp", "survivor", "-n", namespace, "--type=merge",
                            "-p", json.dumps({"spec": {"image": f"{flaky_registry.host}/{repository}:v2"}}))
            during = wait_condition(cluster, "wasmapp", "survivor", namespace, "Ready", "False",
                                    reason="ArtifactUnavailable", timeout=60)
            assert condition(during, "Reconciling")["status"] == "True"
            assert condition(during, "Stalled")["status"] == "False"
            assert "left as it was" in condition(during, "Ready")["message"]
            after = get(cluster, "deployment", "survivor", namespace)
            assert after["metadata"]["uid"] == before["metadata"]["uid"]
            assert after["metadata"]["generation"] == before["metadata"]["generation"]
            assert after["spec"] == before["spec"]
            assert after["status"].get("readyReplicas") == 2
        finally:
            flaky_registry.start()

        v2 = artifacts.wasm_layers_module(push, repository, "v2")
        wait_for(lambda: (deployment_image(cluster, "survivor", namespace) or "").endswith(v2.digest),
                 timeout=90, interval=1, message="rolled out once the registry came back")
        wait_ready(cluster, "survivor", namespace)
    finally:
        push.close()


def test_allow_list_and_own_registry_only(cluster: Cluster, namespace: str, operator: OperatorProcess) -> None:
    """References are resolved only at their own registry; a host that answers nothing is an outage,
    not a reason to look elsewhere."""
    cluster.apply(wasmapp("elsewhere", "127.0.0.1:9/e2e/app:v1"), namespace)
    app = wait_condition(cluster, "wasmapp", "elsewhere", namespace, "Ready", "False", reason="ArtifactUnavailable")
    assert "127.0.0.1:9" in condition(app, "Ready")["message"]
    assert get(cluster, "deployment", "elsewhere", namespace) is None
