"""The Deployment, Service and HorizontalPodAutoscaler of a WasmApp."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wasmkube.api.artifact import ArtifactKind
from wasmkube.api.wasmapp import WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.applied import stamp_hash
from wasmkube.builders.identity import child_name, curated_labels, owner_reference, selector_labels
from wasmkube.builders.pod import build_pod_template, effective_ports, http_port
from wasmkube.builders.scaletozero import build_pods_service, with_metrics_endpoint
from wasmkube.builders.scheduling import merge_node_selectors
from wasmkube.errors import SpecError

DEFAULT_REPLICAS = 1
REVISION_HISTORY_LIMIT = 5
# For an app that serves HTTP and declares no strategy: never take a serving pod away before its
# replacement is Ready (maxUnavailable 0), surging by Kubernetes' default 25% (at least one pod).
HTTP_MAX_SURGE = "25%"


def http_rollout_strategy() -> dict[str, Any]:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": HTTP_MAX_SURGE}}


def _metadata(app: WasmApp, runtime: WasmRuntime) -> dict[str, Any]:
    return {
        "name": child_name(app.name),
        "namespace": app.namespace,
        "labels": curated_labels(app.name, app.labels, runtime.name),
        "ownerReferences": [owner_reference(app.api_version, app.kind, app.name, app.uid)],
    }


def build_deployment(
    app: WasmApp, runtime: WasmRuntime, image: str, kind: ArtifactKind | None = None
) -> dict[str, Any]:
    """`kind` is the artifact kind the registry reported (None when not known, e.g. in tests)."""
    spec = app.spec
    # Checked here too (not only by admission) so `wasmkube render` reports it offline.
    merge_node_selectors(runtime.spec.node_selector or {}, spec.node_selector or {})
    deployment_spec: dict[str, Any] = {
        "selector": {"matchLabels": selector_labels(app.name)},
        "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
        "template": build_pod_template(app, runtime, image, kind),
    }
    if spec.scale_to_zero is not None:
        with_metrics_endpoint(deployment_spec["template"])
    if spec.autoscaling is None and spec.scale_to_zero is None:
        # With autoscaling the HPA owns the replica count (with scaleToZero the activator scales
        # between 0 and 1, the operator only while awake): leaving it out of our apply is what
        # keeps server-side apply from fighting them.
        deployment_spec["replicas"] = spec.replicas if spec.replicas is not None else DEFAULT_REPLICAS
    if spec.strategy:
        deployment_spec["strategy"] = spec.strategy.model_dump(by_alias=True, exclude_none=True, mode="json")
    elif http_port(effective_ports(app, runtime)) is not None:
        deployment_spec["strategy"] = http_rollout_strategy()
    return stamp_hash(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _metadata(app, runtime), "spec": deployment_spec}
    )


def build_service(app: WasmApp, runtime: WasmRuntime) -> dict[str, Any] | None:
    service = app.spec.service
    if service is None or not service.enabled:
        return None
    ports = effective_ports(app, runtime)
    if not ports:  # pragma: no cover - effective_ports always yields a port when a Service is enabled
        raise SpecError("InvalidService", "a Service needs a port to target")
    # The Service port takes the name and protocol of the container port it forwards to.
    targeted = next(
        (p for p in ports if service.target_port in (p.name, p.container_port)),
        ports[0],
    )
    target: int | str = (
        service.target_port if service.target_port is not None else (targeted.name or targeted.container_port)
    )
    metadata = _metadata(app, runtime)
    if service.annotations:
        metadata["annotations"] = dict(service.annotations)
    body = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": service.type.value,
            # With scaleToZero, no selector: wasmkube keeps the Service's EndpointSlice, listing the
            # pods while one is Ready and the activator otherwise (builders/scaletozero.py).
            **({} if app.spec.scale_to_zero is not None else {"selector": selector_labels(app.name)}),
            "ports": [
                {
                    "name": targeted.name or "app",
                    "port": service.port,
                    "targetPort": target,
                    "protocol": targeted.protocol.value,
                }
            ],
        },
    }
    return stamp_hash(body)


def build_autoscaler(app: WasmApp, runtime: WasmRuntime) -> dict[str, Any] | None:
    scaling = app.spec.autoscaling
    if scaling is None:
        return None
    metrics: list[dict[str, Any]] = [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu_utilization_percentage},
            },
        }
    ]
    if scaling.target_memory_utilization_percentage is not None:
        metrics.append(
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "target": {
                        "type": "Utilization",
                        "averageUtilization": scaling.target_memory_utilization_percentage,
                    },
                },
            }
        )
    body = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(app, runtime),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": child_name(app.name)},
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": metrics,
        },
    }
    return stamp_hash(body)


@dataclass(frozen=True)
class Children:
    """Everything one WasmApp should own. `None` means "must not exist"."""

    deployment: dict[str, Any]
    service: dict[str, Any] | None
    autoscaler: dict[str, Any] | None
    pods_service: dict[str, Any] | None = None  # scaleToZero only: `<app>-pods`, whose slices list the pods


def build_children(app: WasmApp, runtime: WasmRuntime, image: str, kind: ArtifactKind | None = None) -> Children:
    """The whole desired state of one app, from its spec, its runtime, the pinned image and the
    artifact's kind (Spin variables need a Spin app)."""
    return Children(
        deployment=build_deployment(app, runtime, image, kind),
        service=build_service(app, runtime),
        autoscaler=build_autoscaler(app, runtime),
        pods_service=build_pods_service(app, build_service(app, runtime)),
    )
