"""Finding a woken app's first serving pod before the kubelet says it is Ready.

Between a Wasm pod answering and the EndpointSlice calling it Ready lie the kubelet's next probe
tick (startup probe every second), its status write and the EndpointSlice controller's update:
most of a wake's latency when the module itself starts in milliseconds. The pod is listed (not
Ready) in `<app>-pods` as soon as it has an address, so while requests are held the activator asks
each starting pod the app's own readiness question (the same path and port as the kubelet's
readiness probe) every `interval_seconds`, and forwards to the first that answers 200-399, as a
kubelet probe would count it. Knative's activator probes pods directly for the same reason.

An app without an HTTP readiness probe is Ready once its container runs, so for it an accepted
TCP connection is the answer. A pod found this way serves only the held requests of this
activator; the app's Service still switches to the pods only once the kubelet calls them Ready.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp
import structlog

from wasmkube.activator.endpoints import EndpointTracker
from wasmkube.activator.routing import AppRoute
from wasmkube.builders.scaletozero import Endpoint
from wasmkube.clients.kube import Key

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ProbeTiming:
    interval_seconds: float = 0.05
    timeout_seconds: float = 1.0


class StartingPodProber:
    """One probe loop per waking app (single flight), ending when a pod serves or time is up."""

    def __init__(self, endpoints: EndpointTracker, timing: ProbeTiming | None = None) -> None:
        self._endpoints = endpoints
        self._timing = timing or ProbeTiming()
        self._loops: dict[Key, asyncio.Task[None]] = {}
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            seconds = self._timing.timeout_seconds
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=seconds, connect=seconds),
                connector=aiohttp.TCPConnector(limit=0, force_close=True),
                trust_env=False,
            )
        return self._session

    def watch(self, route: AppRoute, until: float) -> None:
        """Probe `route`'s starting pods until one serves or `until` (monotonic) passes."""
        loop = self._loops.get(route.key)
        if loop is None or loop.done():
            self._loops[route.key] = asyncio.create_task(self._run(route, until), name=f"probe-{route.key}")

    async def _run(self, route: AppRoute, until: float) -> None:
        while time.monotonic() < until and not self._endpoints.ready(route.pods_key):
            starting = self._endpoints.starting(route.pods_key)
            if starting:
                answers = await asyncio.gather(*(self.serves(route, pod) for pod in starting))
                serving = [pod for pod, ok in zip(starting, answers, strict=True) if ok]
                if serving:
                    _log.info("starting pod answers; forwarding held requests", app=route.app,
                              pods=[p.address for p in serving])  # fmt: skip
                    self._endpoints.mark_serving(route.pods_key, serving)
                    return
            await self._endpoints.wait_changed(route.pods_key, self._timing.interval_seconds)

    async def serves(self, route: AppRoute, pod: Endpoint) -> bool:
        """True if `pod` answers the app's readiness question now."""
        port = route.probe_port or pod.port
        try:
            if route.probe_path is None:
                _, writer = await asyncio.wait_for(
                    asyncio.open_connection(pod.address, port), self._timing.timeout_seconds
                )
                writer.close()
                return True
            async with self._client().get(f"http://{pod.address}:{port}{route.probe_path}") as answer:
                return 200 <= answer.status < 400
        except (OSError, TimeoutError, aiohttp.ClientError):
            return False

    async def close(self) -> None:
        loops = [t for t in self._loops.values() if not t.done()]
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
