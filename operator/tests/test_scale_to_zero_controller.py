"""The operator's scale-to-zero step with a fake API server: which EndpointSlice it applies, when it
follows spec.replicas, and how a pod's EndpointSlice finds its WasmApp."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from wasmkube.api.wasmapp import WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.workload import build_children
from wasmkube.clients.kube import KubeApiError
from wasmkube.controller.activator_endpoints import StaticActivatorEndpoints, parse_address
from wasmkube.controller.children import ChildApplier
from wasmkube.controller.context import Context
from wasmkube.controller.engine import Controller
from wasmkube.controller.scaletozero import reconcile_scale_to_zero
from wasmkube.controller.store import Store
from wasmkube.metrics import Metrics
from wasmkube.status.conditions import Verdict

IMAGE = "registry.example.com/team/hello@sha256:" + "0" * 64
S2Z: dict[str, Any] = {"scaleToZero": {"idleSeconds": 30, "wakeTimeoutSeconds": 10}, "service": {"port": 80}}
AVAILABLE = Verdict("ready", "Available", "1 of 1 replicas available")


class FakeApi:
    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []
        self.scales: list[tuple[str, int, str | None]] = []
        self.conflict = False
        self.version = 10

    async def apply(self, obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        self.applied.append(copy.deepcopy(obj))
        self.version += 1
        stored = copy.deepcopy(obj)
        stored["metadata"]["resourceVersion"] = str(self.version)
        return stored

    async def patch_scale(self, resource: Any, namespace: str, name: str, replicas: int, *,
                          resource_version: str | None = None) -> dict[str, Any]:  # fmt: skip
        if self.conflict:
            raise KubeApiError(409, "Conflict", "modified")
        self.scales.append((name, replicas, resource_version))
        return {}

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.fixture
def api() -> FakeApi:
    return FakeApi()


@pytest.fixture
def ctx(api: FakeApi) -> Context:
    return Context(client=api, resolver=None, store=Store(), children=ChildApplier(api),  # type: ignore[arg-type]
                   events=None, metrics=Metrics(),  # type: ignore[arg-type]
                   activator=StaticActivatorEndpoints(["10.222.0.1:8012"]))  # fmt: skip


@pytest.fixture
def app(make_app: Callable[..., WasmApp]) -> WasmApp:
    return make_app("greeter", namespace="apps", replicas=3, **S2Z)


@pytest.fixture
def runtime(make_runtime: Callable[..., WasmRuntime]) -> WasmRuntime:
    return make_runtime("wasmtime", handler="wasmtime", defaultPort=8080)


def deployment(replicas: int) -> dict[str, Any]:
    return {"metadata": {"name": "greeter", "namespace": "apps", "resourceVersion": "7"},
            "spec": {"replicas": replicas}, "status": {}}  # fmt: skip


def pods_slice(ready: bool) -> dict[str, Any]:
    return {
        "metadata": {"name": "greeter-pods-abc", "namespace": "apps", "resourceVersion": "3",
                     "labels": {"kubernetes.io/service-name": "greeter-pods", "wasmkube.dev/endpoints": "pods"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["10.222.0.7"], "conditions": {"ready": ready}}],
    }  # fmt: skip


def applied_slice(api: FakeApi) -> dict[str, Any]:
    [slice_] = [o for o in api.applied if o["kind"] == "EndpointSlice"]
    return slice_


async def test_with_a_ready_pod_the_slice_lists_the_pod(ctx: Context, api: FakeApi, app: WasmApp,
                                                        runtime: WasmRuntime) -> None:  # fmt: skip
    ctx.store.endpoint_slices.upsert(pods_slice(ready=True))
    children = build_children(app, runtime, IMAGE)
    await reconcile_scale_to_zero(ctx, app, children, deployment(3), AVAILABLE, {})
    slice_ = applied_slice(api)
    assert slice_["metadata"]["labels"]["wasmkube.dev/target"] == "pods"
    assert slice_["endpoints"][0]["addresses"] == ["10.222.0.7"] and slice_["ports"][0]["port"] == 8080


async def test_without_a_ready_pod_the_slice_lists_the_activator(ctx: Context, api: FakeApi, app: WasmApp,
                                                                 runtime: WasmRuntime) -> None:  # fmt: skip
    ctx.store.endpoint_slices.upsert(pods_slice(ready=False))
    children = build_children(app, runtime, IMAGE)
    outcome = await reconcile_scale_to_zero(ctx, app, children, deployment(0), AVAILABLE, {})
    slice_ = applied_slice(api)
    assert slice_["metadata"]["labels"]["wasmkube.dev/target"] == "activator"
    assert slice_["endpoints"][0]["addresses"] == ["10.222.0.1"] and slice_["ports"][0]["port"] == 8012
    assert outcome.verdict.reason == "ScaledToZero"
    assert api.scales == []  # at zero nothing is scaled by the operator


async def test_an_unchanged_slice_is_not_applied_again(ctx: Context, api: FakeApi, app: WasmApp,
                                                       runtime: WasmRuntime) -> None:  # fmt: skip
    children = build_children(app, runtime, IMAGE)
    await reconcile_scale_to_zero(ctx, app, children, deployment(0), AVAILABLE, {})
    await reconcile_scale_to_zero(ctx, app, children, deployment(0), AVAILABLE, {})
    assert len(api.applied) == 1


async def test_awake_it_follows_spec_replicas_with_a_precondition(ctx: Context, api: FakeApi, app: WasmApp,
                                                                  runtime: WasmRuntime) -> None:  # fmt: skip
    children = build_children(app, runtime, IMAGE)
    await reconcile_scale_to_zero(ctx, app, children, deployment(1), AVAILABLE, {})
    assert api.scales == [("greeter", 3, "7")]
    api.conflict = True  # the activator scaled it meanwhile: no error, the watch brings the news
    await reconcile_scale_to_zero(ctx, app, children, deployment(1), AVAILABLE, {})


async def test_a_pods_slice_enqueues_the_app_that_owns_its_service(ctx: Context) -> None:
    controller = Controller(ctx)
    ctx.store.services.upsert({"metadata": {"name": "greeter-pods", "namespace": "apps", "resourceVersion": "1",
                               "ownerReferences": [{"kind": "WasmApp", "name": "greeter", "uid": "u",
                                                    "controller": True}]}})  # fmt: skip
    controller.observe_endpoint_slice("ADDED", pods_slice(ready=True))
    assert ctx.store.endpoint_slices.get(("apps", "greeter-pods-abc")) is not None
    assert ("app", "apps", "greeter") in controller.queue._timers


@pytest.mark.parametrize("text", ["10.222.0.1", "10.222.0.1:", "host:80", "10.222.0.300:80", "10.0.0.1:70000"])
def test_activator_addresses_are_checked(text: str) -> None:
    with pytest.raises(ValueError):
        parse_address(text)
