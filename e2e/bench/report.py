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
    key: str  # the letter: a (operator), b (floor), c (API requests), d (registry), e (real node), f (peer)
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
               "x floor", "RSS MiB", "CPU s", "status"]
    body = []
    for r in rows:
        if r.key not in ("a", "b", "f"):
            continue
        body.append([r.key, r.subject, _fmt(r.n), _fmt(r.get("create_seconds")),
                     _fmt(r.get("all_deployments_seconds")), _fmt(r.get("all_ready_seconds")),
                     _fmt(r.get("deployments_per_second")), _fmt(r.get("create_to_deployment", "p50_ms")),
                     _fmt(r.get("create_to_deployment", "p99_ms")), _fmt(r.get("ratio_to_floor"), 2),
                     _fmt(r.get("process", "rss_mib")), _fmt(r.get("process", "cpu_seconds")), r.status])
    return _table(headers, body)


def requests_table(rows: Sequence[Row]) -> str:
    headers = ["row", "subject", "N", "measured", "status"]
    body = []
    for r in rows:
        if r.key not in ("c", "d", "e"):
            continue
        body.append([r.key, r.subject, _fmt(r.n), r.metrics.get("summary", "-"), r.status])
    return _table(headers, body)


def render(rows: Sequence[Row], profile: dict[str, Any] | None) -> str:
    parts = ["", "== throughput (a: wasmkube, b: direct client floor, f: spin-operator) ==", throughput_table(rows),
             "", "== requests, registry, real node ==", requests_table(rows)]
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
