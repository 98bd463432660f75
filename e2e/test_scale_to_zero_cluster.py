"""Scale to zero against the real API server, on KWOK nodes (issue 13): what needs no real pod.

- The CRD refuses bad combinations at `kubectl apply` (and `kubectl scale wasmapp --replicas=0`).
- The operator gives a scale-to-zero app a selector-less Service and keeps its EndpointSlice: the
  KWOK pods (whose `<app>-pods` EndpointSlices the real EndpointSlice controller fills) while one
  is Ready, the activator's address while the app is at zero; status says ScaledToZero, Waking,
  Available; `kubectl scale wasmapp` is followed while awake. The Deployment is scaled the way
  the activator scales it (its /scale subresource), here by kubectl.
- The activator process, against this API server, routes and refuses (404) and holds a request
  at zero until the wake it triggers is done (a hand-made `<app>-pods` slice stands in for the
  pod: the forwarding target is a server on the real node's bridge gateway, so that part skips
  when the bridge is not up).

The real wake on the real node (burst, 504, 503, restart) is e2e/test_scale_to_zero.py.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from e2e.support import Cluster, wait_for
from e2e.support.activator import (
    BRIDGE_GATEWAY,
    WASMAPP,
    ActivatorProcess,
    Answer,
    bridge_exists,
    http_request,
    service_slice,
    slice_target,
)
from e2e.support.apps import condition, get, wait_condition, wasmapp
from e2e.support.binaries import binary
from e2e.support.chart import service_account_kubeconfig
from e2e.support.operator_fixtures import ExampleImages
from e2e.support.reliability_fixtures import DedicatedOperators
from e2e.support.state import REPO_ROOT

# Only data in an EndpointSlice here (no traffic is sent to it by the KWOK tests).
FAKE_ACTIVATOR = f"{BRIDGE_GATEWAY}:18012"
S2Z = {"idleSeconds": 10, "wakeTimeoutSeconds": 10}
# Pods that are created but never scheduled (no node has that much CPU), while nodes stay eligible.
UNSCHEDULABLE = {"requests": {"cpu": "500"}}


def s2z_app(name: str, image: str, **spec: Any) -> dict[str, Any]:
    return wasmapp(name, image, service={"port": 80}, scaleToZero=dict(S2Z), **spec)


def refusal(cluster: Cluster, namespace: str, body: dict[str, Any]) -> str:
    result = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=json.dumps(body),
                             check=False)  # fmt: skip
    assert result.returncode != 0, f"accepted: {body['spec']}"
    return result.stderr


def test_crd_refuses_bad_scale_to_zero_combinations(cluster: Cluster, namespace: str, crds: None,
                                                    example_images: ExampleImages) -> None:  # fmt: skip
    image = example_images.component.reference
    assert "scaleToZero needs a Service" in refusal(
        cluster, namespace, wasmapp("a", image, scaleToZero={}))
    assert "must be at least 1" in refusal(
        cluster, namespace, wasmapp("b", image, service={}, replicas=0, scaleToZero={}))
    assert "wakeTimeoutSeconds must not exceed idleSeconds" in refusal(
        cluster, namespace, wasmapp("c", image, service={}, scaleToZero={"idleSeconds": 20, "wakeTimeoutSeconds": 30}))
    assert "idleSeconds" in refusal(cluster, namespace, wasmapp("d", image, service={}, scaleToZero={"idleSeconds": 1}))
    ok = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", check=False, input=json.dumps(
        wasmapp("e", image, service={}, replicas=2, scaleToZero={"idleSeconds": 60, "wakeTimeoutSeconds": 30})))
    assert ok.returncode == 0, ok.stderr  # fmt: skip


@pytest.fixture
def s2z_operator(exclusive_operators: DedicatedOperators, namespace: str) -> DedicatedOperators:
    exclusive_operators.start(namespace, "--activator-address", FAKE_ACTIVATOR)
    return exclusive_operators


def wait_target(cluster: Cluster, namespace: str, service: str, target: str, timeout: float = 60) -> list[Any]:
    seen: dict[str, Any] = {}

    def check() -> bool:
        seen["now"] = slice_target(service_slice(cluster, namespace, service))
        return bool(seen["now"][0] == target and seen["now"][1])

    try:
        wait_for(check, timeout=timeout, interval=0.2, message=f"{service}'s EndpointSlice -> {target}")
    except AssertionError as err:
        raise AssertionError(f"{err}; last seen {seen.get('now')}") from None
    return list(seen["now"][1])


def test_service_points_at_the_pods_when_awake_and_at_the_activator_at_zero(
    cluster: Cluster, namespace: str, s2z_operator: DedicatedOperators, example_images: ExampleImages,
) -> None:
    cluster.apply(s2z_app("sleepy", example_images.component.reference), namespace)
    app = wait_condition(cluster, WASMAPP, "sleepy", namespace, "Ready", "True", reason="Available", timeout=90)
    service = get(cluster, "service", "sleepy", namespace)
    assert "selector" not in service["spec"], service["spec"]
    pods_service = get(cluster, "service", "sleepy-pods", namespace)
    assert pods_service["spec"]["clusterIP"] == "None"
    assert pods_service["spec"]["selector"] == {"wasmkube.dev/app": "sleepy"}
    deployment = get(cluster, "deployment", "sleepy", namespace)
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WASMKUBE_METRICS_ADDR"] == "0.0.0.0:9091"
    managers = {m["manager"]: m for m in deployment["metadata"]["managedFields"]}
    assert "f:replicas" not in json.dumps(managers["wasmkube"].get("fieldsV1", {})), "the operator applied replicas"

    # Awake: the slice lists the KWOK pod, as the EndpointSlice controller lists it for sleepy-pods.
    pod_ip = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", "wasmkube.dev/app=sleepy",
                                        "-o", "json").stdout)["items"][0]["status"]["podIP"]  # fmt: skip
    assert [a for a, _ in wait_target(cluster, namespace, "sleepy", "pods")] == [pod_ip]

    # The activator's scale-down (through /scale): the Service moves to the activator at once,
    # and the app is Ready, ScaledToZero.
    started = time.monotonic()
    cluster.kubectl("scale", "deployment", "sleepy", "-n", namespace, "--replicas=0")
    assert wait_target(cluster, namespace, "sleepy", "activator") == [(BRIDGE_GATEWAY, 18012)]
    print(f"\nslice switched to the activator {time.monotonic() - started:.2f}s after the scale-down")
    app = wait_condition(cluster, WASMAPP, "sleepy", namespace, "Ready", "True", reason="ScaledToZero", timeout=30)
    assert app["status"]["replicas"] == 0
    table = cluster.kubectl("get", WASMAPP, "sleepy", "-n", namespace).stdout
    assert "ScaledToZero" in table, table

    # A wake (the activator's scale-up): Waking while no pod is Ready, then the pods again.
    cluster.kubectl("scale", "deployment", "sleepy", "-n", namespace, "--replicas=1")
    wait_target(cluster, namespace, "sleepy", "pods")
    wait_condition(cluster, WASMAPP, "sleepy", namespace, "Ready", "True", reason="Available", timeout=30)
    events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "involvedObject.name=sleepy",
                             "-o", "json").stdout  # fmt: skip
    reasons = [e["reason"] for e in json.loads(events)["items"]]
    assert "ScaledToZero" in reasons, reasons

    # kubectl scale wasmapp while awake: the operator follows it through the Deployment's /scale.
    cluster.kubectl("scale", WASMAPP, "sleepy", "-n", namespace, "--replicas=2")
    wait_for(lambda: get(cluster, "deployment", "sleepy", namespace)["spec"]["replicas"] == 2, timeout=30,
             message="Deployment follows spec.replicas")  # fmt: skip
    wait_for(lambda: len(slice_target(service_slice(cluster, namespace, "sleepy"))[1]) == 2, timeout=60,
             message="both pods in the slice")  # fmt: skip

    # /scale to 0 on the WasmApp is refused by the CRD: zero is what idling does.
    refused = cluster.kubectl("scale", WASMAPP, "sleepy", "-n", namespace, "--replicas=0", check=False)
    assert refused.returncode != 0 and "at least 1" in refused.stderr, refused.stderr


def test_turning_scale_to_zero_off_restores_an_ordinary_service(
    cluster: Cluster, namespace: str, s2z_operator: DedicatedOperators, example_images: ExampleImages,
) -> None:
    cluster.apply(s2z_app("toggle", example_images.component.reference, replicas=2), namespace)
    wait_condition(cluster, WASMAPP, "toggle", namespace, "Ready", "True", reason="Available", timeout=90)
    cluster.kubectl("scale", "deployment", "toggle", "-n", namespace, "--replicas=0")
    wait_condition(cluster, WASMAPP, "toggle", namespace, "Ready", "True", reason="ScaledToZero", timeout=30)

    cluster.kubectl("patch", WASMAPP, "toggle", "-n", namespace, "--type=json",
                    "-p", '[{"op": "remove", "path": "/spec/scaleToZero"}]')  # fmt: skip
    wait_for(lambda: get(cluster, "service", "toggle", namespace)["spec"].get("selector")
             == {"wasmkube.dev/app": "toggle"}, timeout=30, message="selector back")  # fmt: skip
    wait_for(lambda: service_slice(cluster, namespace, "toggle") is None, timeout=30, message="our slice removed")
    wait_for(lambda: get(cluster, "service", "toggle-pods", namespace) is None, timeout=30,
             message="toggle-pods removed")  # fmt: skip
    # replicas is the operator's again: back to 2, and Ready.
    wait_condition(cluster, WASMAPP, "toggle", namespace, "Ready", "True", reason="Available", timeout=60)
    assert get(cluster, "deployment", "toggle", namespace)["spec"]["replicas"] == 2


def test_without_an_activator_the_status_says_requests_would_be_refused(
    cluster: Cluster, namespace: str, exclusive_operators: DedicatedOperators, example_images: ExampleImages,
) -> None:
    exclusive_operators.start(namespace)  # no --activator-*
    cluster.apply(s2z_app("alone", example_images.component.reference), namespace)
    wait_condition(cluster, WASMAPP, "alone", namespace, "Ready", "True", reason="Available", timeout=90)
    cluster.kubectl("scale", "deployment", "alone", "-n", namespace, "--replicas=0")
    app = wait_condition(cluster, WASMAPP, "alone", namespace, "Ready", "False", reason="ActivatorUnavailable",
                         timeout=30)  # fmt: skip
    assert condition(app, "Reconciling")["status"] == "True"
    assert slice_target(service_slice(cluster, namespace, "alone"))[1] == []


# --- the activator process against this API server ---------------------------------------------------


@pytest.fixture
def activator_identity(cluster: Cluster, namespace: str, tmp_path: Path) -> Iterator[Path]:
    """A kubeconfig of the chart's activator ServiceAccount with exactly the chart's RBAC for it
    (watchNamespaces = the test's namespace, so nothing cluster-wide is left behind)."""
    release = f"s2z-{namespace[-6:]}"
    rendered = subprocess.run(
        [str(binary("helm")), "template", release, str(REPO_ROOT / "charts" / "wasmkube"), "--namespace", namespace,
         "--set", "crds.install=false", "--set", f"fullnameOverride={release}",
         "--set", f"watchNamespaces={{{namespace}}}", "--show-only", "templates/activator-rbac.yaml"],
        capture_output=True, text=True, timeout=120, check=True).stdout  # fmt: skip
    cluster.kubectl("apply", "-f", "-", input=rendered)
    try:
        yield service_account_kubeconfig(cluster, f"{release}-activator", namespace, tmp_path / "activator.kubeconfig")
    finally:
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=rendered, check=False)


def test_activator_process_wakes_through_scale_refuses_and_times_out_without_a_pod(
    cluster: Cluster, namespace: str, exclusive_operators: DedicatedOperators, example_images: ExampleImages,
    activator_identity: Path, tmp_path: Path,
) -> None:
    """No pod ever becomes Ready (they are never scheduled), so no forwarding target is needed:
    the wake through the real /scale, 404, 503 past maxPendingRequests, 504 after the timeout,
    and the idle loop's scale-down of a wake that never became Ready; all as the chart's
    activator ServiceAccount, so its least-privilege RBAC is shown to be enough."""
    activator = ActivatorProcess(activator_identity, tmp_path / "activator.log", "127.0.0.1", namespace,
                                 extra_args=["--leader-elect", "--lease-namespace", namespace,
                                             "--lease-seconds", "6"])  # fmt: skip
    exclusive_operators.start(namespace, "--activator-address", FAKE_ACTIVATOR)
    activator.start()
    try:
        cluster.apply(wasmapp("never", example_images.component.reference, service={"port": 80},
                              resources=UNSCHEDULABLE,
                              scaleToZero={"idleSeconds": 10, "wakeTimeoutSeconds": 3, "maxPendingRequests": 2}),
                      namespace)  # fmt: skip
        wait_for(lambda: get(cluster, "deployment", "never", namespace) is not None, timeout=60, message="Deployment")
        cluster.kubectl("scale", "deployment", "never", "-n", namespace, "--replicas=0")
        wait_condition(cluster, WASMAPP, "never", namespace, "Ready", "True", reason="ScaledToZero", timeout=30)

        unknown = http_request("127.0.0.1", activator.port, host=f"nobody.{namespace}")
        assert unknown.status == 404 and f"{namespace}/nobody" in unknown.body, unknown

        with ThreadPoolExecutor(6) as pool:
            answers = list(pool.map(lambda _: http_request("127.0.0.1", activator.port, host=f"never.{namespace}"),
                                    range(6)))  # fmt: skip
        statuses = sorted(a.status for a in answers)
        print(f"\n6 requests, maxPendingRequests 2, no pod ever Ready: {statuses}")
        assert statuses == [503, 503, 503, 503, 504, 504], answers
        timed_out = next(a for a in answers if a.status == 504)
        assert "did not become Ready within 3s" in timed_out.body and "never-pods" in timed_out.body
        assert 2.5 <= timed_out.seconds < 8, timed_out.seconds
        refused = next(a for a in answers if a.status == 503)
        assert refused.headers.get("Retry-After") == "1" and refused.seconds < 2
        # The wake went through the real /scale (one scale-up for six requests).
        assert get(cluster, "deployment", "never", namespace)["spec"]["replicas"] == 1
        assert activator.metric("wasmkube_activator_wakes_total", namespace=namespace, app="never") == 1
        # Never Ready: after its replica count was seen unchanged for an idle period, back to zero.
        wait_for(lambda: get(cluster, "deployment", "never", namespace)["spec"]["replicas"] == 0, timeout=60,
                 message="the idle loop scaled the never-Ready wake down")  # fmt: skip
        assert activator.metric("wasmkube_activator_scale_downs_total", namespace=namespace, app="never") == 1
    finally:
        print(f"\n--- activator log ---\n{activator.log_tail(30)}")
        activator.stop()


class _Backend(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "host": self.headers.get("Host"),
                           "xff": self.headers.get("X-Forwarded-For")}).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def bridge_backend() -> Iterator[int]:
    if not bridge_exists():
        pytest.skip("the real node's bridge wasmkube0 is not up (make real-node): no address to forward to")
    server = ThreadingHTTPServer((BRIDGE_GATEWAY, 0), _Backend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()


def test_activator_holds_a_request_at_zero_wakes_the_app_and_forwards_it(
    cluster: Cluster, namespace: str, exclusive_operators: DedicatedOperators, example_images: ExampleImages,
    bridge_backend: int, tmp_path: Path,
) -> None:
    activator = ActivatorProcess(cluster.kubeconfig, tmp_path / "activator.log", BRIDGE_GATEWAY, namespace)
    exclusive_operators.start(namespace, "--activator-address", activator.endpoint)
    activator.start()
    try:
        # Pods are never scheduled: the hand-made slice below is the only Ready "pod".
        cluster.apply(s2z_app("held", example_images.component.reference, resources=UNSCHEDULABLE),
                      namespace)  # fmt: skip
        wait_for(lambda: get(cluster, "deployment", "held", namespace) is not None, timeout=60, message="Deployment")
        cluster.kubectl("scale", "deployment", "held", "-n", namespace, "--replicas=0")
        wait_condition(cluster, WASMAPP, "held", namespace, "Ready", "True", reason="ScaledToZero", timeout=30)

        unknown = http_request(BRIDGE_GATEWAY, activator.port, host=f"nobody.{namespace}")
        assert unknown.status == 404 and f"{namespace}/nobody" in unknown.body, unknown

        answer: dict[str, Answer] = {}
        client = threading.Thread(target=lambda: answer.setdefault("a", http_request(
            BRIDGE_GATEWAY, activator.port, "/hi?x=1", host=f"held.{namespace}.svc.cluster.local")))  # fmt: skip
        client.start()
        wait_for(lambda: get(cluster, "deployment", "held", namespace)["spec"]["replicas"] == 1, timeout=10,
                 message="the activator scaled the Deployment up")  # fmt: skip
        time.sleep(0.5)
        assert client.is_alive(), f"answered before any pod was Ready: {answer}"
        cluster.apply({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "held-pods-e2e", "labels": {
                "kubernetes.io/service-name": "held-pods", "wasmkube.dev/endpoints": "pods",
                "endpointslice.kubernetes.io/managed-by": "e2e"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": bridge_backend, "protocol": "TCP"}],
            "endpoints": [{"addresses": [BRIDGE_GATEWAY], "conditions": {"ready": True}}],
        }, namespace)  # fmt: skip
        client.join(15)
        result = answer["a"]
        assert result.status == 200, result
        seen = json.loads(result.body)
        assert seen["path"] == "/hi?x=1" and seen["host"] == f"held.{namespace}.svc.cluster.local"
        assert seen["xff"] == BRIDGE_GATEWAY
        assert activator.metric("wasmkube_activator_wakes_total", namespace=namespace, app="held") == 1
        assert activator.metric("wasmkube_activator_requests_forwarded_total", namespace=namespace, app="held",
                                held="true") == 1  # fmt: skip
        assert activator.metric("wasmkube_activator_wake_seconds_count", namespace=namespace, app="held") == 1
    finally:
        print(f"\n--- activator log ---\n{activator.log_tail(30)}")
        activator.stop()
