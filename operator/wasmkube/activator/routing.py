"""Which scale-to-zero app a request is for, from its Host header.

Clients reach an app through its Service, so the Host is one of the names cluster DNS gives it:
`<service>.<namespace>`, `<service>.<namespace>.svc` or `<service>.<namespace>.svc.<cluster
domain>`, with or without a port. A bare `<service>` (a client in the app's own namespace) is
accepted when exactly one scale-to-zero app has that Service name: the request can only have
reached the activator through such an app's Service. An IP address names no app.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from wasmkube.api.wasmapp import WasmApp
from wasmkube.builders.identity import child_name
from wasmkube.builders.pod import build_probes, http_port
from wasmkube.builders.scaletozero import awake_replicas, pods_service_name
from wasmkube.clients.kube import Key
from wasmkube.errors import SpecError

DEFAULT_CLUSTER_DOMAIN = "cluster.local"


@dataclass(frozen=True)
class AppRoute:
    """Everything the activator needs about one app, from its WasmApp."""

    namespace: str
    app: str  # the WasmApp's name
    service: str  # its Service (and Deployment) name
    pods_service: str
    awake_replicas: int
    idle_seconds: int
    wake_timeout_seconds: int
    max_pending_requests: int
    # The kubelet's readiness question, which the activator asks a starting pod itself (probing.py):
    # path None means "accepts a TCP connection"; port None means the serving port.
    probe_path: str | None = None
    probe_port: int | None = None

    @property
    def key(self) -> Key:
        return (self.namespace, self.app)

    @property
    def deployment(self) -> str:
        return self.service

    @property
    def pods_key(self) -> Key:
        return (self.namespace, self.pods_service)


def route_of(body: dict[str, Any]) -> AppRoute | None:
    """The route of a WasmApp, or None if it does not scale to zero (or is not valid)."""
    if not (body.get("spec") or {}).get("scaleToZero"):
        return None
    try:
        app = WasmApp.model_validate(body)
    except ValidationError:
        return None
    settings = app.spec.scale_to_zero
    if settings is None or app.spec.service is None or not app.spec.service.enabled:
        return None
    return AppRoute(
        namespace=app.namespace,
        app=app.name,
        service=child_name(app.name),
        pods_service=pods_service_name(app.name),
        awake_replicas=awake_replicas(app),
        idle_seconds=settings.idle_seconds,
        wake_timeout_seconds=settings.wake_timeout_seconds,
        max_pending_requests=settings.max_pending_requests,
        **_readiness_question(app),
    )


def _readiness_question(app: WasmApp) -> dict[str, Any]:
    """probe_path/probe_port from the readiness (else startup) probe the pods get, as built."""
    ports = list(app.spec.ports or [])
    try:
        probes = build_probes(app, ports)
    except SpecError:
        return {}
    probe = probes.get("readinessProbe") or probes.get("startupProbe")
    if probe is None:
        return {}
    target = probe["httpGet"]
    port = target.get("port")
    named = {p.name: p.container_port for p in ports if p.name}
    serving = http_port(ports)
    if port is None or (serving is not None and port in (serving.name, serving.container_port)):
        return {"probe_path": target["path"]}
    if isinstance(port, str):
        if port not in named:
            return {}
        port = named[port]
    return {"probe_path": target["path"], "probe_port": int(port)}


@dataclass(frozen=True)
class NoRoute:
    """Why a Host names no app; the 404 body says it."""

    reason: str


def split_host(host: str, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> tuple[str, str | None] | None:
    """(service, namespace or None) from a Host header; None if it cannot name a Service."""
    name = host.strip().lower()
    if name.startswith("["):  # an IPv6 literal
        return None
    name = name.rsplit(":", 1)[0] if name.count(":") == 1 else name
    name = name.rstrip(".")
    if not name or name.replace(".", "").isdigit():
        return None
    for suffix in (f".svc.{cluster_domain}", ".svc"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    parts = name.split(".")
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        return parts[0], parts[1]
    return None


class RouteTable:
    """Scale-to-zero apps by Service name, kept current from the WasmApp watch."""

    def __init__(self, cluster_domain: str = DEFAULT_CLUSTER_DOMAIN) -> None:
        self.cluster_domain = cluster_domain
        self._by_app: dict[Key, AppRoute] = {}
        self._by_service: dict[Key, AppRoute] = {}

    def observe(self, event_type: str, body: dict[str, Any]) -> AppRoute | None:
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace") or "default"), str(meta.get("name")))
        old = self._by_app.pop(key, None)
        if old is not None:
            self._by_service.pop((old.namespace, old.service), None)
        route = None if event_type == "DELETED" else route_of(body)
        if route is not None:
            self._by_app[key] = route
            self._by_service[(route.namespace, route.service)] = route
        return route

    def routes(self) -> list[AppRoute]:
        return list(self._by_app.values())

    def get(self, key: Key) -> AppRoute | None:
        return self._by_app.get(key)

    def resolve(self, host: str | None) -> AppRoute | NoRoute:
        if not host:
            return NoRoute("the request has no Host header; use <service>.<namespace>")
        parsed = split_host(host, self.cluster_domain)
        if parsed is None:
            return NoRoute(f"Host {host!r} names no Service; use <service>.<namespace>[.svc.{self.cluster_domain}]")
        service, namespace = parsed
        if namespace is not None:
            route = self._by_service.get((namespace, service))
            if route is None:
                return NoRoute(f"no WasmApp with scaleToZero has the Service {namespace}/{service}")
            return route
        matches = [r for (_, s), r in self._by_service.items() if s == service]
        if len(matches) == 1:
            return matches[0]
        if not matches:
            return NoRoute(f"no WasmApp with scaleToZero has a Service named {service!r}")
        return NoRoute(f"Service name {service!r} is used in {len(matches)} namespaces; use {service}.<namespace>")
