"""Scale to zero in the builders: selector-less Service, `<app>-pods`, the mirrored EndpointSlice,
the Deployment without replicas and with the shim's metrics endpoint; and the status mapping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wasmkube.api.scaletozero import ScaleToZero
from wasmkube.api.wasmapp import WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.applied import APPLIED_HASH_ANNOTATION
from wasmkube.builders.identity import selector_labels
from wasmkube.builders.scaletozero import (
    ENDPOINTS_LABEL,
    METRICS_ENV,
    Endpoint,
    awake_replicas,
    build_endpoint_slice,
    pods_service_name,
    ready_endpoints,
)
from wasmkube.builders.workload import build_children, build_service
from wasmkube.errors import SpecError
from wasmkube.status.conditions import Verdict
from wasmkube.status.scaletozero import scale_to_zero_verdict

MakeApp = Callable[..., WasmApp]
MakeRuntime = Callable[..., WasmRuntime]
IMAGE = "registry.example.com/team/hello@sha256:" + "0" * 64
S2Z: dict[str, Any] = {"scaleToZero": {"idleSeconds": 30, "wakeTimeoutSeconds": 10}, "service": {"port": 80}}


@pytest.fixture
def runtime(make_runtime: MakeRuntime) -> WasmRuntime:
    return make_runtime("wasmtime", handler="wasmtime", defaultPort=8080)


def test_service_has_no_selector_and_the_pods_service_has_it(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app("greeter", **S2Z)
    children = build_children(app, runtime, IMAGE)

    assert children.service is not None and "selector" not in children.service["spec"]
    pods = children.pods_service
    assert pods is not None
    assert pods["metadata"]["name"] == "greeter-pods"
    assert pods["metadata"]["labels"][ENDPOINTS_LABEL] == "pods"
    assert pods["spec"]["clusterIP"] == "None"
    assert pods["spec"]["selector"] == selector_labels("greeter")
    assert pods["spec"]["ports"] == [{k: children.service["spec"]["ports"][0][k]
                                      for k in ("name", "port", "targetPort", "protocol")}]  # fmt: skip
    assert APPLIED_HASH_ANNOTATION in pods["metadata"]["annotations"]
    assert pods["metadata"]["ownerReferences"][0]["kind"] == "WasmApp"


def test_an_ordinary_app_keeps_its_selector_and_has_no_pods_service(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app("greeter", service={"port": 80})
    children = build_children(app, runtime, IMAGE)
    assert children.service is not None and children.service["spec"]["selector"] == selector_labels("greeter")
    assert children.pods_service is None


def test_deployment_leaves_replicas_out_and_asks_the_shim_for_metrics(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_children(make_app("greeter", replicas=3, **S2Z), runtime, IMAGE).deployment
    assert "replicas" not in deployment["spec"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert {"name": METRICS_ENV, "value": "0.0.0.0:9091"} in container["env"]
    assert {"name": "metrics", "containerPort": 9091, "protocol": "TCP"} in container["ports"]


def test_a_declared_metrics_port_is_a_spec_error(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app("greeter", ports=[{"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9091}],
                   **S2Z)  # fmt: skip
    with pytest.raises(SpecError, match="9091"):
        build_children(app, runtime, IMAGE)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, 1),
        ({"replicas": 3}, 3),
        ({"autoscaling": {"minReplicas": 2, "maxReplicas": 4}, "resources": {"requests": {"cpu": "1"}}}, 2),
    ],
)
def test_a_wake_asks_for_the_awake_count(make_app: MakeApp, spec: dict[str, Any], expected: int) -> None:
    assert awake_replicas(make_app(**spec, **S2Z)) == expected


def test_pods_service_name_stays_a_dns_label_for_long_names() -> None:
    name = pods_service_name("a" * 60)
    assert len(name) <= 63 and name.endswith("-pods")
    assert pods_service_name("a" * 60) != pods_service_name("a" * 61)


def pod_slice(*endpoints: tuple[str, bool | None], port: int = 8080, address_type: str = "IPv4") -> dict[str, Any]:
    return {
        "addressType": address_type,
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [ip], "conditions": {} if ready is None else {"ready": ready}, "nodeName": "n1",
             "targetRef": {"kind": "Pod", "namespace": "apps", "name": f"p-{ip}", "uid": "u"}}
            for ip, ready in endpoints
        ],
    }  # fmt: skip


def test_ready_endpoints_keep_only_ready_ipv4_addresses_sorted() -> None:
    slices = [pod_slice(("10.0.0.9", True), ("10.0.0.2", False)), pod_slice(("10.0.0.3", None)),
              pod_slice(("fd00::1", True), address_type="IPv6")]  # fmt: skip
    assert [(e.address, e.port) for e in ready_endpoints(slices, "http")] == [("10.0.0.3", 8080), ("10.0.0.9", 8080)]


def test_endpoint_slice_mirrors_the_pods_under_the_service_port_name(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app("greeter", **S2Z)
    service = build_service(app, runtime)
    assert service is not None
    endpoints = ready_endpoints([pod_slice(("10.0.0.9", True))], "http")
    slice_ = build_endpoint_slice(app, service, endpoints, "pods")

    labels = slice_["metadata"]["labels"]
    assert labels["kubernetes.io/service-name"] == "greeter"
    assert labels["endpointslice.kubernetes.io/managed-by"] == "wasmkube.dev"
    assert labels["app.kubernetes.io/managed-by"] == "wasmkube"
    assert labels["wasmkube.dev/target"] == "pods"
    assert slice_["ports"] == [{"name": "http", "protocol": "TCP", "port": 8080}]
    pod = {"kind": "Pod", "namespace": "apps", "name": "p-10.0.0.9"}
    assert slice_["endpoints"] == [{"addresses": ["10.0.0.9"], "conditions": {"ready": True}, "nodeName": "n1",
                                    "targetRef": pod}]  # fmt: skip


def test_endpoint_slice_at_zero_points_at_the_activator(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app("greeter", **S2Z)
    service = build_service(app, runtime)
    assert service is not None
    slice_ = build_endpoint_slice(app, service, [Endpoint("10.222.0.1", 8012)], "activator")
    assert slice_["endpoints"] == [{"addresses": ["10.222.0.1"], "conditions": {"ready": True}}]
    assert slice_["ports"][0]["port"] == 8012
    assert slice_["metadata"]["labels"]["wasmkube.dev/target"] == "activator"


# --- status ---------------------------------------------------------------------------------------

SETTINGS = ScaleToZero(idle_seconds=30, wake_timeout_seconds=10)
ROLLING = Verdict("progressing", "RollingOut", "0 of 1 replicas available")
AVAILABLE = Verdict("ready", "Available", "1 of 1 replicas available")


def deployment(replicas: int, unavailable_since: str | None = None) -> dict[str, Any]:
    conditions = []
    if unavailable_since:
        conditions.append({"type": "Available", "status": "False", "lastTransitionTime": unavailable_since})
    return {"spec": {"replicas": replicas}, "status": {"conditions": conditions}}


def test_at_zero_the_app_is_ready_scaled_to_zero() -> None:
    verdict, requeue = scale_to_zero_verdict(SETTINGS, deployment(0), AVAILABLE, "Available", True, 0.0)
    assert (verdict.state, verdict.reason, requeue) == ("ready", "ScaledToZero", None)
    assert "the next request wakes it" in verdict.message


def test_at_zero_even_before_the_deployment_controller_caught_up() -> None:
    lagging = Verdict("progressing", "RollingOut", "waiting for the Deployment controller to see the change")
    verdict, _ = scale_to_zero_verdict(SETTINGS, deployment(0), lagging, "Available", True, 0.0)
    assert verdict.reason == "ScaledToZero"


def test_at_zero_without_an_activator_requests_would_be_refused() -> None:
    verdict, _ = scale_to_zero_verdict(SETTINGS, deployment(0), AVAILABLE, None, False, 0.0)
    assert (verdict.state, verdict.reason) == ("progressing", "ActivatorUnavailable")


def test_a_wake_stays_ready_until_the_wake_timeout() -> None:
    woken = deployment(1, "2026-01-01T00:00:00Z")
    start = 1767225600.0  # 2026-01-01T00:00:00Z
    verdict, requeue = scale_to_zero_verdict(SETTINGS, woken, ROLLING, "ScaledToZero", True, start + 4)
    assert (verdict.state, verdict.reason) == ("ready", "Waking")
    assert requeue == pytest.approx(7)
    late, requeue = scale_to_zero_verdict(SETTINGS, woken, ROLLING, "Waking", True, start + 11)
    assert (late.state, late.reason, requeue) == ("progressing", "WakeTimedOut", None)
    assert "504" in late.message


def test_an_awake_app_is_what_its_rollout_says() -> None:
    assert scale_to_zero_verdict(SETTINGS, deployment(1), AVAILABLE, "Waking", True, 0.0) == (AVAILABLE, None)
    # A rollout of an awake app is a rollout, not a wake.
    assert scale_to_zero_verdict(SETTINGS, deployment(1), ROLLING, "Available", True, 0.0) == (ROLLING, None)


def test_stalled_wins() -> None:
    stalled = Verdict("stalled", "NotFound", "gone")
    assert scale_to_zero_verdict(SETTINGS, deployment(0), stalled, "ScaledToZero", True, 0.0) == (stalled, None)


def test_endpoints_with_a_target_ref_can_be_put_in_a_set() -> None:
    """Found on the real node: the idle loop keeps sets of endpoints, and EndpointSlices always
    carry a targetRef; a dict field made Endpoint unhashable and killed the loop."""
    from wasmkube.builders.scaletozero import Endpoint

    ref = {"kind": "Pod", "name": "p-1", "namespace": "ns"}
    assert len({Endpoint("10.0.0.1", 8080, "n", ref), Endpoint("10.0.0.1", 8080, "n", dict(ref))}) == 1
