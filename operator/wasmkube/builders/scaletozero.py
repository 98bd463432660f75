"""The objects that let a WasmApp with `scaleToZero` be reached at zero replicas.

The app's Service `<app>` has no selector: wasmkube owns its EndpointSlice. While a pod is Ready
the slice lists the pods (mirrored from the private selector Service `<app>-pods`, whose slices
the EndpointSlice controller fills), so requests go straight to them; while the app is at zero
(or waking with no Ready pod) the slice lists the activator, which holds the requests and wakes
the app. The activator is in the path only while there is no pod to send a request to: a proxy
always in the path would cost a Wasm app, which serves tens of thousands of requests per second
per pod, far more than it saves.

Pure functions; the controller feeds them the EndpointSlices it watches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wasmkube.api.wasmapp import WasmApp
from wasmkube.builders.applied import stamp_hash
from wasmkube.builders.identity import child_name, curated_labels, owner_reference, selector_labels
from wasmkube.errors import SpecError

# Which wasmkube EndpointSlice role an object plays; also the server-side label selector of the
# watches, so only these slices are ever sent to the operator and the activator.
ENDPOINTS_LABEL = "wasmkube.dev/endpoints"
PODS = "pods"  # slices of `<app>-pods`, filled by the EndpointSlice controller (copied Service labels)
SERVICE = "service"  # the slice of `<app>`, written by the operator
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
SLICE_MANAGER = "wasmkube.dev"

# The shim serves its request counters here when the pod's env asks for it; the activator's idle
# loop reads them.
METRICS_ENV = "WASMKUBE_METRICS_ADDR"
METRICS_PORT = 9091
METRICS_PORT_NAME = "metrics"

_MAX_LABEL = 63
_PODS_SUFFIX = "-pods"


def pods_service_name(app_name: str) -> str:
    """`<app>-pods`, kept a valid Service name (63 characters) for every valid app name."""
    base = child_name(app_name)
    if len(base) + len(_PODS_SUFFIX) <= _MAX_LABEL:
        return base + _PODS_SUFFIX
    digest = hashlib.sha256(app_name.encode()).hexdigest()[:8]
    keep = _MAX_LABEL - len(_PODS_SUFFIX) - len(digest) - 1
    return f"{base[:keep].rstrip('-')}-{digest}{_PODS_SUFFIX}"


def awake_replicas(app: WasmApp) -> int:
    """How many replicas a wake asks for: spec.replicas, or autoscaling.minReplicas, at least 1."""
    spec = app.spec
    if spec.autoscaling is not None:
        return max(spec.autoscaling.min_replicas, 1)
    return max(spec.replicas if spec.replicas is not None else 1, 1)


def with_metrics_endpoint(template: dict[str, Any]) -> dict[str, Any]:
    """Ask the shim for its request metrics (env) and declare their port, in the pod template."""
    container = template["spec"]["containers"][0]
    ports = container.setdefault("ports", [])
    for port in ports:
        if port.get("name") == METRICS_PORT_NAME or port.get("containerPort") == METRICS_PORT:
            raise SpecError(
                "InvalidSpec",
                f"scaleToZero reads the shim's request metrics on port {METRICS_PORT} (named {METRICS_PORT_NAME}); "
                "the app declares that port or name: use another",
            )
    ports.append({"name": METRICS_PORT_NAME, "containerPort": METRICS_PORT, "protocol": "TCP"})
    env = container.setdefault("env", [])
    env.append({"name": METRICS_ENV, "value": f"0.0.0.0:{METRICS_PORT}"})
    return template


def build_pods_service(app: WasmApp, service: dict[str, Any] | None) -> dict[str, Any] | None:
    """`<app>-pods`: headless (no virtual IP, no kube-proxy rules), with the app's selector and the
    user Service's port, so the EndpointSlice controller lists the pods and resolves the port."""
    if app.spec.scale_to_zero is None or service is None:
        return None
    metadata = {
        "name": pods_service_name(app.name),
        "namespace": app.namespace,
        "labels": {**curated_labels(app.name, app.labels), ENDPOINTS_LABEL: PODS},
        "ownerReferences": [owner_reference(app.api_version, app.kind, app.name, app.uid)],
    }
    port = service["spec"]["ports"][0]
    pods_service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "clusterIP": "None",
            "selector": selector_labels(app.name),
            "ports": [{k: port[k] for k in ("name", "port", "targetPort", "protocol")}],
        },
    }
    return stamp_hash(pods_service)


@dataclass(frozen=True)
class Endpoint:
    """One address the app's Service sends to, as EndpointSlices describe it."""

    address: str
    port: int
    node_name: str | None = None
    # Which pod it is, for the slice we write; not part of an endpoint's identity (and a dict
    # cannot be hashed, while sets of endpoints are how the idle loop sees a change).
    target_ref: dict[str, Any] | None = field(default=None, compare=False, hash=False)


def _slice_port(slice_: dict[str, Any], port_name: str | None) -> int | None:
    ports = slice_.get("ports") or []
    for port in ports:
        if port_name is None or port.get("name") == port_name or len(ports) == 1:
            value = port.get("port")
            return int(value) if value is not None else None
    return None


def ready_endpoints(slices: list[dict[str, Any]], port_name: str | None = None) -> list[Endpoint]:
    """The Ready IPv4 endpoints of some EndpointSlices, for the port named `port_name`; sorted, so
    an unchanged set produces an unchanged slice (and no write)."""
    # An unset `ready` means ready (discovery/v1); a terminating endpoint is never ready.
    return _endpoints(slices, port_name, lambda conditions: conditions.get("ready", True) is True)


def starting_endpoints(slices: list[dict[str, Any]], port_name: str | None = None) -> list[Endpoint]:
    """The endpoints listed but not Ready and not terminating: pods that have an address and are
    starting. The activator probes these itself while it holds requests, so a woken app is used the
    moment it answers rather than after the kubelet's next probe and status round trip."""

    def starting(conditions: dict[str, Any]) -> bool:
        return conditions.get("ready", True) is not True and conditions.get("terminating") is not True

    return _endpoints(slices, port_name, starting)


def _endpoints(
    slices: list[dict[str, Any]], port_name: str | None, wanted: Callable[[dict[str, Any]], bool]
) -> list[Endpoint]:
    found: dict[tuple[str, int], Endpoint] = {}
    for slice_ in slices:
        if slice_.get("addressType", "IPv4") != "IPv4":
            continue
        port = _slice_port(slice_, port_name)
        if port is None:
            continue
        for endpoint in slice_.get("endpoints") or []:
            if not wanted(endpoint.get("conditions") or {}):
                continue
            for address in endpoint.get("addresses") or []:
                found[(address, port)] = Endpoint(address, port, endpoint.get("nodeName"), endpoint.get("targetRef"))
    return [found[k] for k in sorted(found)]


def build_endpoint_slice(
    app: WasmApp, service: dict[str, Any], endpoints: list[Endpoint], target: str
) -> dict[str, Any]:
    """The EndpointSlice of `<app>`: the given endpoints under the Service's port name.

    `target` ("pods" or "activator") is recorded as a label, so `kubectl get endpointslices -L`
    shows where the app's traffic goes. All endpoints share one port (pods: the container port;
    activator: its listener), as a slice's ports apply to every endpoint in it."""
    port = service["spec"]["ports"][0]
    name = child_name(app.name)
    labels = {
        **curated_labels(app.name, app.labels),
        ENDPOINTS_LABEL: SERVICE,
        SERVICE_NAME_LABEL: service["metadata"]["name"],
        MANAGED_BY_LABEL: SLICE_MANAGER,
        "wasmkube.dev/target": target,
    }
    body: list[dict[str, Any]] = []
    for endpoint in endpoints:
        entry: dict[str, Any] = {"addresses": [endpoint.address], "conditions": {"ready": True}}
        if endpoint.node_name:
            entry["nodeName"] = endpoint.node_name
        if endpoint.target_ref:
            entry["targetRef"] = {k: v for k, v in endpoint.target_ref.items() if k in ("kind", "namespace", "name")}
        body.append(entry)
    ports = sorted({e.port for e in endpoints})
    if len(ports) > 1:  # pragma: no cover - callers pass one source at a time
        raise ValueError(f"endpoints of one slice must share a port, got {ports}")
    endpoint_slice = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": app.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(app.api_version, app.kind, app.name, app.uid)],
        },
        "addressType": "IPv4",
        "endpoints": body,
        "ports": [
            {
                "name": port["name"],
                "protocol": port.get("protocol", "TCP"),
                **({"port": ports[0]} if ports else {}),
            }
        ],
    }
    return stamp_hash(endpoint_slice)
