"""`wasmkube render` prints exactly what the operator applies, hash annotation included.

The operator's side is taken from real reconciles on fakekube's fake API server, so the
comparison also covers whatever the reconcilers do on top of the builders. The registry is
made to pin each image to itself: offline, render can only print the image the spec names.
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest
import yaml
from fakekube import World, resolved

from wasmkube.api.artifact import ArtifactKind
from wasmkube.builders.applied import APPLIED_HASH_ANNOTATION
from wasmkube.cli import render_documents
from wasmkube.controller.apps import reconcile_app
from wasmkube.controller.runtimes import reconcile_runtime

DOCUMENTS = """\
apiVersion: wasmkube.dev/v1alpha1
kind: WasmRuntime
metadata: {name: spin, uid: spin-uid, generation: 1}
spec:
  handler: spin
  default: true
  nodeSelector: {wasmkube.dev/spin: "true"}
  tolerations: [{key: wasm, operator: Exists, effect: NoSchedule}]
  overhead: {podFixed: {cpu: 10m}}
---
apiVersion: wasmkube.dev/v1alpha1
kind: WasmApp
metadata: {name: hello, namespace: demo, uid: hello-uid, generation: 1}
spec:
  image: registry.example.com/demo/hello:1.0
  ports: [{name: http, containerPort: 80}]
  service: {}
  autoscaling: {minReplicas: 1, maxReplicas: 4}
---
apiVersion: wasmkube.dev/v1alpha1
kind: WasmApp
metadata: {name: sleepy, namespace: demo, uid: sleepy-uid, generation: 1}
spec:
  image: registry.example.com/demo/sleepy:1.0
  ports: [{name: http, containerPort: 8080}]
  service: {port: 80}
  scaleToZero: {idleSeconds: 30}
"""

# Applied, but not printed: which addresses `<app>`'s EndpointSlice lists (the pods or the
# activator) depends on what is running, which render cannot know.
LIVE_ONLY_KINDS = {"EndpointSlice"}

Identity = tuple[str, str, str]


def identity(obj: dict[str, Any]) -> Identity:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(DOCUMENTS) if d]


async def operator_applies(docs: list[dict[str, Any]]) -> dict[Identity, dict[str, Any]]:
    """Every object the operator sends to the API server for these documents, as sent."""
    world = World()
    sent: dict[Identity, dict[str, Any]] = {}
    apply = world.client.apply

    async def recording_apply(obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        sent[identity(obj)] = copy.deepcopy(obj)
        return await apply(obj, force=force)

    world.client.apply = recording_apply  # type: ignore[method-assign]
    for doc in docs:
        if doc["kind"] == "WasmRuntime":
            world.add(doc, world.ctx.store.runtimes)
            assert await reconcile_runtime(world.ctx, ("", doc["metadata"]["name"])) is not None
    for doc in docs:
        if doc["kind"] == "WasmApp":
            image = doc["spec"]["image"]
            pinned = resolved(image, "sha256:" + "a" * 64, ArtifactKind.MODULE)
            world.resolver.answers[image] = dataclasses.replace(pinned, pinned=image)
            world.add(doc, world.ctx.store.apps)
            meta = doc["metadata"]
            assert await reconcile_app(world.ctx, (meta["namespace"], meta["name"])) is not None
    return sent


@pytest.fixture
async def applied() -> dict[Identity, dict[str, Any]]:
    return await operator_applies(documents())


def rendered() -> dict[Identity, dict[str, Any]]:
    return {identity(o): o for o in render_documents(documents(), ArtifactKind.MODULE)}


def test_every_kind_is_covered(applied: dict[Identity, dict[str, Any]]) -> None:
    kinds = {kind for kind, _, _ in applied}
    assert kinds == {"RuntimeClass", "Deployment", "Service", "HorizontalPodAutoscaler", "EndpointSlice"}
    assert {kind for kind, _, _ in rendered()} == kinds - LIVE_ONLY_KINDS


def test_render_prints_the_objects_the_operator_applies(applied: dict[Identity, dict[str, Any]]) -> None:
    printed = rendered()
    assert set(printed) == {k for k in applied if k[0] not in LIVE_ONLY_KINDS}
    for key, obj in printed.items():
        assert obj == applied[key], key


@pytest.mark.parametrize("kind", ["RuntimeClass", "Deployment", "Service", "HorizontalPodAutoscaler"])
def test_render_carries_the_applied_hash(kind: str) -> None:
    for (printed_kind, _, _), obj in rendered().items():
        if printed_kind == kind:
            assert APPLIED_HASH_ANNOTATION in obj["metadata"]["annotations"]
