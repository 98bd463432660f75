"""Reconcile one WasmApp: pin its artifact, choose its runtime, apply its children, report.

Level-based: everything is computed from the cached WasmApp, its runtime, its children and the
nodes, never from what an event said changed. Running it twice in a row does nothing the second
time. Failures are sorted into three kinds:

- the spec cannot work (`SpecError`, a permanent registry answer): `Stalled`, no retry until the
  spec, a runtime, a secret or a node changes;
- the outside world hiccupped (registry down, API server busy): retried with backoff, and
  whatever is already running is left exactly as it was;
- everything else is a bug: logged, retried with backoff, and it never affects other apps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from wasmkube.api.wasmapp import ArtifactStatus, WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.errors import SpecError
from wasmkube.builders.identity import child_name, selector_string
from wasmkube.builders.runtime_choice import select_runtime
from wasmkube.builders.scaletozero import pods_service_name
from wasmkube.builders.scheduling import NodeInfo, count_nodes, merge_node_selectors, merge_tolerations
from wasmkube.builders.workload import Children, build_children
from wasmkube.clients.kube import HPAS, SECRETS, SERVICES, WASMAPPS, KubeApiError
from wasmkube.controller.artifacts import Pin, pin_artifact, seconds_until_next_check
from wasmkube.controller.context import Context
from wasmkube.controller.events import transition_event
from wasmkube.controller.scaletozero import reconcile_scale_to_zero
from wasmkube.controller.store import Key
from wasmkube.registry.errors import RegistryError
from wasmkube.status.conditions import Verdict, build_conditions, now_rfc3339, without_times
from wasmkube.status.rollout import replica_counts, rollout_verdict

_log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AppOutcome:
    """What one reconcile decided: the verdict, and when to look again (seconds), if at all."""

    verdict: Verdict
    requeue_after: float | None = None


def _runtimes(ctx: Context) -> list[WasmRuntime]:
    parsed = []
    for body in ctx.store.runtimes.values():
        try:
            parsed.append(WasmRuntime.model_validate(body))
        except ValidationError:
            continue  # an invalid runtime is reported on the runtime itself
    return parsed


def _nodes(ctx: Context) -> list[NodeInfo]:
    return [NodeInfo.from_node(n) for n in ctx.store.nodes.values()]


def eligibility_verdict(app: WasmApp, runtime: WasmRuntime, nodes: list[NodeInfo]) -> Verdict | None:
    """`NoEligibleNodes` when no Ready node can take the app's pods, else None."""
    selector = merge_node_selectors(runtime.spec.node_selector or {}, app.spec.node_selector or {})
    tolerations = merge_tolerations(runtime.spec.tolerations or [], app.spec.tolerations or [])
    eligible, ready = count_nodes(nodes, selector, tolerations)
    if ready:
        return None
    shown = ", ".join(f"{k}={v}" for k, v in sorted(selector.items())) or "any node"
    detail = "no node matches" if not eligible else f"{eligible} matching node(s), none Ready and schedulable"
    return Verdict(
        "stalled",
        "NoEligibleNodes",
        f"runtime {runtime.name!r} (RuntimeClass {runtime.runtime_class_name}) cannot place pods: {detail} for {shown}",
    )


async def _apply_children(ctx: Context, app: WasmApp, children: Children) -> dict[str, Any]:
    """Apply what should exist, remove what should not; returns the Deployment as stored."""
    name = child_name(app.name)
    key: Key = (app.namespace, name)
    deployment = await ctx.children.ensure(children.deployment, ctx.store.deployments, app.uid)
    if children.service is not None:
        await ctx.children.ensure(children.service, ctx.store.services, app.uid)
    else:
        await ctx.children.remove(SERVICES, key, ctx.store.services, app.uid)
    if children.pods_service is not None:
        await ctx.children.ensure(children.pods_service, ctx.store.services, app.uid)
    else:
        await ctx.children.remove(SERVICES, (app.namespace, pods_service_name(app.name)), ctx.store.services, app.uid)
    if children.autoscaler is not None:
        await ctx.children.ensure(children.autoscaler, ctx.store.autoscalers, app.uid)
    else:
        await ctx.children.remove(HPAS, key, ctx.store.autoscalers, app.uid)
    return deployment


def _recorded_artifact(status: dict[str, Any]) -> ArtifactStatus | None:
    raw = status.get("artifact")
    if not raw:
        return None
    try:
        return ArtifactStatus.model_validate(raw)
    except ValidationError:
        return None


def _status_body(
    app: WasmApp,
    previous: dict[str, Any],
    verdict: Verdict,
    runtime: WasmRuntime | None,
    artifact: ArtifactStatus | None,
    deployment: dict[str, Any] | None,
    now: str,
) -> dict[str, Any]:
    name = child_name(app.name)
    status: dict[str, Any] = {
        "observedGeneration": app.generation,
        "conditions": build_conditions(verdict, app.generation, previous.get("conditions"), now),
        "selector": selector_string(app.name),
        **replica_counts(deployment),
    }
    if runtime is not None:
        status["runtime"] = runtime.name
        status["runtimeClassName"] = runtime.runtime_class_name
    if deployment is not None:
        status["deploymentName"] = name
    if app.spec.service is not None and app.spec.service.enabled:
        status["serviceName"] = name
    if app.spec.autoscaling is not None:
        status["autoscalerName"] = name
    if artifact is not None:
        status["artifact"] = artifact.model_dump(by_alias=True, exclude_none=True, mode="json")
    return status


async def _read_secret(ctx: Context, namespace: str, name: str) -> dict[str, Any] | None:
    return await ctx.client.get(SECRETS, namespace, name)


async def _decide(
    ctx: Context, app: WasmApp, previous: dict[str, Any]
) -> tuple[AppOutcome, WasmRuntime | None, ArtifactStatus | None, dict[str, Any] | None, Pin | None]:
    """Run the reconcile steps; map every expected failure to a verdict."""
    recorded = _recorded_artifact(previous)
    runtime: WasmRuntime | None = None
    pin: Pin | None = None
    existing = ctx.store.deployments.get((app.namespace, child_name(app.name)))
    try:
        pin = await pin_artifact(
            app,
            recorded,
            ctx.resolver,
            lambda ns, n: _read_secret(ctx, ns, n),
            spec_changed=previous.get("observedGeneration") != app.generation,
        )
        runtime = select_runtime(app, _runtimes(ctx), pin.artifact.kind)
        children = build_children(app, runtime, pin.artifact.pinned_image, pin.artifact.kind)
        deployment = await _apply_children(ctx, app, children)
        verdict = eligibility_verdict(app, runtime, _nodes(ctx)) or rollout_verdict(deployment)
        requeue = seconds_until_next_check(app, pin.artifact, time.time())
        sleep = await reconcile_scale_to_zero(ctx, app, children, deployment, verdict, previous)
        verdict = sleep.verdict
        if sleep.requeue_after is not None:
            requeue = min(requeue, sleep.requeue_after) if requeue is not None else sleep.requeue_after
        # "0 of 2 replicas available" says nothing; the pods' status and Events say why.
        key = (app.namespace, app.name)
        verdict, look_again = await ctx.pods.explain(ctx.client, key, app.name, deployment, verdict)
        if look_again is not None:
            requeue = min(requeue, look_again) if requeue is not None else look_again
        return AppOutcome(verdict, requeue), runtime, pin.artifact, deployment, pin
    except SpecError as exc:
        verdict = Verdict("stalled", exc.reason, exc.message)
    except RegistryError as exc:
        kept = "; the running Deployment is left as it was" if existing is not None else ""
        # An outage is waited out with retries; an answer like 404 or 401 will not change by retrying.
        state = "retrying" if exc.transient else "stalled"
        verdict = Verdict(state, exc.reason, f"{exc}{kept}")
    except KubeApiError as exc:
        if exc.transient or exc.object_going_away:
            raise
        # The API server refused a generated object: report its words, they name the field.
        verdict = Verdict("stalled", "InvalidSpec", f"the API server refused a generated object: {exc.message}")
    return AppOutcome(verdict), runtime, recorded, existing, pin


async def reconcile_app(ctx: Context, key: Key) -> AppOutcome | None:
    """One pass over one WasmApp. Returns None when the app no longer exists."""
    body = ctx.store.apps.get(key)
    if body is None or body.get("metadata", {}).get("deletionTimestamp"):
        return None
    previous: dict[str, Any] = dict(body.get("status") or {})
    log = _log.bind(namespace=key[0], name=key[1])
    try:
        app = WasmApp.model_validate(body)
    except ValidationError as exc:
        # The CRD schema should make this impossible; an older CRD than the operator could not.
        generation = int(body["metadata"].get("generation") or 0)
        verdict = Verdict("stalled", "InvalidSpec", f"spec does not match the schema: {exc.errors()[0]['msg']}")
        conditions = build_conditions(verdict, generation, previous.get("conditions"), now_rfc3339())
        await _write_status(
            ctx, body, previous, {**previous, "observedGeneration": generation, "conditions": conditions}
        )
        return AppOutcome(verdict)

    outcome, runtime, artifact, deployment, pin = await _decide(ctx, app, previous)
    if pin is not None and pin.changed_digest:
        await ctx.events.record(
            body,
            "Normal",
            "NewDigest",
            f"{app.spec.image} moved from {pin.previous_digest} to {pin.artifact.digest}; rolling out",
        )
    status = _status_body(app, previous, outcome.verdict, runtime, artifact, deployment, now_rfc3339())
    await _write_status(ctx, body, previous, status)
    ctx.metrics.observe_app_verdict(key, outcome.verdict)
    log.debug("reconciled", state=outcome.verdict.state, reason=outcome.verdict.reason)
    return outcome


async def _write_status(ctx: Context, body: dict[str, Any], previous: dict[str, Any], status: dict[str, Any]) -> None:
    """Patch status only when it changed; post an Event when the Ready condition changed meaning."""
    if without_times(status) == without_times(previous):
        return
    meta = body["metadata"]
    stored = await ctx.client.patch_status(WASMAPPS, meta.get("namespace"), meta["name"], status)
    ctx.store.apps.upsert(stored)
    ctx.metrics.status_writes.inc()
    event = transition_event(previous.get("conditions"), status["conditions"])
    if event is not None:
        await ctx.events.record(stored, *event)
