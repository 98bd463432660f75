"""Reconcile one WasmRuntime: keep its RuntimeClass in sync and count the nodes that can run it."""

from __future__ import annotations

from typing import Any

import structlog
from pydantic import ValidationError

from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.runtimeclass import build_runtime_class
from wasmkube.builders.scheduling import NodeInfo, count_nodes
from wasmkube.clients.kube import RUNTIMECLASSES, WASMRUNTIMES, Key, KubeApiError
from wasmkube.controller.children import controlled_by
from wasmkube.controller.context import Context
from wasmkube.controller.result import Result, write_status
from wasmkube.errors import SpecError
from wasmkube.status.conditions import Verdict, build_conditions
from wasmkube.timestamps import now_rfc3339

_log = structlog.get_logger(__name__)


async def _sync_runtime_class(ctx: Context, runtime: WasmRuntime) -> None:
    """Apply the RuntimeClass; replace it when its (immutable) handler changed; drop old names."""
    desired = build_runtime_class(runtime)
    key: Key = ("", runtime.runtime_class_name)
    observed = ctx.store.runtime_classes.get(key)
    if observed is not None and controlled_by(observed, runtime.uid) and observed.get("handler") != desired["handler"]:
        # RuntimeClass.handler is immutable: the only way to change it is a new object.
        await ctx.children.remove(RUNTIMECLASSES, key, ctx.store.runtime_classes, runtime.uid)
    await ctx.children.ensure(desired, ctx.store.runtime_classes, runtime.uid)
    for other in ctx.store.runtime_classes.values():
        other_key: Key = ("", other["metadata"]["name"])
        if other_key != key and controlled_by(other, runtime.uid):
            await ctx.children.remove(RUNTIMECLASSES, other_key, ctx.store.runtime_classes, runtime.uid)


def runtime_verdict(runtime: WasmRuntime, eligible: int, ready: int) -> Verdict:
    if ready:
        return Verdict("ready", "NodesReady", f"{ready} of {eligible} matching node(s) Ready")
    selector = ", ".join(f"{k}={v}" for k, v in sorted((runtime.spec.node_selector or {}).items())) or "any node"
    if eligible:
        return Verdict("stalled", "NoEligibleNodes", f"{eligible} node(s) match {selector}, none is Ready")
    return Verdict("stalled", "NoEligibleNodes", f"no node matches {selector}: install the shim and label nodes")


async def _decide(ctx: Context, body: dict[str, Any], previous: dict[str, Any]) -> Result:
    """Sync the RuntimeClass and count nodes; map every expected failure to a verdict."""
    generation = int(body["metadata"].get("generation") or 0)
    eligible = ready = 0
    try:
        runtime = WasmRuntime.model_validate(body)
        await _sync_runtime_class(ctx, runtime)
        nodes = [NodeInfo.from_node(n) for n in ctx.store.nodes.values()]
        eligible, ready = count_nodes(nodes, runtime.spec.node_selector or {}, runtime.spec.tolerations or [])
        verdict = runtime_verdict(runtime, eligible, ready)
        class_name: str | None = runtime.runtime_class_name
    except ValidationError as exc:
        verdict, class_name = Verdict("stalled", "InvalidSpec", str(exc.errors()[0]["msg"])), None
    except SpecError as exc:
        verdict, class_name = Verdict("stalled", exc.reason, exc.message), None
    except KubeApiError as exc:
        if exc.transient:
            raise
        verdict, class_name = (
            Verdict("stalled", "InvalidSpec", f"the API server refused the RuntimeClass: {exc.message}"),
            None,
        )

    status: dict[str, Any] = {
        "observedGeneration": generation,
        "conditions": build_conditions(verdict, generation, previous.get("conditions"), now_rfc3339()),
        "eligibleNodes": eligible,
        "readyNodes": ready,
    }
    if class_name:
        status["runtimeClassName"] = class_name
    return Result(verdict, status)


async def reconcile_runtime(ctx: Context, key: Key) -> Result | None:
    """One pass over one WasmRuntime. Returns None when the runtime no longer exists."""
    body = ctx.store.runtimes.get(key)
    if body is None or body.get("metadata", {}).get("deletionTimestamp"):
        return None
    previous: dict[str, Any] = dict(body.get("status") or {})
    result = await _decide(ctx, body, previous)
    await write_status(ctx, WASMRUNTIMES, ctx.store.runtimes, body, result)
    _log.debug("runtime reconciled", name=key[1], state=result.verdict.state, ready_nodes=result.status["readyNodes"])
    return result
