"""Row i: HTTP serving, one Wasm pod against one container pod doing the same work.

One pod of each kind (e2e/bench/nodepods.py) runs on the real node; each is loaded alone, the
others idle, from the same generator (wrk on this machine) over the same path (pod IP on the
bridge). Per pod: a 2 s warm-up, then `wrk -t2 -c16 -d10s --latency` on `/`, then one
connection for 5 s. At concurrency 1 the latency is one request's whole cost; the shim makes a
fresh component instance per request, so the Wasm pod's p50 there minus the native twin's is the
per-request instantiation (plus the hyper/wasi-http host path) cost. The shim's own request
counter (WASMKUBE_METRICS_ADDR) is read before and after, so the row can say every request wrk
counted went through the component. CPU seconds of the pod (its cgroup plus its shim) during the
main run give CPU per 1,000 requests: wrk and the pods share the two cores, so requests/s alone
also measures how much CPU was left for the server.

Then the same servers run as host processes on loopback (e2e/bench/loopback.py), beside upstream
`wasmtime serve` on the same component: what the runtime costs without the pod around it, and how
this project's shim compares with the reference implementation.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from e2e.support.traffic import request

from . import loopback, podproc, wrk
from .nodepods import KINDS, LABELS, METRICS_PORT, PORT, NodeSession, PodWatch, create_pod, http_pod, make_namespace
from .report import Row
from .shared import delete_namespace, say
from .stats import ratio

WARMUP_SECONDS = 2.0
SINGLE_SECONDS = 5.0


def shim_requests(ip: str) -> int | None:
    """The shim's count of requests served (WASMKUBE_METRICS_ADDR), or None when it has none."""
    answer = request(ip, METRICS_PORT, "/metrics", timeout=2)
    if answer.status != 200:
        return None
    match = re.search(r"^wasmkube_http_requests_total (\d+)", answer.body, re.MULTILINE)
    return int(match.group(1)) if match else None


def _load(ip: str, uid: str, kind: str, threads: int, connections: int, seconds: float) -> dict[str, Any]:
    """Warm-up, main run (with CPU and shim counters around it), then concurrency 1."""
    wrk.run(ip, PORT, "/", threads, connections, WARMUP_SECONDS, latency=False)
    counted_before = shim_requests(ip) if kind != "native" else None
    cpu_before = podproc.pod_cpu_seconds(uid)
    main = wrk.run(ip, PORT, "/", threads, connections, seconds)
    cpu = podproc.pod_cpu_seconds(uid) - cpu_before
    counted_after = shim_requests(ip) if kind != "native" else None
    single = wrk.run(ip, PORT, "/", 1, 1, SINGLE_SECONDS)
    out: dict[str, Any] = {"main": main, "concurrency_1": single, "cpu_seconds": round(cpu, 2)}
    if main.get("requests"):
        out["cpu_ms_per_1000_requests"] = round(1000 * 1000 * cpu / main["requests"], 1)
    if counted_before is not None and counted_after is not None:
        out["shim_counted"] = counted_after - counted_before
    return out


def with_ratios(results: dict[str, Any]) -> dict[str, Any]:
    """Each non-native result gets `vs_native` (req/s, p99, CPU per request against the native
    result of the same run) and `per_request_overhead_ms` (its c=1 p50 minus native's)."""
    native = results.get("native") or {}
    base = native.get("main") or {}
    n1 = (native.get("concurrency_1") or {}).get("p50_ms")
    for kind, mine in results.items():
        if kind == "native":
            continue
        mine["vs_native"] = {
            "requests_per_second": ratio(mine["main"].get("requests_per_second"), base.get("requests_per_second")),
            "p50": ratio(mine["main"].get("p50_ms"), base.get("p50_ms")),
            "p99": ratio(mine["main"].get("p99_ms"), base.get("p99_ms")),
            "cpu_per_request": ratio(mine.get("cpu_ms_per_1000_requests"), native.get("cpu_ms_per_1000_requests")),
        }
        c1 = mine["concurrency_1"].get("p50_ms")
        mine["per_request_overhead_ms"] = round(c1 - n1, 3) if c1 is not None and n1 is not None else None
    return results


async def measure(ctx: Any, session: NodeSession) -> Row:
    config = ctx.config
    row = Row("i", "serving: Wasm pod vs container pod", 1)
    problem = await session.open() or wrk.available()
    if problem:
        row.status, row.note = "skipped", problem
        row.metrics["summary"] = "skipped: " + problem
        return row
    namespace = ctx.namespace("serving", 1)
    await make_namespace(ctx, namespace)
    watch = PodWatch(ctx.admin, namespace)
    try:
        await watch.start()
        names = {kind: f"serve-{kind}" for kind in KINDS}
        for kind, name in names.items():
            await create_pod(ctx.admin, namespace, http_pod(name, kind, session.images[kind], metrics=True))
        if not await watch.wait_for(names.values(), within=180):
            missing = [n for n in names.values() if n not in watch.seen]
            raise RuntimeError(f"pods not Ready within 180s: {missing}")
        results: dict[str, Any] = {}
        for kind in ("native", "wasm-c", "wasm-python"):
            name = names[kind]
            say(f"serving: wrk against {LABELS[kind]} at {watch.ips[name]}")
            results[kind] = await asyncio.to_thread(_load, watch.ips[name], watch.uids[name], kind, 2,
                                                    config.wrk_connections, config.wrk_seconds)
            await asyncio.sleep(1.0)
        native = with_ratios(results)["native"]
        summary = []
        for kind in ("wasm-c", "wasm-python"):
            mine = results[kind]
            c1 = mine["concurrency_1"].get("p50_ms")
            counted = mine.get("shim_counted")
            if counted is not None and counted < mine["main"].get("requests", 0):
                row.note += f"{kind}: the shim counted {counted} requests, wrk {mine['main']['requests']}. "
            summary.append(f"{kind} {mine['main'].get('requests_per_second')}/s "
                           f"({mine['vs_native']['requests_per_second']}x native), p50/p99 "
                           f"{mine['main'].get('p50_ms')}/{mine['main'].get('p99_ms')} ms; c=1 p50 {c1} ms "
                           f"(+{mine['per_request_overhead_ms']} ms)")
        for kind, res in results.items():
            if res["main"].get("errors"):
                row.status = "partial"
                row.note += f"{kind}: {res['main']['errors']} errors under load. "
        row.metrics.update({"targets": results, "threads": 2, "connections": config.wrk_connections,
                            "seconds": config.wrk_seconds, "warmup_seconds": WARMUP_SECONDS,
                            "generator": "wrk (Debian) on the same 2 cores as the pods"})
        row.metrics["summary"] = (f"native {native['main'].get('requests_per_second')}/s, p50/p99 "
                                  f"{native['main'].get('p50_ms')}/{native['main'].get('p99_ms')} ms, c=1 p50 "
                                  f"{native['concurrency_1'].get('p50_ms')} ms; " + "; ".join(summary))
        say("serving: the same servers as host processes on loopback (native, shim --serve, wasmtime serve)")
        try:
            row.metrics["loopback"] = with_ratios(await asyncio.to_thread(
                loopback.measure, config.wrk_connections, config.wrk_seconds, WARMUP_SECONDS, SINGLE_SECONDS))
        except Exception as exc:  # the pod figures stand without it
            row.note += f"loopback part failed: {type(exc).__name__}: {str(exc)[:300]}. "
    except Exception as exc:
        row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
        row.metrics["summary"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        await watch.stop()
        started = time.monotonic()
        await delete_namespace(ctx.admin, namespace, within=180)
        row.metrics["namespace_delete_seconds"] = round(time.monotonic() - started, 1)
    return row
