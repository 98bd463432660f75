"""When an app goes back to zero: after `idleSeconds` with no request served, in flight or held.

Run by one activator replica at a time (the holder of a Lease). Every few seconds it reads the
shim's counters on each Ready pod (`wasmkube_http_requests_total`, `..._in_flight`, served when the
pod's env has WASMKUBE_METRICS_ADDR); any change, anything in flight, any request held here, or a
change in the set of pods restarts the app's idle clock. A pod whose metrics cannot be read keeps
the app up: an app is never scaled down on a guess.

An app with no Ready pod but replicas above zero (a wake still under way, or one that never became
Ready) is only scaled down after its replica count was seen unchanged for a whole idle period,
so a wake started by another replica is not undone; `wakeTimeoutSeconds <= idleSeconds` (a CEL
rule) means its held requests have been answered by then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import structlog

from wasmkube.activator.endpoints import EndpointTracker
from wasmkube.activator.holding import Holding
from wasmkube.activator.metrics import ActivatorMetrics
from wasmkube.activator.routing import AppRoute, RouteTable
from wasmkube.activator.waking import Waker
from wasmkube.builders.scaletozero import METRICS_PORT, Endpoint
from wasmkube.clients.kube import Key, KubeApiError

_log = structlog.get_logger(__name__)

REQUESTS_TOTAL = "wasmkube_http_requests_total"
IN_FLIGHT = "wasmkube_http_requests_in_flight"
SCRAPE_TIMEOUT_SECONDS = 2.0
SCRAPE_CONCURRENCY = 32


@dataclass(frozen=True)
class PodCounters:
    total: float
    in_flight: float


def parse_counters(text: str) -> PodCounters | None:
    """The shim's two request metrics from Prometheus text; None if either is missing."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if name in (REQUESTS_TOTAL, IN_FLIGHT):
            rest = line.rsplit("}", 1)[1] if "}" in line else line[len(name) :]
            try:
                values[name] = values.get(name, 0.0) + float(rest.split()[0])
            except (ValueError, IndexError):
                return None
    if REQUESTS_TOTAL not in values or IN_FLIGHT not in values:
        return None
    return PodCounters(values[REQUESTS_TOTAL], values[IN_FLIGHT])


class MetricsScraper:
    """Reads one pod's counters over HTTP (port 9091 unless told otherwise)."""

    def __init__(self, port: int = METRICS_PORT) -> None:
        self.port = port
        self._session: aiohttp.ClientSession | None = None
        self._limit = asyncio.Semaphore(SCRAPE_CONCURRENCY)

    async def __call__(self, endpoint: Endpoint) -> PodCounters | None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_SECONDS), trust_env=False
            )
        async with self._limit:
            try:
                async with self._session.get(f"http://{endpoint.address}:{self.port}/metrics") as response:
                    if response.status != 200:
                        return None
                    return parse_counters(await response.text())
            except (aiohttp.ClientError, TimeoutError):
                return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


Scrape = Callable[[Endpoint], Awaitable[PodCounters | None]]


@dataclass
class AppIdle:
    """What the idle loop remembers about one app."""

    last_active: float
    total: float | None = None
    pods: frozenset[Endpoint] = field(default_factory=frozenset)
    replicas_seen: int | None = None  # from the last /scale read, for apps without Ready pods


class IdleLoop:
    def __init__(
        self,
        routes: RouteTable,
        endpoints: EndpointTracker,
        holding: Holding,
        waker: Waker,
        metrics: ActivatorMetrics,
        scrape: Scrape,
        interval_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._routes = routes
        self._endpoints = endpoints
        self._holding = holding
        self._waker = waker
        self._metrics = metrics
        self._scrape = scrape
        self.interval_seconds = interval_seconds
        self._clock = clock
        self.state: dict[Key, AppIdle] = {}

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # a bug in one tick must not stop scale-down for every app
                _log.exception("idle check failed")
            await asyncio.sleep(self.interval_seconds)

    async def tick(self) -> None:
        routes = self._routes.routes()
        known = {r.key for r in routes}
        for key in [k for k in self.state if k not in known]:
            del self.state[key]
        await asyncio.gather(*(self._check(route) for route in routes))

    async def _check(self, route: AppRoute) -> None:
        now = self._clock()
        state = self.state.setdefault(route.key, AppIdle(last_active=now))
        if self._holding.count(route.key):
            state.last_active = now
            return
        pods = frozenset(self._endpoints.ready(route.pods_key))
        if pods:
            counters = await asyncio.gather(*(self._scrape(p) for p in pods))
            if any(c is None for c in counters):
                self._metrics.scrape_errors.labels(*route.key).inc()
                state.last_active = now
                return
            total = sum(c.total for c in counters if c is not None)
            in_flight = sum(c.in_flight for c in counters if c is not None)
            if pods != state.pods or total != state.total or in_flight > 0:
                state.last_active = now
            state.pods, state.total = pods, total
        elif state.pods:
            state.pods, state.total = frozenset(), None
            state.last_active = now  # the pods just went away: start over
        if now - state.last_active < route.idle_seconds:
            return
        await self._scale_down(route, state, bool(pods), now)

    async def _scale_down(self, route: AppRoute, state: AppIdle, measured: bool, now: float) -> None:
        try:
            scale = await self._waker.get_scale(route)
        except KubeApiError as exc:
            _log.warning("reading scale failed", namespace=route.namespace, app=route.app, error=str(exc))
            return
        replicas = int(scale.get("spec", {}).get("replicas") or 0)
        seen, state.replicas_seen = state.replicas_seen, replicas
        state.last_active = now
        if replicas == 0:
            return  # asleep: looked at again after another idle period
        if not measured and seen != replicas:
            return  # woken since we last looked (maybe by another replica): give it a whole idle period
        if self._holding.count(route.key):
            return
        try:
            if await self._waker.scale_down(route, scale.get("metadata", {}).get("resourceVersion")):
                state.replicas_seen = 0
        except KubeApiError as exc:
            _log.warning("scale-down failed", namespace=route.namespace, app=route.app, error=str(exc))
