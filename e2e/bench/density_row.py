"""Rows k and l: what a pod costs the node in memory, and how many of each kind it takes.

Row k starts one pod of each kind (nodepods.py), sends each 50 requests, and reads its memory
(podproc.py: the pod cgroup's processes plus the shim that parents them; PSS and RSS from
smaps_rollup; the cgroup's charge beside them).

Row l then fills the node: Wasm C greeter pods first, in steps (BENCH_DENSITY_STEPS, default
10, 50, 100 pods), each step created at once (8 creates in flight) and waited for until Ready;
after each step the pods' processes are summed once each (PSS: shared pages split, so the
total is what the node spends) and the machine's MemAvailable drop since before the first pod
is recorded beside it. Then all are deleted and the same is done with native twin pods. A kind
stops early at the memory budget (BENCH_DENSITY_BUDGET_MIB), at the node's pod capacity
(allocatable pods minus pods already there; the real node's kubelet has maxPods 150), or when a
step's pods do not all become Ready, and the row says which.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from e2e.support.traffic import request

from . import podproc
from .nodepods import LABELS, NodeSession, PodWatch, create_pod, delete_pods, http_pod, make_namespace
from .procstat import MIB
from .report import Row
from .shared import delete_namespace, quantity, say
from .stats import latency_summary

MEMORY_KINDS = ("wasm-c", "wasm-python", "native")
DENSITY_KINDS = ("wasm-c", "native")
CREATE_CONCURRENCY = 8
WARM_REQUESTS = 50


def _warm(ip: str) -> None:
    for _ in range(WARM_REQUESTS):
        request(ip, 8080, "/", timeout=2)


async def memory_row(ctx: Any, session: NodeSession) -> Row:
    row = Row("k", "memory per pod: Wasm vs container", 1)
    problem = await session.open()
    if problem:
        row.status, row.note = "skipped", problem
        row.metrics["summary"] = "skipped: " + problem
        return row
    namespace = ctx.namespace("podmem", 1)
    await make_namespace(ctx, namespace)
    watch = PodWatch(ctx.admin, namespace)
    try:
        await watch.start()
        names = {kind: f"mem-{kind}" for kind in MEMORY_KINDS}
        for kind, name in names.items():
            await create_pod(ctx.admin, namespace, http_pod(name, kind, session.images[kind]))
        if not await watch.wait_for(names.values(), within=180):
            raise RuntimeError(f"pods not Ready within 180s: {[n for n in names.values() if n not in watch.seen]}")
        for name in names.values():
            await asyncio.to_thread(_warm, watch.ips[name])
        await asyncio.sleep(2.0)
        measured = {kind: podproc.pod_memory(watch.uids[name]) for kind, name in names.items()}
        row.metrics["pods"] = {kind: m.as_dict() for kind, m in measured.items()}
        native, wasm = measured["native"].pss_bytes, measured["wasm-c"].pss_bytes
        row.metrics["summary"] = "PSS (RSS) per pod incl. its shim: " + "; ".join(
            f"{kind} {m.pss_bytes / MIB:.2f} MiB ({m.rss_bytes / MIB:.2f} MiB, "
            f"{len(m.pids)}+{len(m.shims)} processes)" for kind, m in measured.items())
        if native:
            row.metrics["wasm_c_to_native_pss"] = round(wasm / native, 2)
            row.metrics["summary"] += f"; Wasm C / native PSS {row.metrics['wasm_c_to_native_pss']}x"
        if any(not m.pids for m in measured.values()):
            row.status = "partial"
            row.note += "a pod's cgroup held no process (cgroup layout not as expected?). "
    except Exception as exc:
        row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
        row.metrics["summary"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        await watch.stop()
        await delete_namespace(ctx.admin, namespace, within=180)
    return row


async def _capacity(ctx: Any, node: str) -> int:
    """Pods the node can still take: allocatable pods minus pods bound to it and not finished."""
    obj = await ctx.admin.get(f"/api/v1/nodes/{node}") or {}
    allocatable = quantity(((obj.get("status") or {}).get("allocatable") or {}).get("pods", "0"))
    pods, _ = await ctx.admin.call("GET", "/api/v1/pods", params={"fieldSelector": f"spec.nodeName={node}"})
    used = sum(1 for p in pods.get("items") or []
               if (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed"))
    return allocatable - used


async def _fill(ctx: Any, session: NodeSession, kind: str, namespace: str) -> dict[str, Any]:
    config = ctx.config
    watch = PodWatch(ctx.admin, namespace, f"wasmkube.dev/bench-kind={kind}")
    result: dict[str, Any] = {"steps": []}
    names: list[str] = []
    baseline = podproc.mem_available_bytes()
    capacity = await _capacity(ctx, session.node)
    result["capacity_at_start"] = capacity
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)
    created: dict[str, float] = {}

    async def make(name: str) -> None:
        async with gate:
            created[name] = await create_pod(ctx.admin, namespace, http_pod(name, kind, session.images[kind]))

    try:
        await watch.start()
        for step in config.density_steps:
            if step > capacity:
                result["stopped"] = (f"step {step} exceeds the node's free pod capacity {capacity} "
                                     "(allocatable pods minus pods already on the node)")
                step = capacity
                if step <= len(names):
                    break
            batch = [f"{kind}-{i:03d}" for i in range(len(names), step)]
            say(f"density: {LABELS[kind]} pods {len(names)} -> {step}")
            started = time.monotonic()
            await asyncio.gather(*(make(n) for n in batch))
            names += batch
            all_ready = await watch.wait_for(batch, within=60 + 3 * len(batch))
            took = time.monotonic() - started
            await asyncio.sleep(2.0)
            total = podproc.total_memory(watch.uids[n] for n in names if n in watch.uids)
            drop_mib = round((baseline - podproc.mem_available_bytes()) / MIB, 1)
            ready = [n for n in names if n in watch.seen]
            result["steps"].append({
                "pods": step, "ready": len(ready), "batch_seconds": round(took, 1),
                "batch_create_to_ready": latency_summary([watch.seen[n] - created[n] for n in batch
                                                          if n in watch.seen and n in created]),
                "pss_mib": total["pss_mib"], "rss_mib": total["rss_mib"], "processes": total["processes"],
                "pss_mib_per_pod": round(total["pss_mib"] / max(1, len(ready)), 2),
                "mem_available_drop_mib": drop_mib,
                "mem_available_drop_mib_per_pod": round(drop_mib / max(1, len(ready)), 2),
            })
            if not all_ready:
                result["stopped"] = f"{len(batch) - sum(1 for n in batch if n in watch.seen)} of the step's pods " \
                                    f"not Ready within {60 + 3 * len(batch)}s"
                break
            if total["pss_mib"] > config.density_budget_mib:
                result["stopped"] = f"memory budget reached: {total['pss_mib']} MiB > {config.density_budget_mib} MiB"
                break
            if "stopped" in result:
                break
        result["max_ready"] = max((s["ready"] for s in result["steps"]), default=0)
    finally:
        await watch.stop()
        started = time.monotonic()
        gone = await delete_pods(ctx.admin, namespace, names, within=300)
        result["delete_seconds"] = round(time.monotonic() - started, 1)
        if not gone:
            result["delete_note"] = "some pods still there after 300s"
    return result


async def density_row(ctx: Any, session: NodeSession) -> Row:
    row = Row("l", "density: pods per node", max(ctx.config.density_steps))
    problem = await session.open()
    if problem:
        row.status, row.note = "skipped", problem
        row.metrics["summary"] = "skipped: " + problem
        return row
    namespace = ctx.namespace("density", max(ctx.config.density_steps))
    await make_namespace(ctx, namespace)
    try:
        kinds: dict[str, Any] = {}
        for kind in DENSITY_KINDS:
            kinds[kind] = await _fill(ctx, session, kind, namespace)
        row.metrics.update({"kinds": kinds, "budget_mib": ctx.config.density_budget_mib,
                            "steps": list(ctx.config.density_steps)})
        parts = []
        for kind, res in kinds.items():
            last = res["steps"][-1] if res["steps"] else {}
            parts.append(f"{kind}: {res['max_ready']} Ready, {last.get('pss_mib_per_pod')} MiB PSS/pod, "
                         f"MemAvailable -{last.get('mem_available_drop_mib_per_pod')} MiB/pod, last step p50/p99 "
                         f"{(last.get('batch_create_to_ready') or {}).get('p50_ms')}/"
                         f"{(last.get('batch_create_to_ready') or {}).get('p99_ms')} ms"
                         + (f" (stopped: {res['stopped']})" if res.get("stopped") else ""))
        row.metrics["summary"] = "; ".join(parts)
        target = max(ctx.config.density_steps)
        if kinds["wasm-c"]["max_ready"] < target:
            row.status = "partial"
            row.note += f"only {kinds['wasm-c']['max_ready']} of {target} Wasm pods Ready. "
    except Exception as exc:
        row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
        row.metrics["summary"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        await delete_namespace(ctx.admin, namespace, within=300)
    return row
