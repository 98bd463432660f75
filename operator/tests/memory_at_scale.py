"""Offline: what the operator's caches hold with N WasmApps (not a test; run it by hand).

    .venv/bin/python operator/tests/memory_at_scale.py 1000

The real Controller (64 workers) reconciles N WasmApps against `fakekube.FakeClient`, whose
answers are made to look like the API server's: freshly decoded JSON (no string shared with
anything), a resourceVersion, managedFields, and the defaults the API server adds to a
Deployment; then each Deployment's status update arrives as a new copy, as the watch would
deliver it. Printed: VmRSS after the imports of `wasmkube run`, the RSS growth (which includes
the fake server's own copies, printed too), and the bytes each cache holds.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import itertools
import json
import re
import sys
from typing import Any

from fakekube import FakeClient, World, make_context, resolved

import wasmkube.cli
import wasmkube.handlers
import wasmkube.logging_setup
import wasmkube.metrics  # what `wasmkube run` imports, so RSS counts them
from wasmkube.controller.engine import Controller

IMAGE = "127.0.0.1:5001/bench/hello:v1"
_versions = itertools.count(1000)


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        found = re.search(r"VmRSS:\s+(\d+)", status.read())
    return int(found.group(1)) / 1024 if found else 0.0


def deep_size(root: Any) -> int:
    """Bytes of `root` and of everything it reaches through dicts and lists, each object once."""
    seen: set[int] = set()
    stack, total = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
    return total


def _fields(value: Any, depth: int = 0) -> dict[str, Any]:
    if not isinstance(value, dict) or depth > 6:
        return {}
    return {f"f:{k}": _fields(v, depth + 1) for k, v in value.items()}


_DEPLOYMENT_DEFAULTS = {"revisionHistoryLimit": 10, "progressDeadlineSeconds": 600, "replicas": 1,
                        "strategy": {"type": "RollingUpdate",
                                     "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}}
_POD_DEFAULTS = {"restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
                 "securityContext": {}, "schedulerName": "default-scheduler"}
_CONTAINER_DEFAULTS = {"terminationMessagePath": "/dev/termination-log", "imagePullPolicy": "IfNotPresent",
                       "resources": {}}


def _available(name: str) -> dict[str, Any]:
    def condition(kind: str, reason: str, message: str) -> dict[str, str]:
        return {"type": kind, "status": "True", "lastUpdateTime": "2026-01-01T00:00:05Z",
                "lastTransitionTime": "2026-01-01T00:00:05Z", "reason": reason, "message": message}

    return {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
            "availableReplicas": 1, "conditions": [
                condition("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
                condition("Progressing", "NewReplicaSetAvailable",
                          f'ReplicaSet "{name}-7d9f8b6c5d" has successfully progressed.')]}


def server_shaped(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` as a response or watch event decodes: new resourceVersion, defaults, managedFields."""
    out = copy.deepcopy(obj)
    meta = out["metadata"]
    meta["resourceVersion"] = str(next(_versions))
    meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
    if out["kind"] == "Deployment":
        for key, value in _DEPLOYMENT_DEFAULTS.items():
            out["spec"].setdefault(key, value)
        pod = out["spec"]["template"]["spec"]
        for key, value in _POD_DEFAULTS.items():
            pod.setdefault(key, value)
        for container in pod.get("containers", []):
            for key, value in _CONTAINER_DEFAULTS.items():
                container.setdefault(key, value)
        out.setdefault("status", _available(meta["name"]))
    meta["managedFields"] = [
        {"manager": "wasmkube", "operation": "Apply", "apiVersion": out["apiVersion"], "fieldsType": "FieldsV1",
         "time": "2026-01-01T00:00:00Z", "fieldsV1": _fields({"metadata": meta, "spec": out.get("spec")})},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": out["apiVersion"],
         "time": "2026-01-01T00:00:01Z", "fieldsType": "FieldsV1", "subresource": "status",
         "fieldsV1": _fields({"status": out.get("status") or {}})},
    ]
    return dict(json.loads(json.dumps(out)))


class ServerShaped(FakeClient):
    async def apply(self, obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        return server_shaped(await super().apply(obj, force=force))

    async def patch_status(self, resource: Any, namespace: str | None, name: str,
                           status: dict[str, Any]) -> dict[str, Any]:
        return server_shaped(await super().patch_status(resource, namespace, name, status))


def wasmapp(name: str) -> dict[str, Any]:
    """What the benchmark creates (e2e/bench/wasmkube_row.py)."""
    return {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
            "metadata": {"name": name, "namespace": "bench", "generation": 1},
            "spec": {"image": IMAGE, "replicas": 1}}


async def settle(controller: Controller) -> None:
    await asyncio.sleep(0.1)
    while not controller.queue.idle() or controller.queue._timers:  # noqa: ASYNC110 (polling a queue we do not own)
        await asyncio.sleep(0.05)


async def main(n: int) -> None:
    wasmkube.logging_setup.configure_logging("json", "warning")
    world = World()
    world.client = ServerShaped()
    world.ctx = make_context(world.client, world.resolver)
    runtime = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmRuntime",
               "metadata": {"name": "wasmtime", "uid": "wasmtime-uid", "generation": 1},
               "spec": {"handler": "wasmtime", "default": True}}
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1", "labels": {}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
    world.add(runtime, world.ctx.store.runtimes)
    world.add(node, world.ctx.store.nodes)
    world.resolver.answers[IMAGE] = resolved(IMAGE, "sha256:" + "a" * 64)
    controller = Controller(world.ctx, workers=64, resync_seconds=3600)
    controller.start()
    gc.collect()
    before = rss_mib()
    for i in range(n):
        stored = world.client.put(wasmapp(f"app-{i:05d}"))
        controller.observe_app("ADDED", server_shaped(stored))
    await settle(controller)
    store = world.ctx.store
    for deployment in store.deployments.values():  # the Deployment controller reports the rollout
        update = {**deployment, "metadata": {**deployment["metadata"]}}
        controller.observe_child(store.deployments, "MODIFIED", server_shaped(update))
    await settle(controller)
    await controller.stop()
    gc.collect()
    after = rss_mib()
    print(f"RSS before the apps {before:.1f} MiB, after {n} apps {after:.1f} MiB (+{after - before:.1f})")
    print(f"  fake server's own copies (not in a real operator): {deep_size(world.client.objects) / 2**20:.2f} MiB")
    for name in ("apps", "deployments", "services", "autoscalers"):
        cache = getattr(store, name)
        print(f"  cache {name:<12} {len(cache):5d} objects {deep_size(cache._objects) / 2**20:6.2f} MiB")


if __name__ == "__main__":
    print(f"RSS after the imports of `wasmkube run`: {rss_mib():.1f} MiB")
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000))
