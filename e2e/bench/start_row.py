"""Row j: how fast a pod starts serving, Wasm against container, first start and cached.

One pod at a time on the real node (nothing else of ours starting beside it), in turn: the C
greeter, the native twin and the Python component, each first with a digest the node has never
seen (nodepods.py: a component with a salted custom section must be pulled and compiled; a
container image with a salted layer must be pulled and unpacked), then again with the same
digest (compiled module / unpacked layer cached). Per pod:

* create -> Ready (the readiness probe on /healthz passed, seen by a watch);
* create -> first response (this process polling GET / on the pod IP from the moment the IP
  shows in the pod's status: what a client could get, probes aside);
* the kubelet's own breakdown for that pod, from the deltas of its /metrics histograms read
  through the apiserver before and after: `kubelet_pod_start_sli_duration_seconds` (the SLI,
  image pulls excluded), `kubelet_pod_start_duration_seconds`, `kubelet_run_podsandbox_duration_
  seconds` by runtime handler, and the runtime operations (pull_image, create_container,
  start_container);
* the pod status timestamps (one-second resolution, kept for the record).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from .nodepods import (
    LABELS,
    NodeSession,
    PodWatch,
    create_pod,
    delete_pods,
    first_response,
    histogram_delta,
    http_pod,
    kubelet_histograms,
    make_namespace,
    pod_timestamps,
    push_kind,
    stuck_reason,
)
from .report import Row
from .shared import delete_namespace, say
from .stats import latency_summary

ORDER = ("wasm-c", "native", "wasm-python")
SAMPLES = 3
READY_WITHIN = 180.0


async def one_pod(ctx: Any, session: NodeSession, watch: PodWatch, namespace: str, name: str, kind: str,
                  image: str) -> dict[str, Any]:
    before = await kubelet_histograms(ctx.admin, session.node)
    created = await create_pod(ctx.admin, namespace, http_pod(name, kind, image))
    ip = await watch.ip_of(name, within=READY_WITHIN)
    answered = None
    if ip:
        answered = await asyncio.to_thread(first_response, ip, created + READY_WITHIN)
    ready = await watch.wait_for([name], within=max(1.0, created + READY_WITHIN - time.monotonic()))
    await asyncio.sleep(0.5)  # the kubelet records pod start after its status update
    after = await kubelet_histograms(ctx.admin, session.node)
    obj = watch.objects.get(name) or {}
    result: dict[str, Any] = {
        "create_to_ready_ms": round(1000 * (watch.seen[name] - created), 1) if ready else None,
        "create_to_first_response_ms": round(1000 * (answered - created), 1) if answered else None,
        "kubelet": histogram_delta(before, after),
        "timestamps": pod_timestamps(obj),
    }
    if not ready or answered is None:
        result["problem"] = stuck_reason(obj) or "not Ready / no answer within the limit"
    await delete_pods(ctx.admin, namespace, [name])
    return result


def _summary(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "samples": len(samples),
        "create_to_ready": latency_summary([s["create_to_ready_ms"] / 1000 for s in samples
                                            if s["create_to_ready_ms"] is not None]),
        "create_to_first_response": latency_summary([s["create_to_first_response_ms"] / 1000 for s in samples
                                                     if s["create_to_first_response_ms"] is not None]),
    }
    keys = sorted({k for s in samples for k in s["kubelet"]})
    out["kubelet_mean_ms"] = {k: round(sum(s["kubelet"][k] for s in samples if k in s["kubelet"])
                                       / max(1, sum(1 for s in samples if k in s["kubelet"])), 1) for k in keys}
    problems = [s["problem"] for s in samples if s.get("problem")]
    if problems:
        out["problems"] = problems[:3]
    return out


async def measure(ctx: Any, session: NodeSession, samples: int = SAMPLES) -> Row:
    row = Row("j", "start: Wasm pod vs container pod", samples)
    problem = await session.open()
    if problem:
        row.status, row.note = "skipped", problem
        row.metrics["summary"] = "skipped: " + problem
        return row
    namespace = ctx.namespace("start", samples)
    await make_namespace(ctx, namespace)
    watch = PodWatch(ctx.admin, namespace)
    raw: dict[str, list[dict[str, Any]]] = {f"{k}-{s}": [] for k in ORDER for s in ("first", "cached")}
    try:
        await watch.start()
        for i in range(samples):
            for kind in ORDER:
                salt = f"{ctx.run_id}-{i}-{uuid.uuid4().hex[:6]}"
                image = await asyncio.to_thread(push_kind, kind, salt)
                for state in ("first", "cached"):
                    name = f"{kind}-{state}-{i}"
                    say(f"start: {LABELS[kind]} ({state} start) {i + 1}/{samples}")
                    raw[f"{kind}-{state}"].append(await one_pod(ctx, session, watch, namespace, name, kind, image))
        results = {key: _summary(values) for key, values in raw.items()}
        row.metrics.update({"kinds": results, "raw": raw})
        parts = []
        for key, res in results.items():
            ready, first = res["create_to_ready"]["p50_ms"], res["create_to_first_response"]["p50_ms"]
            sli = res["kubelet_mean_ms"].get("pod_start_sli_ms")
            parts.append(f"{key} ready {ready} / first answer {first} ms (kubelet SLI {sli})")
            if res.get("problems"):
                row.status = "partial"
                row.note += f"{key}: {res['problems'][0]}. "
        row.metrics["summary"] = f"p50 of {samples}: " + "; ".join(parts)
    except Exception as exc:
        row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
        row.metrics["summary"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        await watch.stop()
        await delete_namespace(ctx.admin, namespace, within=180)
    return row
