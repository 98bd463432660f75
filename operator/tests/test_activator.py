"""The activator in one process: real HTTP on 127.0.0.1 (client -> activator -> backend), with a
fake API server that plays the Deployment's /scale and "starts a pod" (lists a Ready endpoint
for the backend) a moment after a scale-up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from wasmkube.activator.holding import Holding, Overflow
from wasmkube.activator.idle import PodCounters, parse_counters
from wasmkube.activator.proxy import upstream_headers
from wasmkube.activator.routing import NoRoute, RouteTable, split_host
from wasmkube.activator.server import Activator, ActivatorConfig
from wasmkube.builders.scaletozero import Endpoint
from wasmkube.clients.kube import KubeApiError

NS = "team"
HEALTHZ = web.AppKey("healthz", list[int])  # the backend's /healthz status, settable by a test


def wasmapp(name: str = "greeter", namespace: str = NS, **s2z: Any) -> dict[str, Any]:
    return {
        "apiVersion": "wasmkube.dev/v1alpha1",
        "kind": "WasmApp",
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "generation": 1},
        "spec": {
            "image": "registry.example.com/team/greeter:1",
            "service": {"port": 80},
            "scaleToZero": {"idleSeconds": 10, "wakeTimeoutSeconds": 2, "maxPendingRequests": 50, **s2z},
        },
    }


def pods_slice(service: str, port: int, ready: bool = True, name: str = "s1") -> dict[str, Any]:
    """A slice of `<app>-pods` listing 127.0.0.1:port, Ready or starting (not Ready)."""
    return {
        "metadata": {"name": name, "namespace": NS,
                     "labels": {"kubernetes.io/service-name": service, "wasmkube.dev/endpoints": "pods"}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": ready}}],
    }  # fmt: skip


# --- pure parts -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("greeter.team", ("greeter", "team")),
        ("greeter.team:80", ("greeter", "team")),
        ("Greeter.Team.svc", ("greeter", "team")),
        ("greeter.team.svc.cluster.local", ("greeter", "team")),
        ("greeter.team.svc.cluster.local.", ("greeter", "team")),
        ("greeter", ("greeter", None)),
        ("10.96.0.12:80", None),
        ("[fd00::1]:80", None),
        ("a.b.c.example.com", None),
    ],
)
def test_split_host(host: str, expected: tuple[str, str | None] | None) -> None:
    assert split_host(host) == expected


def test_routes_by_service_name_and_refuses_the_ambiguous() -> None:
    table = RouteTable()
    table.observe("ADDED", wasmapp("greeter", "team"))
    table.observe("ADDED", wasmapp("other", "team"))
    route = table.resolve("greeter.team.svc.cluster.local:80")
    assert not isinstance(route, NoRoute)
    assert (route.namespace, route.app, route.deployment, route.pods_service) == (
        "team", "greeter", "greeter", "greeter-pods")  # fmt: skip
    assert not isinstance(table.resolve("greeter"), NoRoute)
    table.observe("ADDED", wasmapp("greeter", "team-b"))
    ambiguous = table.resolve("greeter")
    assert isinstance(ambiguous, NoRoute) and "2 namespaces" in ambiguous.reason
    assert isinstance(table.resolve("greeter.nowhere"), NoRoute)
    table.observe("DELETED", wasmapp("greeter", "team-b"))
    assert not isinstance(table.resolve("greeter"), NoRoute)


def test_an_app_without_scale_to_zero_has_no_route() -> None:
    table = RouteTable()
    body = wasmapp()
    del body["spec"]["scaleToZero"]
    assert table.observe("ADDED", body) is None
    assert isinstance(table.resolve("greeter.team"), NoRoute)


def test_holding_is_bounded_per_app() -> None:
    holding = Holding()
    holding.acquire(("a", "x"), 2)
    holding.acquire(("a", "x"), 2)
    with pytest.raises(Overflow):
        holding.acquire(("a", "x"), 2)
    holding.acquire(("a", "y"), 2)  # another app has its own bound
    holding.release(("a", "x"))
    assert (holding.count(("a", "x")), holding.total()) == (1, 2)


def test_parse_counters_sums_the_shim_metrics() -> None:
    text = ("# TYPE wasmkube_http_requests_total counter\nwasmkube_http_requests_total{code=\"200\"} 40\n"
            "wasmkube_http_requests_total{code=\"500\"} 2\nwasmkube_http_requests_in_flight 3\nother 9\n")  # fmt: skip
    assert parse_counters(text) == PodCounters(42.0, 3.0)
    assert parse_counters("wasmkube_http_requests_total 1\n") is None  # no in-flight gauge: cannot judge


def test_hop_by_hop_headers_are_dropped_and_forwarded_for_is_appended() -> None:
    from aiohttp.test_utils import make_mocked_request

    sent = {"Host": "greeter.team", "Connection": "keep-alive, X-Private", "X-Private": "1", "Keep-Alive": "5",
            "TE": "trailers", "X-Forwarded-For": "10.0.0.5", "X-App": "y"}  # fmt: skip
    request = make_mocked_request("GET", "/x", headers=sent)
    headers = upstream_headers(request)
    assert "Connection" not in headers and "X-Private" not in headers and "Keep-Alive" not in headers
    assert "TE" not in headers
    assert headers["X-App"] == "y" and headers["Host"] == "greeter.team"
    assert headers["X-Forwarded-For"].startswith("10.0.0.5, ")
    assert headers["X-Forwarded-Host"] == "greeter.team" and headers["X-Forwarded-Proto"] == "http"


# --- the whole request path -------------------------------------------------------------------------


@dataclass
class FakeApi:
    """/scale of Deployments; a scale-up lists the backend as Ready after `start_delay` (or never)."""

    activator: Activator | None = None
    backend_port: int = 0
    start_delay: float | None = 0.2
    listed_ready: bool = True  # False: the started pod stays listed as starting (not Ready)
    replicas: dict[str, int] = field(default_factory=dict)
    version: int = 1
    patches: list[tuple[str, int]] = field(default_factory=list)
    healthz: list[int] = field(default_factory=lambda: [200])  # the backend's /healthz status

    async def request(self, method: str, path: str, **_: Any) -> dict[str, Any]:
        name = path.split("/")[-2]
        return {"spec": {"replicas": self.replicas.get(name, 0)}, "metadata": {"resourceVersion": str(self.version)}}

    async def patch_scale(self, resource: Any, namespace: str, name: str, replicas: int, *,
                          resource_version: str | None = None) -> dict[str, Any]:  # fmt: skip
        if resource_version is not None and resource_version != str(self.version):
            raise KubeApiError(409, "Conflict", "the object has been modified")
        self.version += 1
        self.patches.append((name, replicas))
        self.replicas[name] = replicas
        if replicas > 0 and self.start_delay is not None:
            asyncio.get_running_loop().call_later(self.start_delay, self._pod_ready, name)
        return {}

    def _pod_ready(self, name: str) -> None:
        assert self.activator is not None
        self.activator.endpoints.observe("ADDED", pods_slice(f"{name}-pods", self.backend_port, self.listed_ready))

    async def close(self) -> None:
        return None


@dataclass
class Rig:
    api: FakeApi
    activator: Activator
    url: str
    session: aiohttp.ClientSession

    async def get(self, host: str = "greeter.team", path: str = "/hello", **kw: Any) -> tuple[int, str, Any]:
        async with self.session.get(self.url + path, headers={"Host": host}, **kw) as response:
            return response.status, await response.text(), response.headers

    def metric(self, name: str, **labels: str) -> float:
        return self.activator.metrics.registry.get_sample_value(name, labels) or 0.0


async def backend_app() -> web.Application:
    async def hello(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        return web.json_response({"path": request.path_qs, "host": request.host, "body": body.decode(),
                                  "xff": request.headers.get("X-Forwarded-For"),
                                  "connection": request.headers.get("X-Private")})  # fmt: skip

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for i in range(3):
            await response.write(f"chunk{i};".encode())
            await asyncio.sleep(0.01)
        return response

    async def healthz(request: web.Request) -> web.StreamResponse:
        return web.Response(status=request.app[HEALTHZ][0])

    app = web.Application()
    app[HEALTHZ] = [200]
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/stream", stream)
    app.router.add_route("*", "/{tail:.*}", hello)
    return app


@contextlib.asynccontextmanager
async def rig(
    start_delay: float | None = 0.2, listed_ready: bool = True, app: dict[str, Any] | None = None, **s2z: Any
) -> AsyncIterator[Rig]:
    backend_web = await backend_app()
    backend = TestServer(backend_web, host="127.0.0.1")
    await backend.start_server()
    api = FakeApi(backend_port=backend.port or 0, start_delay=start_delay, listed_ready=listed_ready)
    activator = Activator(ActivatorConfig(port=0), api)  # type: ignore[arg-type]
    api.activator = activator
    api.healthz = backend_web[HEALTHZ]
    activator._app_event("ADDED", app or wasmapp(**s2z))
    front = web.Application()
    front.router.add_route("*", "/{tail:.*}", activator.handle)
    server = TestServer(front, host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        try:
            yield Rig(api, activator, f"http://127.0.0.1:{server.port}", session)
        finally:
            await server.close()
            await backend.close()
            await activator.forwarder.close()
            await activator.waker.close()
            await activator.prober.close()


async def test_a_request_at_zero_wakes_the_app_and_is_answered() -> None:
    async with rig() as r:
        status, body, _ = await r.get(path="/hello?x=1")
        assert status == 200, body
        assert '"path": "/hello?x=1"' in body and '"host": "greeter.team"' in body
        assert r.api.patches == [("greeter", 1)]
        assert r.metric("wasmkube_activator_wakes_total", namespace=NS, app="greeter") == 1
        assert r.metric("wasmkube_activator_requests_forwarded_total", namespace=NS, app="greeter", held="true") == 1
        assert r.metric("wasmkube_activator_wake_seconds_count", namespace=NS, app="greeter") == 1
        assert r.metric("wasmkube_activator_pending_requests", namespace=NS, app="greeter") == 0
        # Awake now: forwarded at once, no second wake.
        assert (await r.get())[0] == 200
        assert r.api.patches == [("greeter", 1)]
        assert r.metric("wasmkube_activator_requests_forwarded_total", namespace=NS, app="greeter", held="false") == 1


async def test_a_burst_at_zero_is_answered_in_full_with_one_wake() -> None:
    async with rig(maxPendingRequests=200) as r:
        results = await asyncio.gather(*(r.get(path=f"/n{i}") for i in range(150)))
        assert [s for s, _, _ in results] == [200] * 150
        assert r.api.patches == [("greeter", 1)]


async def test_request_bodies_and_streamed_responses_pass_through() -> None:
    async with rig(start_delay=0.0) as r:
        async with r.session.post(r.url + "/echo", data=b"x" * 200_000, headers={"Host": "greeter.team"}) as resp:
            assert resp.status == 200
            assert len((await resp.json())["body"]) == 200_000
        status, body, _ = await r.get(path="/stream")
        assert (status, body) == (200, "chunk0;chunk1;chunk2;")


async def test_an_app_that_never_becomes_ready_gets_504_after_the_wake_timeout() -> None:
    async with rig(start_delay=None, wakeTimeoutSeconds=1) as r:
        started = asyncio.get_running_loop().time()
        status, body, _ = await r.get()
        elapsed = asyncio.get_running_loop().time() - started
        assert status == 504
        assert "did not become Ready within 1s" in body and "greeter-pods" in body
        assert 0.9 <= elapsed < 3
        assert r.metric("wasmkube_activator_requests_refused_total", namespace=NS, app="greeter",
                        reason="wake_timeout") == 1  # fmt: skip


async def test_past_max_pending_requests_the_answer_is_503_with_retry_after() -> None:
    async with rig(start_delay=0.5, maxPendingRequests=3) as r:
        results = await asyncio.gather(*(r.get() for _ in range(6)))
        statuses = sorted(s for s, _, _ in results)
        assert statuses == [200, 200, 200, 503, 503, 503]
        refused = [(b, h) for s, b, h in results if s == 503]
        assert all(h["Retry-After"] == "1" and "maxPendingRequests" in b for b, h in refused)


async def test_an_unknown_host_is_404_with_the_reason() -> None:
    async with rig() as r:
        status, body, _ = await r.get(host="nobody.team")
        assert status == 404 and "no WasmApp with scaleToZero has the Service team/nobody" in body
        status, body, _ = await r.get(host="10.96.0.1")
        assert status == 404 and "names no Service" in body


async def test_a_pod_that_refuses_connections_is_skipped_for_a_ready_one() -> None:
    async with rig(start_delay=0.0) as r:
        r.api.replicas["greeter"] = 1
        dead = pods_slice("greeter-pods", 1, name="dead")  # port 1: nothing listens
        r.activator.endpoints.observe("ADDED", dead)
        r.activator.endpoints.observe("ADDED", pods_slice("greeter-pods", r.api.backend_port, name="live"))
        for _ in range(5):
            assert (await r.get())[0] == 200


def http_app(readiness_path: str = "/healthz", **s2z: Any) -> dict[str, Any]:
    body = wasmapp(**s2z)
    body["spec"]["ports"] = [{"name": "http", "containerPort": 8080}]
    body["spec"]["probes"] = {"readiness": {"path": readiness_path}}
    return body


def test_the_route_asks_the_readiness_question_of_the_pods() -> None:
    table = RouteTable()
    route = table.observe("ADDED", http_app("/ready"))
    assert route is not None and (route.probe_path, route.probe_port) == ("/ready", None)
    health_port = http_app()
    health_port["spec"]["ports"].append({"name": "health", "containerPort": 9000})
    health_port["spec"]["probes"]["readiness"]["port"] = "health"
    route = table.observe("ADDED", health_port)
    assert route is not None and (route.probe_path, route.probe_port) == ("/healthz", 9000)
    route = table.observe("ADDED", wasmapp())  # no ports, no probes: Ready once running
    assert route is not None and route.probe_path is None


async def test_a_starting_pod_that_answers_its_readiness_probe_gets_the_held_requests() -> None:
    async with rig(start_delay=0.0, listed_ready=False, app=http_app()) as r:
        r.api.healthz[0] = 503  # started, not ready yet
        pending = asyncio.gather(*(r.get(path=f"/n{i}") for i in range(5)))
        await asyncio.sleep(0.4)
        assert r.activator.holding.total() == 5  # the pod is listed but does not answer /healthz
        r.api.healthz[0] = 200
        results = await asyncio.wait_for(pending, 2)
        assert [s for s, _, _ in results] == [200] * 5  # forwarded while the slice still says not Ready
        assert r.metric("wasmkube_activator_wake_seconds_count", namespace=NS, app="greeter") == 1
        assert r.activator.endpoints.starting(("team", "greeter-pods")) == []


async def test_a_starting_pod_that_never_answers_ready_is_not_used() -> None:
    async with rig(start_delay=0.0, listed_ready=False, app=http_app(wakeTimeoutSeconds=1)) as r:
        r.api.healthz[0] = 500
        status, body, _ = await r.get()
        assert status == 504 and "did not become Ready within 1s" in body


async def test_held_requests_are_finished_on_shutdown() -> None:
    async with rig(start_delay=0.5) as r:
        pending = asyncio.gather(*(r.get() for _ in range(5)))
        await asyncio.sleep(0.1)
        assert r.activator.holding.total() == 5
        r.activator.draining = True  # SIGTERM: unready, still serving what was accepted
        assert [s for s, _, _ in await pending] == [200] * 5


# --- idle loop ---------------------------------------------------------------------------------


async def test_idle_loop_scales_down_only_after_idle_seconds_without_change() -> None:
    async with rig(start_delay=0.0) as r:
        assert (await r.get())[0] == 200  # awake, one pod Ready
        now = [1000.0]
        counters = {"total": 5.0, "in_flight": 0.0}

        async def scrape(endpoint: Endpoint) -> PodCounters:
            return PodCounters(counters["total"], counters["in_flight"])

        loop = r.activator.idle
        loop._scrape, loop._clock = scrape, lambda: now[0]
        await loop.tick()
        now[0] += 9
        await loop.tick()
        assert r.api.replicas["greeter"] == 1
        counters["total"] = 6  # a request came in: the clock starts over
        now[0] += 2
        await loop.tick()
        now[0] += 9
        await loop.tick()
        assert r.api.replicas["greeter"] == 1
        now[0] += 2
        await loop.tick()
        assert r.api.replicas["greeter"] == 0
        assert r.metric("wasmkube_activator_scale_downs_total", namespace=NS, app="greeter") == 1


async def test_idle_loop_never_scales_down_what_it_cannot_measure() -> None:
    async with rig(start_delay=0.0) as r:
        assert (await r.get())[0] == 200
        now = [0.0]

        async def broken(endpoint: Endpoint) -> None:
            return None

        loop = r.activator.idle
        loop._scrape, loop._clock = broken, lambda: now[0]
        for _ in range(5):
            await loop.tick()
            now[0] += 30
        assert r.api.replicas["greeter"] == 1
        assert r.metric("wasmkube_activator_scrape_errors_total", namespace=NS, app="greeter") >= 1


async def test_a_wake_without_ready_pods_gets_a_whole_idle_period() -> None:
    async with rig(start_delay=None) as r:
        r.api.replicas["greeter"] = 1  # woken by another replica; no pod Ready yet
        now = [0.0]
        loop = r.activator.idle
        loop._clock = lambda: now[0]
        await loop.tick()
        now[0] += 11
        await loop.tick()  # first look at its replicas: not yet
        assert r.api.replicas["greeter"] == 1
        now[0] += 11
        await loop.tick()  # unchanged for a whole idle period: down
        assert r.api.replicas["greeter"] == 0
