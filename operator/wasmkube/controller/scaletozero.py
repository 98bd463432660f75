"""The operator's half of scale to zero: point `<app>`'s EndpointSlice at the pods or the activator,
keep the replica count while awake, and say in status whether the app sleeps or wakes.

The other half, the activator, holds requests, scales the Deployment between 0 and N through its
/scale subresource and decides when an app is idle. The operator never applies `replicas` for
these apps (the Deployment builder leaves it out), so the two never fight: the operator only
changes the count while the app is awake and spec.replicas moved, and only if nobody changed the
Deployment since it was read.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog

from wasmkube.api.wasmapp import WasmApp
from wasmkube.builders.identity import child_name
from wasmkube.builders.scaletozero import (
    ENDPOINTS_LABEL,
    PODS,
    SERVICE_NAME_LABEL,
    awake_replicas,
    build_endpoint_slice,
    pods_service_name,
    ready_endpoints,
)
from wasmkube.builders.workload import Children
from wasmkube.clients.kube import DEPLOYMENTS, ENDPOINTSLICES, KubeApiError
from wasmkube.controller.context import Context
from wasmkube.status.conditions import Verdict, find
from wasmkube.status.scaletozero import scale_to_zero_verdict

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ScaleToZeroOutcome:
    verdict: Verdict
    requeue_after: float | None = None


def pod_slices(ctx: Context, app: WasmApp) -> list[dict[str, Any]]:
    """The cached EndpointSlices of `<app>-pods`."""
    service = pods_service_name(app.name)
    return [
        s
        for s in ctx.store.endpoint_slices.values()
        if s.get("metadata", {}).get("namespace") == app.namespace
        and (s.get("metadata", {}).get("labels") or {}).get(SERVICE_NAME_LABEL) == service
        and (s.get("metadata", {}).get("labels") or {}).get(ENDPOINTS_LABEL) == PODS
    ]


def desired_slice(ctx: Context, app: WasmApp, service: dict[str, Any]) -> dict[str, Any]:
    """`<app>`'s slice: the Ready pods if there is one, else the activator."""
    port_name = service["spec"]["ports"][0]["name"]
    pods = ready_endpoints(pod_slices(ctx, app), port_name)
    if pods:
        return build_endpoint_slice(app, service, pods, "pods")
    return build_endpoint_slice(app, service, ctx.activator.endpoints(), "activator")


async def _keep_awake_count(ctx: Context, app: WasmApp, deployment: dict[str, Any]) -> None:
    """While awake, follow spec.replicas (kubectl scale wasmapp); at zero the next wake uses it."""
    if app.spec.autoscaling is not None:
        return  # the HPA owns the count while awake
    current = int(deployment.get("spec", {}).get("replicas", 1))
    wanted = awake_replicas(app)
    if current == 0 or current == wanted:
        return
    meta = deployment["metadata"]
    try:
        await ctx.client.patch_scale(
            DEPLOYMENTS, app.namespace, meta["name"], wanted, resource_version=meta.get("resourceVersion")
        )
    except KubeApiError as exc:
        if exc.status != 409:
            raise
        # Changed since we read it (the activator scaled it): the watch brings the new state.
        _log.debug("replica change lost a race; will look again", app=app.name)


async def reconcile_scale_to_zero(
    ctx: Context,
    app: WasmApp,
    children: Children,
    deployment: dict[str, Any] | None,
    verdict: Verdict,
    previous: dict[str, Any],
) -> ScaleToZeroOutcome:
    """Apply (or remove) `<app>`'s EndpointSlice; map the verdict for an app that sleeps or wakes."""
    key = (app.namespace, child_name(app.name))
    settings = app.spec.scale_to_zero
    if settings is None or children.service is None:
        await ctx.children.remove(ENDPOINTSLICES, key, ctx.store.endpoint_slices, app.uid)
        return ScaleToZeroOutcome(verdict)
    await ctx.children.ensure(desired_slice(ctx, app, children.service), ctx.store.endpoint_slices, app.uid)
    if deployment is not None and verdict.state != "stalled":
        await _keep_awake_count(ctx, app, deployment)
    ready = find(previous.get("conditions"), "Ready")
    mapped, requeue = scale_to_zero_verdict(
        settings,
        deployment,
        verdict,
        ready.get("reason") if ready else None,
        activator_ready=bool(ctx.activator.endpoints()),
        now=time.time(),
    )
    return ScaleToZeroOutcome(mapped, requeue)
