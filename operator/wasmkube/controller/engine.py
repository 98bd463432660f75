"""The controller: turns watch events into queued keys, and queued keys into reconciles.

Kopf delivers every watch event to the `observe_*` methods (see `wasmkube.handlers`). They only
update the caches and enqueue keys; a fixed pool of workers does the reconciling. This is the
shape of controller-runtime: events for one key coalesce, a key is never reconciled twice at
once, failures back off per key, and a periodic resync catches anything a watch may have missed.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import structlog

from wasmkube.builders.scaletozero import ENDPOINTS_LABEL, PODS, SERVICE_NAME_LABEL
from wasmkube.builders.scheduling import NodeInfo
from wasmkube.clients.kube import Key, KubeApiError, key_of
from wasmkube.config import OperatorConfig
from wasmkube.controller.apps import reconcile_app
from wasmkube.controller.children import controller_reference
from wasmkube.controller.context import Context
from wasmkube.controller.queue import WorkQueue
from wasmkube.controller.runtimes import reconcile_runtime
from wasmkube.controller.store import ObjectCache

_log = structlog.get_logger(__name__)

APP = "app"
RUNTIME = "runtime"
QueueKey = tuple[str, str, str]  # (kind, namespace, name)
CHILD_SETTLE_SECONDS = 0.5
# A pod of a scale-to-zero app became Ready (or went away): switch its Service's slice soon. Not
# on the request path (the activator forwards held requests itself), but new connections go
# through the activator until the switch.
SLICE_SETTLE_SECONDS = 0.1


# The operator's defaults, so a Controller built without them (tests) runs as `wasmkube run` does.
_DEFAULTS = OperatorConfig()


class Controller:
    def __init__(
        self, ctx: Context, *, workers: int = _DEFAULTS.workers, resync_seconds: float = _DEFAULTS.resync_seconds
    ) -> None:
        self.ctx = ctx
        self.queue: WorkQueue[QueueKey] = WorkQueue()
        self._workers = workers
        self._resync_seconds = resync_seconds
        self._tasks: list[asyncio.Task[None]] = []
        self._node_summaries: dict[str, NodeInfo] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        for index in range(self._workers):
            self._tasks.append(asyncio.create_task(self._work(), name=f"wasmkube-worker-{index}"))
        self._tasks.append(asyncio.create_task(self._resync(), name="wasmkube-resync"))

    @property
    def tasks(self) -> list[asyncio.Task[None]]:
        return list(self._tasks)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- observation (called from Kopf's event handlers; never raise, never block) ----------

    def observe_app(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.ctx.store.apps.remove(key)
            self.queue.drop((APP, *key))
            self.ctx.metrics.forget_app(key)
            self.ctx.pods.forget(key)
            return
        if self.ctx.store.apps.upsert(obj):
            self.queue.add((APP, *key), urgent=_spec_unobserved(obj))

    def observe_runtime(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        before = self.ctx.store.runtimes.get(key)
        if event_type == "DELETED":
            self.ctx.store.runtimes.remove(key)
            self.queue.drop((RUNTIME, *key))
            self._enqueue_all_apps()
            return
        if not self.ctx.store.runtimes.upsert(obj):
            return
        self.queue.add((RUNTIME, *key))
        if before is None or _runtime_meaning(before) != _runtime_meaning(obj):
            self._enqueue_all_apps()

    def observe_child(self, cache: ObjectCache, event_type: str | None, obj: dict[str, Any]) -> None:
        """A Deployment, Service or HPA of ours changed: look at its WasmApp again."""
        key = key_of(obj)
        if event_type == "DELETED":
            cache.remove(key)
        elif not cache.upsert(obj):
            return  # our own write coming back through the watch, already in the cache
        owner = controller_reference(obj)
        if owner and owner.get("kind") == "WasmApp":
            # A rollout changes a Deployment's status several times within a second; waiting a
            # moment lets those changes coalesce into one reconcile and one status write.
            self.queue.add_after((APP, key[0], str(owner.get("name"))), CHILD_SETTLE_SECONDS)

    def observe_endpoint_slice(self, event_type: str | None, obj: dict[str, Any]) -> None:
        """An EndpointSlice of a scale-to-zero app: `<app>-pods`' (the pods) or our own `<app>`'s."""
        cache = self.ctx.store.endpoint_slices
        labels = obj.get("metadata", {}).get("labels") or {}
        if labels.get(ENDPOINTS_LABEL) != PODS:
            self.observe_child(cache, event_type, obj)  # ours, owned by the WasmApp
            return
        key = key_of(obj)
        if event_type == "DELETED":
            cache.remove(key)
        elif not cache.upsert(obj):
            return
        # The slice belongs to the Service `<app>-pods`, which belongs to the WasmApp.
        service = self.ctx.store.services.get((key[0], str(labels.get(SERVICE_NAME_LABEL, ""))))
        owner = controller_reference(service) if service else None
        if owner and owner.get("kind") == "WasmApp":
            self.queue.add_after((APP, key[0], str(owner.get("name"))), SLICE_SETTLE_SECONDS)

    def activator_changed(self) -> None:
        """The activator's endpoints changed: every scale-to-zero app may point at them."""
        for app_key, body in ((k, self.ctx.store.apps.get(k)) for k in self.ctx.store.apps.known_keys()):
            if body is not None and (body.get("spec") or {}).get("scaleToZero") is not None:
                self.queue.add((APP, *app_key))

    def observe_runtime_class(self, event_type: str | None, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if event_type == "DELETED":
            self.ctx.store.runtime_classes.remove(key)
        else:
            self.ctx.store.runtime_classes.upsert(obj)
        owner = controller_reference(obj)
        if owner and owner.get("kind") == "WasmRuntime":
            self.queue.add((RUNTIME, "", str(owner.get("name"))))

    def observe_node(self, event_type: str | None, obj: dict[str, Any]) -> None:
        """Nodes change every heartbeat; only a change in what scheduling reads matters."""
        key = key_of(obj)
        name = key[1]
        if event_type == "DELETED":
            self.ctx.store.nodes.remove(key)
            changed = self._node_summaries.pop(name, None) is not None
        else:
            self.ctx.store.nodes.upsert(obj)
            summary = NodeInfo.from_node(obj)
            changed = self._node_summaries.get(name) != summary
            self._node_summaries[name] = summary
        if changed:
            for runtime_key in self.ctx.store.runtimes.known_keys():
                self.queue.add((RUNTIME, *runtime_key))
            self._enqueue_all_apps()

    def _enqueue_all_apps(self) -> None:
        for app_key in self.ctx.store.apps.known_keys():
            self.queue.add((APP, *app_key))

    # -- work ------------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            item = await self.queue.get()
            kind, namespace, name = item
            started = time.perf_counter()
            result = "ok"
            try:
                # Every log line of this reconcile, in any module, names the object.
                with structlog.contextvars.bound_contextvars(kind=kind, namespace=namespace or None, name=name):
                    await self._reconcile(kind, (namespace, name), item)
            except asyncio.CancelledError:
                raise
            except KubeApiError as exc:
                result = "error"
                if exc.object_going_away:  # deleted while we worked on it: the watch tells the rest
                    self.queue.drop(item)
                else:
                    delay = self.queue.retry(item)
                    _log.warning(
                        "API call failed; retrying",
                        kind=kind,
                        namespace=namespace,
                        name=name,
                        error=str(exc),
                        retry_in=round(delay, 1),
                    )
            except Exception:  # a bug: log it in full, retry, and never let it stop the worker
                result = "error"
                delay = self.queue.retry(item)
                _log.exception(
                    "reconcile failed; retrying", kind=kind, namespace=namespace, name=name, retry_in=round(delay, 1)
                )
            finally:
                self.queue.done(item)
                self.ctx.metrics.reconciles.labels(kind=kind, result=result).inc()
                self.ctx.metrics.reconcile_seconds.labels(kind=kind).observe(time.perf_counter() - started)
                self.ctx.metrics.queue_depth.set(self.queue.depth())

    async def _reconcile(self, kind: str, key: Key, item: QueueKey) -> None:
        reconcile = reconcile_runtime if kind == RUNTIME else reconcile_app
        result = await reconcile(self.ctx, key)
        if result is None:
            self.queue.drop(item)
            return
        if result.retry:
            self.queue.retry(item)
            return
        self.queue.forget(item)
        if result.requeue_after:
            self.queue.add_after(item, result.requeue_after)

    async def _resync(self) -> None:
        """Look at everything again now and then, spread out so it never comes as a burst."""
        while True:
            await asyncio.sleep(self._resync_seconds)
            for runtime_key in self.ctx.store.runtimes.known_keys():
                self.queue.add((RUNTIME, *runtime_key))
            for app_key in self.ctx.store.apps.known_keys():
                self.queue.add_after((APP, *app_key), random.uniform(0, self._resync_seconds / 2))


def _spec_unobserved(obj: dict[str, Any]) -> bool:
    """A new app or a changed spec that no reconcile has acted on yet (it goes first)."""
    observed = (obj.get("status") or {}).get("observedGeneration")
    return bool(observed != obj.get("metadata", {}).get("generation"))


def _runtime_meaning(obj: dict[str, Any]) -> tuple[Any, ...]:
    """What apps read from a runtime: its spec, whether it has Ready nodes, and whether (and
    why) it is Stalled, which an app that is not yet running reports as its own cause."""
    status = obj.get("status") or {}
    stalled: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Stalled"), {})
    return (
        obj.get("metadata", {}).get("generation"),
        bool(status.get("readyNodes")),
        status.get("runtimeClassName"),
        status.get("observedGeneration"),
        (stalled.get("status"), stalled.get("reason"), stalled.get("message")),
    )
