"""One WasmRuntime reconcile, in-process: state in, `reconcile_runtime`, state out (its
RuntimeClass, its status, its Events), on fakekube's fake API server."""

from __future__ import annotations

from typing import Any

import pytest
from fakekube import World
from test_reconcile_apps import node_body, runtime_body

from wasmkube.clients.kube import KubeApiError
from wasmkube.controller.result import Result
from wasmkube.controller.runtimes import reconcile_runtime

KEY = ("", "wasmtime")
SHIM = {"wasmkube.dev/shim-wasmtime": "ready"}


class Runtimes(World):
    def add_runtime(self, **spec: Any) -> None:
        self.add(runtime_body(nodeSelector=SHIM, **spec), self.ctx.store.runtimes)

    def status(self) -> dict[str, Any]:
        found = self.client.stored("WasmRuntime", *KEY)
        assert found is not None
        return dict(found.get("status") or {})

    def ready(self) -> dict[str, Any]:
        return next(c for c in self.status()["conditions"] if c["type"] == "Ready")

    def runtime_class(self, name: str = "wasmtime") -> dict[str, Any] | None:
        return self.client.stored("RuntimeClass", "", name)


@pytest.fixture
def world() -> Runtimes:
    return Runtimes()


async def reconcile(world: Runtimes) -> Result:
    result = await reconcile_runtime(world.ctx, KEY)
    assert result is not None
    return result


async def test_a_runtime_with_ready_nodes_is_ready_and_owns_its_runtime_class(world: Runtimes) -> None:
    world.add(node_body("wasm-1", labels=SHIM), world.ctx.store.nodes)
    world.add(node_body("plain-1"), world.ctx.store.nodes)
    world.add_runtime()

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason, result.retry, result.requeue_after) == (
        "ready", "NodesReady", False, None)  # fmt: skip
    runtime_class = world.runtime_class()
    assert runtime_class is not None and runtime_class["handler"] == "wasmtime"
    assert runtime_class["scheduling"]["nodeSelector"] == SHIM
    assert runtime_class["metadata"]["ownerReferences"][0]["uid"] == "wasmtime-uid"
    status = world.status()
    assert (status["eligibleNodes"], status["readyNodes"], status["runtimeClassName"]) == (1, 1, "wasmtime")
    assert world.ready()["message"] == "1 of 1 matching node(s) Ready"
    assert await world.events() == [("Normal", "NodesReady", "1 of 1 matching node(s) Ready")]


@pytest.mark.parametrize(
    ("nodes", "message"),
    [
        ([], "no node matches wasmkube.dev/shim-wasmtime=ready: install the shim and label nodes"),
        (
            [node_body("wasm-1", ready=False, labels=SHIM)],
            "1 node(s) match wasmkube.dev/shim-wasmtime=ready, none is Ready",
        ),
    ],
    ids=["no match", "none Ready"],
)
async def test_a_runtime_without_ready_nodes_is_stalled(
    world: Runtimes, nodes: list[dict[str, Any]], message: str
) -> None:
    for node in nodes:
        world.add(node, world.ctx.store.nodes)
    world.add_runtime()

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason, result.retry) == ("stalled", "NoEligibleNodes", False)
    assert world.ready()["message"] == message
    assert world.runtime_class() is not None  # the class exists anyway: pods wait for nodes, not for it
    assert await world.events() == [("Warning", "NoEligibleNodes", message)]


async def test_an_unchanged_runtime_costs_no_write_and_no_event(world: Runtimes) -> None:
    world.add(node_body("wasm-1", labels=SHIM), world.ctx.store.nodes)
    world.add_runtime()
    await reconcile(world)
    await world.events()
    sent = (len(world.client.status_writes), len(world.client.applies), len(world.client.events))

    await reconcile(world)
    await reconcile(world)

    assert (len(world.client.status_writes), len(world.client.applies), len(world.client.events)) == sent


async def test_a_new_handler_replaces_the_runtime_class(world: Runtimes) -> None:
    world.add_runtime()
    await reconcile(world)
    old_uid = world.runtime_class()["metadata"]["uid"]  # type: ignore[index]
    world.edit("WasmRuntime", *KEY, world.ctx.store.runtimes, lambda r: r["spec"].update(handler="wasmtime-v2"))

    await reconcile(world)

    assert [d[:3] for d in world.client.deletes] == [("runtimeclasses", None, "wasmtime")]
    replaced = world.runtime_class()
    assert replaced is not None and replaced["handler"] == "wasmtime-v2" and replaced["metadata"]["uid"] != old_uid


async def test_a_renamed_runtime_class_drops_the_old_one(world: Runtimes) -> None:
    world.add_runtime()
    await reconcile(world)
    world.edit("WasmRuntime", *KEY, world.ctx.store.runtimes, lambda r: r["spec"].update(runtimeClassName="wt"))

    await reconcile(world)

    assert world.runtime_class("wasmtime") is None and world.runtime_class("wt") is not None
    assert world.status()["runtimeClassName"] == "wt"


async def test_a_runtime_class_of_someone_else_is_a_name_conflict(world: Runtimes) -> None:
    theirs = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "wasmtime"},
              "handler": "runc"}  # fmt: skip
    world.add(theirs, world.ctx.store.runtime_classes)
    world.add_runtime()

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason, result.retry) == ("stalled", "NameConflict", False)
    assert "runtimeClassName" not in world.status()
    assert world.runtime_class()["handler"] == "runc"  # type: ignore[index]


async def test_a_spec_the_schema_refuses_is_stalled(world: Runtimes) -> None:
    world.add_runtime(handler="Not A Handler")

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason) == ("stalled", "InvalidSpec")
    assert world.client.applies == [] and "runtimeClassName" not in world.status()


async def test_a_runtime_class_the_api_server_refuses_is_stalled(world: Runtimes) -> None:
    world.client.fail_with = KubeApiError(422, "Invalid", "RuntimeClass.node.k8s.io is invalid: overhead: bad")
    world.add_runtime()

    result = await reconcile(world)

    assert (result.verdict.state, result.verdict.reason) == ("stalled", "InvalidSpec")
    assert world.ready()["message"] == "the API server refused the RuntimeClass: " + world.client.fail_with.message


async def test_a_busy_api_server_is_raised_for_the_engine_to_retry(world: Runtimes) -> None:
    world.client.fail_with = KubeApiError(503, "ServiceUnavailable", "etcd is busy")
    world.add_runtime()
    with pytest.raises(KubeApiError):
        await reconcile(world)
    assert world.client.status_writes == []


async def test_a_runtime_that_is_gone_or_going_is_not_reconciled(world: Runtimes) -> None:
    assert await reconcile_runtime(world.ctx, KEY) is None
    body = runtime_body()
    body["metadata"]["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    world.add(body, world.ctx.store.runtimes)
    assert await reconcile_runtime(world.ctx, KEY) is None
    assert world.client.applies == []
