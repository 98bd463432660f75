"""Rows, the printed tables and the JSON file.

A row is one measurement (or the reason it could not be made). Rows are never dropped: a skipped
or failed row is printed with its reason, so a reader can tell "not measured" from "zero".
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class Row:
    # the row's letter: a (operator), b (floor), c (API requests), d (registry), e (real node), f (peer),
    # g (fair floor), h (CEL admission), i (serving), j (start), k (memory per pod), l (density)
    key: str
    subject: str
    n: int | None
    status: str = "ok"  # ok | partial | skipped | failed
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    note: str = ""

    def get(self, *path: str) -> Any:
        value: Any = self.metrics
        for part in path:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def throughput_table(rows: Sequence[Row]) -> str:
    headers = ["row", "system", "N", "create s", "all Deploy s", "all Ready s", "apps/s", "p50 ms", "p99 ms",
               "x floor", "x fair", "RSS MiB", "CPU s", "status"]
    body = []
    for r in rows:
        if r.key not in ("a", "b", "f", "g"):
            continue
        body.append([r.key, r.subject, _fmt(r.n), _fmt(r.get("create_seconds") or r.get("calls_seconds")),
                     _fmt(r.get("all_deployments_seconds")), _fmt(r.get("all_ready_seconds")),
                     _fmt(r.get("deployments_per_second")), _fmt(r.get("create_to_deployment", "p50_ms")),
                     _fmt(r.get("create_to_deployment", "p99_ms")), _fmt(r.get("ratio_to_floor"), 2),
                     _fmt(r.get("ratio_to_fair_floor"), 2),
                     _fmt(r.get("process", "rss_mib")), _fmt(r.get("process", "cpu_seconds")), r.status])
    return _table(headers, body)


def requests_table(rows: Sequence[Row]) -> str:
    headers = ["row", "subject", "N", "measured", "status"]
    body = []
    for r in rows:
        if r.key not in ("c", "d", "e", "h") and not (r.status != "ok" and r.key in DATA_PLANE):
            continue
        body.append([r.key, r.subject, _fmt(r.n), r.metrics.get("summary", "-"), r.status])
    return _table(headers, body)


DATA_PLANE = ("i", "j", "k", "l", "m", "n")


def _one(rows: Sequence[Row], key: str) -> Row | None:
    return next((r for r in rows if r.key == key and r.status in ("ok", "partial")), None)


def serving_table(rows: Sequence[Row]) -> str | None:
    row = _one(rows, "i")
    if row is None:
        return None
    headers = ["pod", "req/s", "x native", "p50 ms", "p99 ms", "c=1 p50 ms", "+ms/request", "CPU ms/1k req",
               "errors"]
    body = []
    servers = [(kind, res) for kind, res in (row.get("targets") or {}).items()]
    servers += [(f"loopback: {kind}", res) for kind, res in (row.get("loopback") or {}).items()]
    for kind, res in servers:
        main, single = res.get("main") or {}, res.get("concurrency_1") or {}
        body.append([kind, _fmt(main.get("requests_per_second")),
                     _fmt((res.get("vs_native") or {}).get("requests_per_second"), 2),
                     _fmt(main.get("p50_ms"), 2), _fmt(main.get("p99_ms"), 2), _fmt(single.get("p50_ms"), 3),
                     _fmt(res.get("per_request_overhead_ms"), 3), _fmt(res.get("cpu_ms_per_1000_requests")),
                     _fmt(main.get("errors"))])
    return _table(headers, body)


def start_table(rows: Sequence[Row]) -> str | None:
    row = _one(rows, "j")
    if row is None:
        return None
    headers = ["pod", "->Ready p50 ms", "->first answer p50 ms", "max ms", "kubelet SLI ms", "pod start ms",
               "sandbox ms", "pull ms", "create ms", "start ms"]
    body = []
    for key, res in (row.get("kinds") or {}).items():
        k = res.get("kubelet_mean_ms") or {}
        # The CRI operation's own histogram: kubelet_run_podsandbox_duration_seconds{runtime_handler}
        # reads 0 on this kubelet for every sandbox, so it is no measure of the sandbox.
        sandbox = k.get("op{run_podsandbox}_ms")
        body.append([key, _fmt(res["create_to_ready"]["p50_ms"]), _fmt(res["create_to_first_response"]["p50_ms"]),
                     _fmt(res["create_to_first_response"]["max_ms"]), _fmt(k.get("pod_start_sli_ms")),
                     _fmt(k.get("pod_start_ms")), _fmt(sandbox), _fmt(k.get("op{pull_image}_ms")),
                     _fmt(k.get("op{create_container}_ms")), _fmt(k.get("op{start_container}_ms"))])
    return _table(headers, body)


def memory_table(rows: Sequence[Row]) -> str | None:
    row, density = _one(rows, "k"), _one(rows, "l")
    if row is None and density is None:
        return None
    parts = []
    if row is not None:
        body = [[kind, _fmt(m.get("pss_mib"), 2), _fmt(m.get("rss_mib"), 2), _fmt(m.get("cgroup_mib"), 2),
                 f"{m.get('processes')} + {m.get('shim_processes')} shim"]
                for kind, m in (row.get("pods") or {}).items()]
        parts.append(_table(["pod (one, idle after 50 requests)", "PSS MiB", "RSS MiB", "cgroup MiB", "processes"],
                            body))
    if density is not None:
        body = []
        for kind, res in (density.get("kinds") or {}).items():
            for step in res.get("steps") or []:
                batch = step.get("batch_create_to_ready") or {}
                body.append([kind, _fmt(step["pods"]), _fmt(step["ready"]), _fmt(step["pss_mib"]),
                             _fmt(step["pss_mib_per_pod"], 2), _fmt(step["mem_available_drop_mib_per_pod"], 2),
                             f"{_fmt(batch.get('p50_ms'))} / {_fmt(batch.get('p99_ms'))}",
                             _fmt(step["batch_seconds"])])
        parts.append(_table(["density", "pods", "Ready", "PSS MiB all", "PSS MiB/pod", "MemAvail drop MiB/pod",
                             "step create->Ready p50 / p99 ms", "step s"], body))
    return "\n\n".join(parts)


def wake_table(rows: Sequence[Row]) -> str | None:
    wake, steady = _one(rows, "m"), _one(rows, "n")
    parts = []
    if wake is not None:
        phases = ("activator", "scale_up", "scheduling", "sandbox", "shim_start", "pod_status", "forward")
        body = []
        for key, res in (wake.get("kinds") or {}).items():
            p50 = res.get("phases_p50_ms") or {}
            body.append([key, f"{res.get('answered_200')}/{res.get('cycles')}", _fmt(res["wake"]["p50_ms"]),
                         _fmt(res["wake"]["p99_ms"]), *(_fmt(p50.get(p)) for p in phases),
                         _fmt((res.get("pod_ready") or {}).get("p50_ms"))])
        parts.append(_table(["app (wake from zero)", "200s", "p50 ms", "p99 ms", "activator", "scale-up",
                             "scheduling", "sandbox", "shim start", "pod status", "forward", "pod Ready p50 ms"],
                            body))
    if steady is not None:
        body = [[label, _fmt(res.get("requests_per_second")),
                 _fmt((res.get("vs_bare") or {}).get("requests_per_second"), 2),
                 _fmt(res.get("p50_ms"), 3), _fmt((res.get("vs_bare") or {}).get("added_p50_ms"), 3),
                 _fmt(res.get("errors"))]
                for label, res in (steady.get("targets") or {}).items()]  # fmt: skip
        parts.append(_table(["steady state (C greeter)", "req/s", "x bare", "p50 ms", "+p50 ms", "errors"], body))
    return "\n\n".join(parts) if parts else None


def targets(rows: Sequence[Row], elapsed: float | None, budget: float | None) -> list[list[str]]:
    """The issue's targets, each with what this run measured (or that it was not measured)."""
    out = []
    a = next((r for r in rows if r.key == "a" and r.n == 1000), None)
    fair = a.get("ratio_to_fair_floor") if a else None
    out.append(["operator within 1.3x of the fair floor at 1,000 apps",
                "not measured" if fair is None else f"{fair}x", "-" if fair is None else _yes(fair <= 1.3)])
    rss = a.get("process", "rss_mib") if a else None
    out.append(["operator RSS < 150 MiB with 1,000 apps", "not measured" if rss is None else f"{rss} MiB",
                "-" if rss is None else _yes(rss < 150)])
    h = _one(rows, "h")
    cel = h.get("cel_cost_ratio_worst") if h else None
    out.append(["CEL rules cost <= 1.5x at admission", "not measured" if cel is None else f"{cel}x",
                "-" if cel is None else _yes(cel <= 1.5)])
    out += serving_and_memory_targets(rows)
    density = _one(rows, "l")
    wasm = density.get("kinds", "wasm-c", "max_ready") if density else None
    out.append(["100 Wasm pods running on the one real node", "not measured" if wasm is None else f"{wasm} Ready",
                "-" if wasm is None else _yes(wasm >= 100)])
    wake = _one(rows, "m")
    p50 = wake.get("kinds", "wasm-c-cached", "wake", "p50_ms") if wake else None
    out.append(["wake from zero p50 < 1 s (C component, cached)", "not measured" if p50 is None else f"{p50} ms",
                "-" if p50 is None else _yes(p50 < 1000)])
    steady = _one(rows, "n")
    ratio = steady.get("targets", "awake app: Service -> pod", "vs_bare", "requests_per_second") if steady else None
    out.append(["scale to zero steady-state overhead < 10 %", "not measured" if ratio is None else f"{ratio}x req/s",
                "-" if ratio is None else _yes(ratio >= 0.9)])
    if elapsed is not None and budget is not None:
        out.append([f"make bench within {budget / 60:.0f} min", f"{elapsed / 60:.1f} min", _yes(elapsed <= budget)])
    return out


def _pss_per_pod(density: Row, kind: str) -> dict[int, float]:
    """PSS MiB per pod at each density step of one kind."""
    steps = density.get("kinds", kind, "steps") or []
    return {s["pods"]: s["pss_mib_per_pod"] for s in steps if s.get("pss_mib_per_pod")}


def serving_and_memory_targets(rows: Sequence[Row]) -> list[list[str]]:
    """The data plane's two comparative targets: the Wasm C pod against its native twin."""
    serving = _one(rows, "i")
    vs = serving.get("targets", "wasm-c", "vs_native") if serving else None
    if vs is None or vs.get("requests_per_second") is None or vs.get("p99") is None:
        serve = ["not measured", "-"]
    else:
        serve = [f"{vs['requests_per_second']}x req/s, p99 {vs['p99']}x",
                 _yes(vs["requests_per_second"] >= 1 and vs["p99"] <= 1)]
    density = _one(rows, "l")
    wasm, native = (_pss_per_pod(density, "wasm-c"), _pss_per_pod(density, "native")) if density else ({}, {})
    common = sorted(wasm.keys() & native.keys())  # the largest step both reached: pods share the most there
    if common:
        n = common[-1]
        share = round(wasm[n] / native[n], 2)
        memory = [f"{share}x PSS per pod at {n} pods", _yes(share <= 1 / 3)]
    else:
        memory = ["not measured", "-"]
    return [["Wasm HTTP pod >= container pod req/s, p99 no worse (C greeter)", *serve],
            ["Wasm pod memory <= 1/3 of the container pod's", *memory]]


def _yes(ok: bool) -> str:
    return "met" if ok else "NOT met"


def render(rows: Sequence[Row], profile: dict[str, Any] | None, elapsed: float | None = None,
           budget: float | None = None) -> str:
    parts = ["", "== throughput (a: wasmkube, b: direct client floor, g: fair floor, f: spin-operator) ==",
             throughput_table(rows), "", "== requests, registry, real node, CEL admission ==", requests_table(rows)]
    for title, table in (("serving (i): one pod each, wrk -t2 on the pod IP; c=1: one connection", serving_table(rows)),
                         ("start (j): one pod at a time; first = new digest, cached = same digest again",
                          start_table(rows)),
                         ("memory (k, l): pod processes + their shim, PSS from smaps_rollup", memory_table(rows)),
                         ("wake from zero (m) and steady state (n): real operator, activator, node",
                          wake_table(rows))):
        if table:
            parts += ["", f"== {title} ==", table]
    parts += ["", "== targets ==", _table(["target", "measured", ""], targets(rows, elapsed, budget))]
    notes = [f"  [{r.key} {r.subject} N={_fmt(r.n)}] {r.note}" for r in rows if r.note]
    if notes:
        parts += ["", "== notes ==", *notes]
    if profile and profile.get("top_self"):
        busy = profile["samples"] - profile.get("waiting_samples", 0)
        parts += ["", f"== operator profile (py-spy, N={profile.get('n')}: {busy} busy samples of {profile['samples']};"
                      " % of busy samples) ==",
                  _table(["self %", "total %", "function (by self time)"],
                         [[_fmt(h["self_pct"]), _fmt(h["total_pct"]), h["function"]] for h in profile["top_self"]]),
                  "", _table(["total %", "function (by inclusive time)"],
                             [[_fmt(h["total_pct"]), h["function"]] for h in profile.get("top_total") or []]),
                  "", "by package (self): " + ", ".join(f"{k} {v}%" for k, v in
                                                       (profile.get("by_package_self") or {}).items())]
    return "\n".join(parts)


def write_json(output_dir: Path, document: dict[str, Any]) -> Path:
    output_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = output_dir / f"{stamp}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return path
