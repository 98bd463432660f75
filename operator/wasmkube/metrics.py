"""Prometheus metrics of the operator, served on `--metrics-port` at /metrics."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Hashable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from wasmkube.status.conditions import Verdict


class Metrics:
    """One registry per operator instance (tests may run several in one process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.reconciles = Counter(
            "wasmkube_reconciles", "Reconciles run, by kind and result", ["kind", "result"], registry=self.registry
        )
        self.reconcile_seconds = Histogram(
            "wasmkube_reconcile_duration_seconds",
            "Time spent in one reconcile",
            ["kind"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.status_writes = Counter("wasmkube_status_writes", "Status patches sent", registry=self.registry)
        self.api_requests = Counter(
            "wasmkube_api_requests",
            "Requests the operator's client sent, by HTTP method and resource",
            ["method", "resource"],
            registry=self.registry,
        )
        self.registry_requests = Gauge(
            "wasmkube_registry_requests", "HTTP requests sent to OCI registries since start", registry=self.registry
        )
        self.queue_depth = Gauge("wasmkube_queue_depth", "Keys waiting to be reconciled", registry=self.registry)
        self.apps = Gauge(
            "wasmkube_wasmapps",
            "WasmApps by state of their last reconcile",
            ["state", "reason"],
            registry=self.registry,
        )
        self._app_states: dict[Hashable, tuple[str, str]] = {}
        self._counts: Tally[tuple[str, str]] = Tally()

    def _move(self, old: tuple[str, str] | None, new: tuple[str, str] | None) -> None:
        """Keep the per-state gauge in step with one app changing state (O(1), not O(apps))."""
        for state, delta in ((old, -1), (new, +1)):
            if state is None:
                continue
            self._counts[state] += delta
            self.apps.labels(state=state[0], reason=state[1]).set(self._counts[state])

    def observe_app_verdict(self, key: Hashable, verdict: Verdict) -> None:
        new = (verdict.state, verdict.reason)
        old = self._app_states.get(key)
        if old != new:
            self._app_states[key] = new
            self._move(old, new)

    def forget_app(self, key: Hashable) -> None:
        self._move(self._app_states.pop(key, None), None)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        start_http_server(port, addr=address, registry=self.registry)
