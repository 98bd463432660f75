"""Prometheus metrics of the activator, per app (namespace, WasmApp name)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Wakes are dominated by Kubernetes (scheduling, sandbox, readiness): about 1 to 3 s.
WAKE_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 20, 30, 60, 120)
APP = ("namespace", "app")


class ActivatorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.wakes = Counter("wasmkube_activator_wakes", "Apps scaled up from zero by a request", APP, registry=r)
        self.wake_seconds = Histogram(
            "wasmkube_activator_wake_seconds",
            "From the scale-up request to the first Ready pod",
            APP,
            buckets=WAKE_BUCKETS,
            registry=r,
        )
        self.held_seconds = Histogram(
            "wasmkube_activator_held_seconds",
            "How long requests were held before being forwarded",
            APP,
            buckets=WAKE_BUCKETS,
            registry=r,
        )
        self.pending = Gauge("wasmkube_activator_pending_requests", "Requests held right now", APP, registry=r)
        self.forwarded = Counter(
            "wasmkube_activator_requests_forwarded",
            "Requests forwarded to a pod (held: the app was at zero or had no Ready pod)",
            [*APP, "held"],
            registry=r,
        )
        self.refused = Counter(
            "wasmkube_activator_requests_refused",
            "Requests answered by the activator itself: unknown_host (404), overflow (503), "
            "wake_timeout (504), upstream_error (502)",
            [*APP, "reason"],
            registry=r,
        )
        self.scale_downs = Counter(
            "wasmkube_activator_scale_downs", "Apps scaled to zero after idleSeconds", APP, registry=r
        )
        self.scrape_errors = Counter(
            "wasmkube_activator_scrape_errors",
            "Pod metrics that could not be read (the app is then not considered idle)",
            APP,
            registry=r,
        )
        self.leader = Gauge("wasmkube_activator_leader", "1 while this replica runs the idle loop", registry=r)
