"""Rows a, c and d for one size: N WasmApps created at once against a fresh operator.

Timeline (all on the benchmark's monotonic clock):

    operator start -> warm (runtimes reconciled) -> watches open -> N creates (concurrent)
      -> every Deployment seen by the watch -> every WasmApp Ready -> settle -> idle window

Row a times the creates, the Deployments and readiness; row c counts the operator's API requests
from the first create to the last Ready (per reconcile and per app) and its writes per minute in
the idle window; row d counts registry requests from operator start to the end of the window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import Counter
from typing import Any

from .context import RUNTIME_NAMES, BenchContext
from .create import create_all
from .identity import Identity
from .logs import LogTail, foreign_writers, tally_audit, tally_registry
from .operator_run import OperatorRun
from .procstat import loadavg, sample
from .profile import Profiler
from .report import Row
from .shared import audit_log_path, create_namespace, delete_namespace, other_operators, registry_log_path, say
from .stats import latencies, latency_summary
from .watch import FirstSeen, always, condition_true

MANAGED = "app.kubernetes.io/managed-by=wasmkube"


def wasmapp(name: str, namespace: str, image: str, replicas: int, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"image": image, "replicas": replicas, **spec}}


async def events_posted(ctx: BenchContext, namespace: str) -> int:
    """Events the operator posted in `namespace` so far. The cluster's audit policy leaves Events
    out (they are noise for everyone else), so they are counted from the API instead."""
    payload, _ = await ctx.admin.call("GET", f"/api/v1/namespaces/{namespace}/events")
    return sum(int(e.get("count") or 1) for e in payload.get("items") or []
               if "wasmkube" in (e.get("reportingComponent"), (e.get("source") or {}).get("component")))


async def not_ready_reasons(ctx: BenchContext, namespace: str) -> str:
    """Why the WasmApps that are not Ready are not, by their Ready condition's reason, with one
    message each: a run where apps never went Ready should say why in its own output."""
    payload, _ = await ctx.admin.call("GET", f"/apis/wasmkube.dev/v1alpha1/namespaces/{namespace}/wasmapps")
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for app in payload.get("items") or []:
        ready = next((c for c in (app.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
        if ready is not None and ready.get("status") == "True":
            continue
        reason = (ready or {}).get("reason") or "NoStatus"
        reasons[reason] += 1
        examples.setdefault(reason, ((ready or {}).get("message") or "")[:200])
    return "; ".join(f"{reason} x{count} ({examples[reason]!r})" for reason, count in reasons.most_common(3))


def app_names(n: int) -> list[str]:
    return [f"app-{i:05d}" for i in range(n)]


@dataclasses.dataclass
class Phase:
    """Where the audit log stood at each step, and what the process looked like."""

    audit: dict[str, int] = dataclasses.field(default_factory=dict)
    events: dict[str, int] = dataclasses.field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)


async def measure(ctx: BenchContext, identity: Identity, n: int, replicas: int, audit_problem: str | None,
                  profile: bool, idle_seconds: float) -> list[Row]:
    assert ctx.images is not None
    namespace = ctx.namespace("wasmkube", n)
    image = ctx.images.module.reference
    a = Row("a", "wasmkube", n)
    c = Row("c", "wasmkube API requests", n)
    d = Row("d", "registry requests", n)
    audit, registry = LogTail(audit_log_path()), LogTail(registry_log_path())
    phase = Phase()
    names = app_names(n)
    await create_namespace(ctx.admin, namespace)
    registry_start, registry_clock = registry.mark(), time.monotonic()
    operator = OperatorRun(identity, ctx.workdir / f"wasmkube-{n}.log", ctx.config.resync_seconds,
                           namespace if ctx.config.operator_scope == "namespace" else None, ctx.config.operator_args)
    deployments = FirstSeen(ctx.admin, f"/apis/apps/v1/namespaces/{namespace}/deployments", always, MANAGED)
    ready = FirstSeen(ctx.admin, f"/apis/wasmkube.dev/v1alpha1/namespaces/{namespace}/wasmapps",
                      condition_true("Ready"))
    profiler: Profiler | None = None
    try:
        warm = await operator.start(len(RUNTIME_NAMES))
        others = other_operators({operator.pid})
        say(f"wasmkube N={n}: operator warm after {warm:.1f}s; creating {n} WasmApps in {namespace}")
        await deployments.start()
        await ready.start()
        phase.metrics["before"] = await operator.metrics()
        cpu_before = sample(operator.pid)
        phase.audit["create"] = audit.mark()
        if profile:
            profiler = Profiler(operator.pid, ctx.workdir / f"wasmkube-{n}.pyspy.txt")
            if not profiler.start():
                a.note += f"profile not taken: {profiler.error}. "
                profiler = None
        bodies = [wasmapp(name, namespace, image, replicas) for name in names]
        created = await create_all(ctx.admin, f"/apis/wasmkube.dev/v1alpha1/namespaces/{namespace}/wasmapps",
                                   bodies, ctx.config.concurrency)
        got_all = await deployments.wait_for(created.returned, within=120 + 0.5 * n)
        all_ready = await ready.wait_for(created.returned, within=180 + 0.6 * n)
        if not all_ready:
            a.note += f"not Ready, by reason: {await not_ready_reasons(ctx, namespace)}. "
        if profiler is not None:
            ctx.profile = await asyncio.to_thread(profiler.stop)
            if ctx.profile is None:
                a.note += f"profile failed: {profiler.error}. "
            else:
                ctx.profile["n"] = n
                a.note += "py-spy was attached (sampling --nonblocking at 97 Hz) during this row. "
        proc = sample(operator.pid)
        phase.metrics["ready"] = await operator.metrics()
        await asyncio.sleep(1.0)  # let the audit backend write the last events
        phase.audit["ready"] = audit.mark()
        phase.events["ready"] = await events_posted(ctx, namespace)
        _fill_throughput(a, n, created, deployments, ready, got_all, all_ready, proc, cpu_before)
        a.metrics["operator_warmup_seconds"] = round(warm, 2)
        a.metrics["operator_args"] = list(ctx.config.operator_args)
        if ctx.config.operator_args:
            a.note += f"operator run with extra flags {' '.join(ctx.config.operator_args)}. "
        say(f"wasmkube N={n}: Deployments {a.get('all_deployments_seconds')}s, Ready {a.get('all_ready_seconds')}s")
        await _idle_window(ctx, operator, audit, phase, a, namespace, idle_seconds)
        _fill_requests(c, n, audit, phase, identity, audit_problem, idle_seconds, namespace)
        _fill_registry(d, n, registry.lines_between(registry_start), image, time.monotonic() - registry_clock)
        foreign = foreign_writers(audit.lines_between(phase.audit["create"]), namespace,
                                  {identity.username, "wasmkube-admin"}) if audit_problem is None else {}
        others += [p for p in other_operators({operator.pid}) if p not in others]
        if others:  # only a problem if it wrote in our namespace, which `foreign` below tells
            a.note += f"other wasmkube operators were running on this machine: {others}. "
        if foreign:
            a.status = c.status = "partial"
            a.note += f"other clients wrote in the benchmark namespace (another operator running?): {foreign}. "
    except Exception as exc:
        for row in (a, c, d):
            if row.status == "ok" and not row.metrics:
                row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
        a.status = "failed" if a.status == "ok" and "all_ready_seconds" not in a.metrics else a.status
        a.note += f"aborted: {type(exc).__name__}: {exc}. log: {ctx.workdir / f'wasmkube-{n}.log'}"
    finally:
        if profiler is not None and ctx.profile is None:
            await asyncio.to_thread(profiler.stop)
        await deployments.stop()
        await ready.stop()
        code = await operator.stop()
        gone = await delete_namespace(ctx.admin, namespace)
        a.metrics["namespace_delete_seconds"] = None if gone is None else round(gone, 1)
        a.metrics["operator_exit_code"] = code
        if gone is None:
            a.note += f"namespace {namespace} still terminating after 600s. "
    return [a, c, d]


def _fill_throughput(row: Row, n: int, created: Any, deployments: FirstSeen, ready: FirstSeen, got_all: bool,
                     all_ready: bool, proc: Any, cpu_before: Any) -> None:
    seen = [deployments.seen[k] for k in created.returned if k in deployments.seen]
    ready_at = [ready.seen[k] for k in created.returned if k in ready.seen]
    t_deploy = (max(seen) - created.started) if seen else None
    t_ready = (max(ready_at) - created.started) if ready_at else None
    row.metrics.update({
        "created": created.created,
        "create_seconds": round(created.seconds, 2),
        "create_retries": created.retries,
        "create_errors": created.errors[:5],
        "deployments_seen": len(seen),
        "ready_seen": len(ready_at),
        "all_deployments_seconds": round(t_deploy, 2) if got_all and t_deploy else None,
        "all_ready_seconds": round(t_ready, 2) if all_ready and t_ready else None,
        "deployments_per_second": round(n / t_deploy, 1) if got_all and t_deploy else None,
        "ready_per_second": round(n / t_ready, 1) if all_ready and t_ready else None,
        "create_to_deployment": latency_summary(latencies(created.returned, deployments.seen)),
        "create_to_ready": latency_summary(latencies(created.returned, ready.seen)),
        "process": {**proc.as_dict(), "cpu_seconds_during_load": round(proc.cpu_seconds - cpu_before.cpu_seconds, 2)},
        "watch_reconnects": deployments.reconnects + ready.reconnects,
        "loadavg_after": loadavg(),
    })
    if created.errors or not got_all or not all_ready:
        row.status = "partial"
        row.note += (f"{created.created}/{n} created, {len(seen)} Deployments, {len(ready_at)} Ready before the "
                     f"timeout. ")


async def _idle_window(ctx: BenchContext, operator: OperatorRun, audit: LogTail, phase: Phase, row: Row,
                       namespace: str, idle_seconds: float) -> None:
    """N apps idle: sample memory every 5 s, mark the audit log (and count Events) at both ends."""
    await asyncio.sleep(ctx.config.settle_seconds)
    phase.events["idle_start"] = await events_posted(ctx, namespace)
    phase.metrics["idle_start"] = await operator.metrics()
    start_cpu = sample(operator.pid)
    phase.audit["idle_start"] = audit.mark()
    started = time.monotonic()
    peak_rss = start_cpu.rss_bytes
    while time.monotonic() - started < idle_seconds:
        await asyncio.sleep(min(5.0, max(0.0, idle_seconds - (time.monotonic() - started))))
        peak_rss = max(peak_rss, sample(operator.pid).rss_bytes)
    await asyncio.sleep(1.0)
    phase.audit["idle_end"] = audit.mark()
    phase.events["idle_end"] = await events_posted(ctx, namespace)
    phase.metrics["idle_end"] = await operator.metrics()
    end = sample(operator.pid)
    row.metrics["idle"] = {
        "seconds": idle_seconds,
        "rss_mib_end": round(end.rss_bytes / 1048576, 1),
        "rss_mib_peak_sampled": round(peak_rss / 1048576, 1),
        "peak_rss_mib_process_lifetime": round(end.hwm_bytes / 1048576, 1),
        "cpu_seconds": round(end.cpu_seconds - start_cpu.cpu_seconds, 2),
        "cpu_percent": round(100 * (end.cpu_seconds - start_cpu.cpu_seconds) / max(idle_seconds, 1), 2),
        "reconciles_app": phase.metrics["idle_end"]["reconciles_app"] - phase.metrics["idle_start"]["reconciles_app"],
        "status_writes": phase.metrics["idle_end"]["status_writes"] - phase.metrics["idle_start"]["status_writes"],
    }


def _fill_requests(row: Row, n: int, audit: LogTail, phase: Phase, identity: Identity, audit_problem: str | None,
                   idle_seconds: float, namespace: str) -> None:
    if audit_problem is not None:
        row.status, row.note = "skipped", f"no audit log: {audit_problem}"
        row.metrics["summary"] = "not measured (no audit log)"
        return
    load = tally_audit(audit.lines_between(phase.audit["create"], phase.audit["ready"]), identity.username, namespace)
    idle = tally_audit(audit.lines_between(phase.audit["idle_start"], phase.audit["idle_end"]), identity.username,
                       namespace)
    reconciles = phase.metrics["ready"]["reconciles_app"] - phase.metrics["before"]["reconciles_app"]
    idle_reconciles = phase.metrics["idle_end"]["reconciles_app"] - phase.metrics["idle_start"]["reconciles_app"]
    per_reconcile = {v: round(k / reconciles, 3) for v, k in load.by_verb.items()} if reconciles else {}
    idle_events = phase.events["idle_end"] - phase.events["idle_start"]
    writes_per_minute = round((idle.writes + idle_events) / (idle_seconds / 60), 2) if idle_seconds else None
    row.metrics.update({
        "user": identity.username,
        "load": load.as_dict(),
        "load_reconciles_app": reconciles,
        "load_status_writes": phase.metrics["ready"]["status_writes"] - phase.metrics["before"]["status_writes"],
        "requests_per_reconcile": round(load.total / reconciles, 3) if reconciles else None,
        "requests_per_reconcile_by_verb": per_reconcile,
        "events_posted_during_load": phase.events["ready"],
        "requests_per_app": round(load.total / n, 3),
        "requests_per_app_by_verb": {v: round(k / n, 3) for v, k in load.by_verb.items()},
        "idle": {**idle.as_dict(), "seconds": idle_seconds, "reconciles_app": idle_reconciles,
                 "events_posted": idle_events,
                 "writes_per_minute": writes_per_minute,
                 "requests_per_minute": round(idle.total / (idle_seconds / 60), 2) if idle_seconds else None},
    })
    verbs = ", ".join(f"{v} {k}" for v, k in sorted(load.by_verb.items()))
    row.metrics["summary"] = (
        f"first create..all Ready: {load.total} audited requests ({verbs}) + {phase.events['ready']} Events "
        f"over {reconciles:g} app reconciles = "
        f"{row.metrics['requests_per_reconcile']}/reconcile, {row.metrics['requests_per_app']}/app; "
        f"idle {idle_seconds:g}s: {writes_per_minute} writes/min (Events included), {idle.total} requests, "
        f"{idle_reconciles:g} reconciles")
    if idle.writes or idle_events:
        row.note += f"writes while idle: {idle.write_resources()}, Events {idle_events}. "
    row.note += "The audit policy drops Events, so the per-reconcile numbers exclude them (counted separately). "


def _fill_registry(row: Row, n: int, lines: list[str], image: str, span: float) -> None:
    counts = tally_registry(lines)
    repo = image.split("/", 1)[1].rsplit(":", 1)[0]
    ours = counts["by_repository"].get(repo, 0)
    row.metrics.update({"image": image, "access_log": counts, "requests_for_image": ours,
                        "window_seconds": round(span)})
    kinds = ", ".join(f"{k} {v}" for k, v in counts["by_kind"].items()) or "none"
    row.metrics["summary"] = (f"{n} apps on 1 image: {counts['total']} registry HTTP requests from operator start "
                              f"to end of idle (~{span:.0f}s): {kinds}; {ours} for {repo}")
    if counts["total"] != ours:
        row.note += "requests to other repositories came from another client during the window. "
