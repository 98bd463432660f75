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
from typing import Any

import structlog
from pydantic import ValidationError

from wasmkube.api.wasmapp import ArtifactStatus, WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.identity import child_name, selector_string
from wasmkube.builders.runtime_choice import select_runtime
from wasmkube.builders.scaletozero import pods_service_name
from wasmkube.builders.scheduling import NodeInfo, count_nodes, merge_node_selectors, merge_tolerations
from wasmkube.builders.workload import Children, build_children
from wasmkube.clients.kube import HPAS, SECRETS, SERVICES, WASMAPPS, Key, KubeApiError
from wasmkube.controller.artifacts import Pin, pin_artifact, seconds_until_next_check
from wasmkube.controller.context import Context
from wasmkube.controller.result import Event, Result, write_status
from wasmkube.controller.scaletozero import reconcile_scale_to_zero
from wasmkube.errors import SpecError
from wasmkube.registry.errors import RegistryError
from wasmkube.status.conditions import STALLED, Verdict, build_conditions
from wasmkube.status.rollout import replica_counts, rollout_verdict
from wasmkube.timestamps import now_rfc3339

_log = structlog.get_logger(__name__)


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


def runtime_verdict(runtime: WasmRuntime) -> Verdict | None:
    """`RuntimeStalled` when the app's runtime reports, for its current spec, that it is stuck.

    A stalled runtime does not own a usable RuntimeClass (its name is taken by someone else's,
    or the API server refused it), and the RuntimeClass admission plugin copies the class's
    scheduling into each pod when the pod is created. Pods made now would keep a foreign
    class's node selector for good, so nothing is applied until the runtime is fixed, and the
    app names the runtime as the cause instead of showing pods the scheduler cannot place.
    `NoEligibleNodes` is left out: the app judges placement with its own selector and
    tolerations (`eligibility_verdict`).
    """
    status = runtime.status
    if status is None or status.observed_generation != runtime.generation:
        return None  # not yet reconciled for this spec; the runtime's next status brings us back
    stalled = next((c for c in status.conditions or [] if c.type == STALLED and c.status == "True"), None)
    if stalled is None or stalled.reason == "NoEligibleNodes":
        return None
    return Verdict(
        "stalled",
        "RuntimeStalled",
        f"WasmRuntime {runtime.name!r} is Stalled ({stalled.reason}): {stalled.message}",
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


def _sooner(first: float | None, second: float | None) -> float | None:
    """The earlier of two "look again in" delays; None means no need."""
    if first is None or second is None:
        return first if second is None else second
    return min(first, second)


def _rollout_events(app: WasmApp, pin: Pin) -> tuple[Event, ...]:
    """The NewDigest Event of a pin that moved. Only a pass that applied the new digest returns
    it, together with the status that records the digest."""
    if not pin.changed_digest:
        return ()
    message = f"{app.spec.image} moved from {pin.previous_digest} to {pin.artifact.digest}; rolling out"
    return (("Normal", "NewDigest", message),)


async def _decide(ctx: Context, app: WasmApp, previous: dict[str, Any]) -> Result:
    """Run the reconcile steps; map every expected failure to a verdict."""
    recorded = _recorded_artifact(previous)
    runtime: WasmRuntime | None = None
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
        held = runtime_verdict(runtime)
        if held is not None:
            # What runs is left as it was. An unchanged app that serves stays Ready (its
            # runtime's status says the rest); a new or changed one waits, naming the cause.
            serving = rollout_verdict(existing)
            unchanged = previous.get("observedGeneration") == app.generation
            verdict = serving if unchanged and serving.ready else held
            status = _status_body(app, previous, verdict, runtime, recorded, existing, now_rfc3339())
            return Result(verdict, status)
        children = build_children(app, runtime, pin.artifact.pinned_image, pin.artifact.kind)
        deployment = await _apply_children(ctx, app, children)
        verdict = eligibility_verdict(app, runtime, _nodes(ctx)) or rollout_verdict(deployment)
        requeue = seconds_until_next_check(app, pin.artifact, time.time())
        sleep = await reconcile_scale_to_zero(ctx, app, children, deployment, verdict, previous)
        verdict, requeue = sleep.verdict, _sooner(requeue, sleep.requeue_after)
        # "0 of 2 replicas available" says nothing; the pods' status and Events say why.
        key = (app.namespace, app.name)
        verdict, look_again = await ctx.pods.explain(ctx.client, key, app.name, deployment, verdict)
        status = _status_body(app, previous, verdict, runtime, pin.artifact, deployment, now_rfc3339())
        return Result(verdict, status, _sooner(requeue, look_again), events=_rollout_events(app, pin))
    except SpecError as exc:
        verdict, retry = Verdict("stalled", exc.reason, exc.message), False
    except RegistryError as exc:
        kept = "; the running Deployment is left as it was" if existing is not None else ""
        # An outage is waited out with retries; an answer like 404 or 401 will not change by retrying.
        retry = exc.transient
        verdict = Verdict("retrying" if retry else "stalled", exc.reason, f"{exc}{kept}")
    except KubeApiError as exc:
        if exc.transient or exc.object_going_away:
            raise
        # The API server refused a generated object: report its words, they name the field.
        verdict = Verdict("stalled", "InvalidSpec", f"the API server refused a generated object: {exc.message}")
        retry = False
    # A step failed: status keeps the artifact and the Deployment as they were before it.
    status = _status_body(app, previous, verdict, runtime, recorded, existing, now_rfc3339())
    return Result(verdict, status, retry=retry)


async def reconcile_app(ctx: Context, key: Key) -> Result | None:
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
        invalid = Result(verdict, {**previous, "observedGeneration": generation, "conditions": conditions})
        await write_status(ctx, WASMAPPS, ctx.store.apps, body, invalid)
        return invalid

    result = await _decide(ctx, app, previous)
    await write_status(ctx, WASMAPPS, ctx.store.apps, body, result)
    ctx.metrics.observe_app_verdict(key, result.verdict)
    log.debug("reconciled", state=result.verdict.state, reason=result.verdict.reason)
    return result
