"""One WasmApp reconcile, in-process: state in (objects on a fake server and in the caches),
`reconcile_app`, state out (status written, children applied, Events posted, when to look again).

The fake server is `fakekube.FakeClient`; nothing here talks to a cluster, and nothing here
claims to show Kubernetes behaviour (that is what e2e/ is for): these tests pin down what the
reconcile decides from what it reads.
"""

from __future__ import annotations

from typing import Any

import pytest
from fakekube import World, resolved

from wasmkube.clients.kube import KubeApiError
from wasmkube.controller.apps import reconcile_app

IMAGE = "registry.example.com/team/hello:1.0"
REPOSITORY = "registry.example.com/team/hello"
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64
KEY = ("apps", "hello")
LONG_AGO = "2020-01-01T00:00:00Z"


def app_body(generation: int = 1, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wasmkube.dev/v1alpha1",
        "kind": "WasmApp",
        "metadata": {"name": "hello", "namespace": "apps", "uid": "hello-uid", "generation": generation},
        "spec": {"image": IMAGE, **spec},
    }


def runtime_body(name: str = "wasmtime", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wasmkube.dev/v1alpha1",
        "kind": "WasmRuntime",
        "metadata": {"name": name, "uid": f"{name}-uid", "generation": 1},
        "spec": {"handler": name, "default": True, **spec},
    }


def node_body(name: str = "node-1", ready: bool = True, **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


class Apps(World):
    """A world with one Ready node and a default runtime, in which `hello` can run."""

    def __init__(self) -> None:
        super().__init__()
        self.add(runtime_body(), self.ctx.store.runtimes)
        self.add(node_body(), self.ctx.store.nodes)
        self.resolver.answers[IMAGE] = resolved(IMAGE, DIGEST_A)

    def add_app(self, **spec: Any) -> None:
        self.add(app_body(**spec), self.ctx.store.apps)

    def app(self) -> dict[str, Any]:
        found = self.client.stored("WasmApp", *KEY)
        assert found is not None
        return found

    def status(self) -> dict[str, Any]:
        return dict(self.app().get("status") or {})

    def condition(self, kind: str) -> dict[str, Any]:
        return next(c for c in self.status()["conditions"] if c["type"] == kind)

    def deployment(self) -> dict[str, Any] | None:
        return self.client.stored("Deployment", *KEY)

    def image(self) -> str:
        deployment = self.deployment()
        assert deployment is not None
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    def roll_out(self) -> None:
        """The Deployment controller did its work: every replica runs the current template."""

        def done(deployment: dict[str, Any]) -> None:
            replicas = int(deployment["spec"].get("replicas", 1))
            deployment["status"] = {
                "observedGeneration": deployment["metadata"]["generation"],
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "conditions": [
                    {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                    {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                ],
            }

        self.edit("Deployment", *KEY, self.ctx.store.deployments, done)

    def registry_checked_long_ago(self) -> None:
        """Time passed: a Track app's registry check is due."""

        def age(app: dict[str, Any]) -> None:
            app["status"]["artifact"]["resolvedAt"] = LONG_AGO

        self.edit("WasmApp", *KEY, self.ctx.store.apps, age)


@pytest.fixture
def world() -> Apps:
    return Apps()


async def ready_tracking_app(world: Apps) -> None:
    """`hello` with updatePolicy Track, pinned to DIGEST_A and Ready."""
    world.add_app(updatePolicy="Track", trackIntervalSeconds=60)
    await reconcile_app(world.ctx, KEY)
    world.roll_out()
    await reconcile_app(world.ctx, KEY)
    assert world.condition("Ready")["reason"] == "Available"
    assert world.status()["artifact"]["digest"] == DIGEST_A


# --- Track: a new digest ---------------------------------------------------------------------------


async def test_a_new_digest_is_rolled_out_and_announced(world: Apps) -> None:
    await ready_tracking_app(world)
    world.registry_checked_long_ago()
    world.resolver.answers[IMAGE] = resolved(IMAGE, DIGEST_B)

    await reconcile_app(world.ctx, KEY)

    assert world.status()["artifact"]["digest"] == DIGEST_B
    assert world.image() == f"{REPOSITORY}@{DIGEST_B}"
    new_digest = [e for e in await world.events() if e[1] == "NewDigest"]
    assert new_digest == [("Normal", "NewDigest", f"{IMAGE} moved from {DIGEST_A} to {DIGEST_B}; rolling out")]


@pytest.mark.parametrize("failure", ["runtime deleted", "Deployment refused"])
async def test_a_new_digest_that_does_not_roll_out_is_not_announced(world: Apps, failure: str) -> None:
    """The bug: the registry reported a new digest, a later step failed, and a "NewDigest ...
    rolling out" Event was posted while status kept the old digest and nothing rolled out."""
    await ready_tracking_app(world)
    world.registry_checked_long_ago()
    world.resolver.answers[IMAGE] = resolved(IMAGE, DIGEST_B)
    if failure == "runtime deleted":
        world.ctx.store.runtimes.remove(("", "wasmtime"))
    else:
        world.client.fail_with = KubeApiError(422, "Invalid", "Deployment.apps is invalid: spec.template: bad")

    await reconcile_app(world.ctx, KEY)

    assert world.condition("Stalled")["status"] == "True"
    assert world.status()["artifact"]["digest"] == DIGEST_A
    assert world.image() == f"{REPOSITORY}@{DIGEST_A}"
    assert [e for e in await world.events() if e[1] == "NewDigest"] == []
