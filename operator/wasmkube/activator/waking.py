"""Scaling a Deployment between 0 and N through its /scale subresource.

A wake is single-flight per app: however many requests arrive at zero, one scale-up is sent. A
scale-down carries the resourceVersion it was decided on, so a wake that lands in between wins
(the API server answers 409 and the app stays up).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from wasmkube.activator.metrics import ActivatorMetrics
from wasmkube.activator.routing import AppRoute
from wasmkube.clients.kube import DEPLOYMENTS, Key, KubeApiError, KubeClient

_log = structlog.get_logger(__name__)


class Waker:
    def __init__(self, client: KubeClient, metrics: ActivatorMetrics) -> None:
        self._client = client
        self._metrics = metrics
        self._inflight: dict[Key, asyncio.Task[None]] = {}
        self._woken_at: dict[Key, float] = {}  # app key -> when its scale-up was sent
        self.last_error: dict[Key, str] = {}

    async def get_scale(self, route: AppRoute) -> dict[str, Any]:
        path = DEPLOYMENTS.path(route.namespace, route.deployment, "scale")
        return await self._client.request("GET", path)

    def wake(self, route: AppRoute) -> None:
        """Make sure the app is scaled up (at most one attempt in flight per app)."""
        task = self._inflight.get(route.key)
        if task is None or task.done():
            self._inflight[route.key] = asyncio.create_task(self._wake(route), name=f"wake-{route.key}")

    async def _wake(self, route: AppRoute) -> None:
        try:
            for _ in range(3):
                scale = await self.get_scale(route)
                if int(scale.get("spec", {}).get("replicas") or 0) > 0:
                    return  # awake already (or waking): its pods are on their way
                try:
                    await self._client.patch_scale(
                        DEPLOYMENTS,
                        route.namespace,
                        route.deployment,
                        route.awake_replicas,
                        resource_version=scale.get("metadata", {}).get("resourceVersion"),
                    )
                except KubeApiError as exc:
                    if exc.status == 409:
                        continue  # changed under us: read it again
                    raise
                self._woken_at[route.key] = time.monotonic()
                self._metrics.wakes.labels(*route.key).inc()
                self.last_error.pop(route.key, None)
                _log.info("woke app", namespace=route.namespace, app=route.app, replicas=route.awake_replicas)
                return
        except KubeApiError as exc:
            self.last_error[route.key] = f"scaling Deployment {route.namespace}/{route.deployment} failed: {exc}"
            _log.warning("wake failed", namespace=route.namespace, app=route.app, error=str(exc))

    def pods_ready(self, route: AppRoute) -> None:
        """The app has a Ready pod: if we woke it, that ends the wake."""
        started = self._woken_at.pop(route.key, None)
        if started is not None:
            self._metrics.wake_seconds.labels(*route.key).observe(time.monotonic() - started)

    def describe(self, route: AppRoute) -> str:
        """Why the app is not serving yet, for a 504 body."""
        error = self.last_error.get(route.key)
        if error:
            return error
        started = self._woken_at.get(route.key)
        if started is not None:
            return (
                f"scaled to {route.awake_replicas} replica(s) {time.monotonic() - started:.1f}s ago; no pod of "
                f"Service {route.namespace}/{route.pods_service} is Ready yet (see kubectl describe pods)"
            )
        return f"no pod of Service {route.namespace}/{route.pods_service} is Ready"

    async def scale_down(self, route: AppRoute, resource_version: str | None) -> bool:
        """Scale to 0 unless the Deployment changed since `resource_version`; True if it did."""
        try:
            await self._client.patch_scale(
                DEPLOYMENTS, route.namespace, route.deployment, 0, resource_version=resource_version
            )
        except KubeApiError as exc:
            if exc.status in (404, 409):
                return False
            raise
        self._metrics.scale_downs.labels(*route.key).inc()
        _log.info("scaled app to zero", namespace=route.namespace, app=route.app, idle_seconds=route.idle_seconds)
        return True

    async def close(self) -> None:
        tasks = [t for t in self._inflight.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
