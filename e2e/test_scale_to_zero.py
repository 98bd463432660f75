"""Scale to zero on the real node (issue 13): real Wasm pods, the real activator, real wakes.

The greeter (examples/greeter, `artifacts.greeter_http`) runs as a WasmApp with scaleToZero on
`real-node-1`. The activator runs as a host process on the bridge gateway 10.222.0.1 (the address
the operator is given with --activator-address), serving only the test's namespace; a dedicated
operator watches only that namespace. There is no kube-proxy: requests go where the app
Service's EndpointSlice points, as kube-proxy would send them (support/activator.py).

Needs the shim to serve HTTP and, for idling, its request counters on :9091
(WASMKUBE_METRICS_ADDR): without them the idle loop never scales an app down (it does not guess),
and these tests time out waiting for ScaledToZero.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e.node import realnode
from e2e.registry import artifacts
from e2e.registry.pusher import Pusher
from e2e.support import REGISTRY, Cluster, wait_for
from e2e.support.activator import (
    BRIDGE_GATEWAY,
    WASMAPP,
    ActivatorProcess,
    Answer,
    http_request,
    send_via_service,
    service_slice,
    slice_target,
)
from e2e.support.apps import wait_condition, wasmapp
from e2e.support.operator import free_port
from e2e.support.reliability_fixtures import DedicatedOperators

IDLE_SECONDS = 15
WAKE_TIMEOUT_SECONDS = 15


@dataclass
class Setup:
    cluster: Cluster
    namespace: str
    activator: ActivatorProcess
    pusher: Pusher

    def app(self, name: str, *, version: str = "v1", healthz_status: int = 200, **s2z: Any) -> None:
        pushed = artifacts.greeter_http(self.pusher, f"s2z/{name}", version, version=version,
                                        healthz_status=healthz_status)  # fmt: skip
        spec: dict[str, Any] = {
            "runtime": "wasmtime",
            "nodeSelector": dict(realnode.REAL_NODE_SELECTOR),
            "tolerations": [dict(realnode.REAL_NODE_TOLERATION)],
            "ports": [{"name": "http", "containerPort": 8080}],
            "service": {"port": 80},
            "scaleToZero": {"idleSeconds": IDLE_SECONDS, "wakeTimeoutSeconds": WAKE_TIMEOUT_SECONDS, **s2z},
        }
        if healthz_status != 200:
            spec["probes"] = {"readiness": {"path": "/healthz", "periodSeconds": 1}}
        self.cluster.apply(wasmapp(name, f"{REGISTRY}/s2z/{name}:{version}", **spec), self.namespace)
        assert pushed.digest

    def wait_reason(self, name: str, reason: str, status: str = "True", timeout: float = 120) -> dict[str, Any]:
        return wait_condition(self.cluster, WASMAPP, name, self.namespace, "Ready", status, reason=reason,
                              timeout=timeout)  # fmt: skip

    def target(self, name: str) -> tuple[str | None, list[tuple[str, int]]]:
        return slice_target(service_slice(self.cluster, self.namespace, name))

    def burst(self, name: str, count: int, path: str = "/") -> list[Answer]:
        """`count` requests at once to where the Service points now (the activator at zero)."""
        _, endpoints = self.target(name)
        address, port = endpoints[0]
        host = f"{name}.{self.namespace}"
        start = threading.Barrier(count)

        def one(i: int) -> Answer:
            start.wait()
            return http_request(address, port, f"{path}?n={i}", host=host, timeout=WAKE_TIMEOUT_SECONDS + 30)

        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(one, range(count)))


@pytest.fixture
def s2z(cluster: Cluster, namespace: str, real_node: str, wasmtime_runtime_class: str, pusher: Pusher,
        exclusive_operators: DedicatedOperators, tmp_path: Path) -> Iterator[Setup]:  # fmt: skip
    port = free_port()
    activator = ActivatorProcess(cluster.kubeconfig, tmp_path / "activator.log", BRIDGE_GATEWAY, namespace, port=port)
    exclusive_operators.start(namespace, "--activator-address", activator.endpoint)
    activator.start()
    setup = Setup(cluster, namespace, activator, pusher)
    try:
        yield setup
    finally:
        print(f"\n--- activator log ---\n{setup.activator.log_tail(40)}")
        setup.activator.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def test_an_idle_app_goes_to_zero_and_a_burst_wakes_it_with_nothing_lost(s2z: Setup) -> None:
    s2z.app("greeter", maxPendingRequests=200)
    s2z.wait_reason("greeter", "Available", timeout=180)
    wait_for(lambda: s2z.target("greeter")[0] == "pods", timeout=30, message="Service -> pods")
    for _ in range(5):
        answer = send_via_service(s2z.cluster, s2z.namespace, "greeter")
        assert answer.status == 200, answer

    started = time.monotonic()
    app = s2z.wait_reason("greeter", "ScaledToZero", timeout=IDLE_SECONDS + 60)
    print(f"\nidle to ScaledToZero after {time.monotonic() - started:.1f}s (idleSeconds {IDLE_SECONDS})")
    assert app["status"]["replicas"] == 0
    kind, endpoints = s2z.target("greeter")
    assert (kind, endpoints) == ("activator", [(BRIDGE_GATEWAY, s2z.activator.port)])

    answers = s2z.burst("greeter", 100)
    statuses = Counter(a.status for a in answers)
    seconds = [a.seconds for a in answers]
    print(f"burst of 100 at zero: {dict(statuses)}; latency p50 {statistics.median(seconds):.2f}s, "
          f"p99 {percentile(seconds, 0.99):.2f}s, max {max(seconds):.2f}s")  # fmt: skip
    assert statuses == {200: 100}, [a for a in answers if a.status != 200][:3]
    labels = {"namespace": s2z.namespace, "app": "greeter"}
    assert s2z.activator.metric("wasmkube_activator_wakes_total", **labels) == 1
    wake_sum = s2z.activator.metric("wasmkube_activator_wake_seconds_sum", **labels)
    print(f"activator: scale-up to first Ready pod {wake_sum:.2f}s")
    assert s2z.activator.metric("wasmkube_activator_requests_forwarded_total", held="true", **labels) == 100
    assert s2z.activator.metric("wasmkube_activator_pending_requests", **labels) == 0
    # Awake again: the Service points at the pod, the activator is out of the path.
    wait_for(lambda: s2z.target("greeter")[0] == "pods", timeout=30, message="Service -> pods after the wake")
    s2z.wait_reason("greeter", "Available", timeout=30)


def test_an_app_that_never_becomes_ready_is_answered_504_after_the_wake_timeout(s2z: Setup) -> None:
    s2z.app("broken", healthz_status=503, idleSeconds=10, wakeTimeoutSeconds=5)
    # Never Ready; the idle loop scales it down after it saw its replica count unchanged for a
    # whole idle period (twice idleSeconds here).
    s2z.wait_reason("broken", "ScaledToZero", timeout=90)
    answer = send_via_service(s2z.cluster, s2z.namespace, "broken")
    print(f"\n504 after {answer.seconds:.1f}s: {answer.body.strip()}")
    assert answer.status == 504, answer
    assert "did not become Ready within 5s" in answer.body and "broken-pods" in answer.body
    assert 4.5 <= answer.seconds < 10


def test_past_max_pending_requests_the_answer_is_503_with_retry_after(s2z: Setup) -> None:
    s2z.app("narrow", maxPendingRequests=3)
    s2z.wait_reason("narrow", "Available", timeout=180)
    s2z.wait_reason("narrow", "ScaledToZero", timeout=IDLE_SECONDS + 60)
    answers = s2z.burst("narrow", 20)
    statuses = Counter(a.status for a in answers)
    print(f"\nburst of 20 with maxPendingRequests 3: {dict(statuses)}")
    assert set(statuses) <= {200, 503} and statuses[200] >= 3 and statuses[503] >= 1, statuses
    for refused in (a for a in answers if a.status == 503):
        assert refused.headers.get("Retry-After") == "1" and "maxPendingRequests" in refused.body


def test_an_activator_restart_loses_no_accepted_request(s2z: Setup) -> None:
    s2z.app("steady", maxPendingRequests=100)
    s2z.wait_reason("steady", "Available", timeout=180)
    s2z.wait_reason("steady", "ScaledToZero", timeout=IDLE_SECONDS + 60)
    labels = {"namespace": s2z.namespace, "app": "steady"}

    results: list[Answer] = []
    senders = [threading.Thread(target=lambda: results.append(send_via_service(
        s2z.cluster, s2z.namespace, "steady", timeout=WAKE_TIMEOUT_SECONDS + 30))) for _ in range(10)]  # fmt: skip
    for sender in senders:
        sender.start()
    wait_for(lambda: s2z.activator.metric("wasmkube_activator_pending_requests", **labels) >= 10, timeout=10,
             interval=0.05, message="10 requests held")  # fmt: skip
    stopping = threading.Thread(target=s2z.activator.stop)
    stopping.start()  # SIGTERM while the 10 are held
    time.sleep(0.2)
    late = http_request(BRIDGE_GATEWAY, s2z.activator.port, host=f"steady.{s2z.namespace}")  # in the shutdown delay
    for sender in senders:
        sender.join(WAKE_TIMEOUT_SECONDS + 40)
    stopping.join(60)
    print(f"\nheld across SIGTERM: {Counter(a.status for a in results)}; during the shutdown delay: {late.status}")
    assert [a.status for a in results] == [200] * 10, [a for a in results if a.status != 200][:3]
    assert late.status == 200, late

    # A new activator on the same address takes over.
    s2z.activator.start()
    s2z.wait_reason("steady", "ScaledToZero", timeout=IDLE_SECONDS + 60)
    again = send_via_service(s2z.cluster, s2z.namespace, "steady")
    assert again.status == 200, again

