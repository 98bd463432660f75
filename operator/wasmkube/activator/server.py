"""The activator process: an HTTP server for the requests of apps at zero, and an admin server.

A request is routed by its Host to a scale-to-zero app. If the app has a Ready pod it is
forwarded at once (a client still connected through the activator after a wake). Otherwise it
is held (bounded per app), the app is woken, and the request goes out the moment a pod is Ready;
after `wakeTimeoutSeconds` it is answered 504, past `maxPendingRequests` 503 with Retry-After, and
an unknown Host 404, each with a body that says why.

Shutdown (SIGTERM) is graceful in two steps: first `/readyz` fails while the server still accepts
for `shutdown_delay_seconds`, so the endpoint is removed from the activator Service (and from the
apps' slices) before the listener closes; then no new connection is accepted and held requests
are finished, for at most `shutdown_timeout_seconds`.
"""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import time
import uuid

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wasmkube.activator.config import ActivatorConfig
from wasmkube.activator.endpoints import EndpointTracker
from wasmkube.activator.holding import Holding, Overflow
from wasmkube.activator.idle import IdleLoop, MetricsScraper, Scrape
from wasmkube.activator.metrics import ActivatorMetrics
from wasmkube.activator.probing import ProbeTiming, StartingPodProber
from wasmkube.activator.proxy import Forwarder, Timeouts, UpstreamUnreachable
from wasmkube.activator.routing import AppRoute, NoRoute, RouteTable
from wasmkube.activator.waking import Waker
from wasmkube.builders.scaletozero import ENDPOINTS_LABEL, PODS, Endpoint
from wasmkube.clients.kube import ENDPOINTSLICES, WASMAPPS, Key, KubeClient
from wasmkube.clients.leadership import LeaseElector, LeaseTiming
from wasmkube.clients.watch import ListWatch

_log = structlog.get_logger(__name__)

FIELD_MANAGER = "wasmkube-activator"
RETRY_AFTER_SECONDS = 1


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=f"wasmkube activator: {message}\n", headers=headers)


class Activator:
    """Everything of one activator replica; `serve()` runs it until SIGTERM."""

    def __init__(self, config: ActivatorConfig, client: KubeClient, scrape: Scrape | None = None) -> None:
        self.config = config
        self.client = client
        self.metrics = ActivatorMetrics()
        self.routes = RouteTable(config.cluster_domain)
        self.endpoints = EndpointTracker()
        self.holding = Holding()
        self.waker = Waker(client, self.metrics)
        self.prober = StartingPodProber(self.endpoints, ProbeTiming(interval_seconds=config.probe_interval_seconds))
        self.forwarder = Forwarder(Timeouts(config.connect_timeout_seconds, config.upstream_timeout_seconds))
        self._scraper = MetricsScraper(config.pod_metrics_port) if scrape is None else None
        self.idle = IdleLoop(
            self.routes,
            self.endpoints,
            self.holding,
            self.waker,
            self.metrics,
            scrape or self._scraper or MetricsScraper(),
            config.idle_interval_seconds,
        )
        self.endpoints.on_change = self._pods_changed
        self._by_pods: dict[Key, AppRoute] = {}
        self.draining = False
        self._tasks: list[asyncio.Task[None]] = []
        scopes: tuple[str | None, ...] = config.namespaces or (None,)
        self._watches = [
            watch
            for namespace in scopes
            for watch in (
                ListWatch(client, WASMAPPS, self._app_event, namespace=namespace),
                ListWatch(
                    client,
                    ENDPOINTSLICES,
                    self.endpoints.observe,
                    namespace=namespace,
                    label_selector=f"{ENDPOINTS_LABEL}={PODS}",
                ),
            )
        ]
        self._runners: list[web.AppRunner] = []

    # -- watches --------------------------------------------------------------------------

    def _app_event(self, event_type: str, body: dict[str, object]) -> None:
        meta = body.get("metadata") or {}
        assert isinstance(meta, dict)
        key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
        old = self.routes.get(key)
        if old is not None:
            self._by_pods.pop(old.pods_key, None)
        route = self.routes.observe(event_type, body)
        if route is not None:
            self._by_pods[route.pods_key] = route

    def _pods_changed(self, pods_key: Key, ready: list[Endpoint]) -> None:
        route = self._by_pods.get(pods_key)
        if route is not None and ready:
            self.waker.pods_ready(route)

    @property
    def synced(self) -> bool:
        return all(w.synced.is_set() for w in self._watches)

    # -- requests ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        found = self.routes.resolve(request.host)
        if isinstance(found, NoRoute):
            self.metrics.refused.labels("", "", "unknown_host").inc()
            return _text(404, found.reason)
        route = found
        started = time.monotonic()
        unreachable: set[Endpoint] = set()
        deadline: float | None = None
        holding = False
        try:
            while True:
                pods = [p for p in self.endpoints.ready(route.pods_key) if p not in unreachable]
                if pods:
                    endpoint = random.choice(pods)
                    try:
                        response = await self.forwarder.forward(request, endpoint)
                    except UpstreamUnreachable as exc:
                        _log.info("pod unreachable; trying another", app=route.app, error=str(exc))
                        unreachable.add(endpoint)
                        continue
                    self.metrics.forwarded.labels(*route.key, "true" if holding else "false").inc()
                    if holding:
                        self.metrics.held_seconds.labels(*route.key).observe(time.monotonic() - started)
                    return response
                if not holding:
                    try:
                        self.holding.acquire(route.key, route.max_pending_requests)
                    except Overflow as exc:
                        self.metrics.refused.labels(*route.key, "overflow").inc()
                        return _text(503, f"{exc}; retry shortly", {"Retry-After": str(RETRY_AFTER_SECONDS)})
                    holding = True
                    self.metrics.pending.labels(*route.key).inc()
                    deadline = started + route.wake_timeout_seconds
                    self.waker.wake(route)
                    self.prober.watch(route, deadline)
                assert deadline is not None
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not await self.endpoints.wait_changed(route.pods_key, remaining):
                    if self.endpoints.ready(route.pods_key) and not unreachable:
                        continue  # became Ready at the very deadline
                    self.metrics.refused.labels(*route.key, "wake_timeout").inc()
                    why = self.waker.describe(route)
                    if unreachable:
                        why += f"; could not connect to {', '.join(f'{e.address}:{e.port}' for e in unreachable)}"
                    return _text(
                        504,
                        f"{route.namespace}/{route.app} did not become Ready within {route.wake_timeout_seconds}s "
                        f"(wakeTimeoutSeconds): {why}",
                    )
                if not self.endpoints.ready(route.pods_key):
                    unreachable.clear()  # the pods changed: the old ones are gone anyway
        finally:
            if holding:
                self.holding.release(route.key)
                self.metrics.pending.labels(*route.key).dec()

    # -- admin ----------------------------------------------------------------------------------

    async def healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def readyz(self, _: web.Request) -> web.Response:
        if self.draining:
            return web.Response(status=503, text="draining\n")
        if not self.synced:
            return web.Response(status=503, text="waiting for the first list of WasmApps and EndpointSlices\n")
        return web.Response(text="ok\n")

    async def metrics_page(self, _: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    # -- lifecycle ------------------------------------------------------------------------------

    async def _lead(self) -> None:
        """Run the idle loop while holding the Lease; stand by otherwise (no process exit)."""
        elector = LeaseElector(
            self.client,
            self.config.lease_namespace,
            self.config.lease_name,
            identity=f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}",
            timing=LeaseTiming(
                lease_seconds=self.config.lease_seconds,
                renew_deadline_seconds=self.config.lease_seconds * 2 / 3,
                retry_seconds=max(1.0, self.config.lease_seconds / 7),
            ),
        )
        try:
            while True:
                await elector.acquire()
                self.metrics.leader.set(1)
                idle = asyncio.create_task(self.idle.run(), name="activator-idle")

                def lost(task: asyncio.Task[None] = idle) -> None:
                    task.cancel()

                await elector.hold(lost)
                await asyncio.gather(idle, return_exceptions=True)
                self.metrics.leader.set(0)
        finally:
            await elector.release()

    async def start(self) -> None:
        for watch in self._watches:
            self._tasks.append(asyncio.create_task(watch.run(), name="activator-watch"))
        if self.config.leader_elect:
            self._tasks.append(asyncio.create_task(self._lead(), name="activator-lead"))
        else:
            self.metrics.leader.set(1)
            self._tasks.append(asyncio.create_task(self.idle.run(), name="activator-idle"))
        admin = web.Application()
        admin.router.add_get("/healthz", self.healthz)
        admin.router.add_get("/readyz", self.readyz)
        admin.router.add_get("/metrics", self.metrics_page)
        proxy = web.Application()
        proxy.router.add_route("*", "/{tail:.*}", self.handle)
        for app, port in ((admin, self.config.admin_port), (proxy, self.config.port)):
            runner = web.AppRunner(
                app, access_log=None, shutdown_timeout=self.config.shutdown_timeout_seconds, handle_signals=False
            )
            await runner.setup()
            await web.TCPSite(runner, self.config.bind_address, port, reuse_address=True).start()
            self._runners.append(runner)
        _log.info("activator serving", port=self.config.port, admin_port=self.config.admin_port)

    async def stop(self) -> None:
        """Graceful: unready first, then stop accepting and finish what was accepted."""
        self.draining = True
        await asyncio.sleep(self.config.shutdown_delay_seconds)
        admin, proxy = self._runners
        await proxy.cleanup()  # closes the listener, waits for in-flight handlers (shutdown_timeout)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await admin.cleanup()
        await self.waker.close()
        await self.prober.close()
        await self.forwarder.close()
        if self._scraper is not None:
            await self._scraper.close()
        await self.client.close()

    async def serve(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        await stop.wait()
        _log.info("stopping", held=self.holding.total(), delay=self.config.shutdown_delay_seconds)
        await self.stop()
        _log.info("stopped")


async def run_activator(config: ActivatorConfig) -> None:
    client = await KubeClient.from_environment(request_timeout=config.api_timeout_seconds, field_manager=FIELD_MANAGER)
    await Activator(config, client).serve()
