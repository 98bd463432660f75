"""Percentiles and latency summaries (nearest-rank, so p99 is a latency that really happened)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any


def percentile(values: Sequence[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latencies(start: Mapping[str, float], end: Mapping[str, float]) -> list[float]:
    """end - start in seconds, for every name present in both."""
    return [end[name] - start[name] for name in start if name in end]


def latency_summary(values: Sequence[float]) -> dict[str, float | int | None]:
    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 1)

    return {
        "count": len(values),
        "p50_ms": ms(percentile(values, 50)),
        "p90_ms": ms(percentile(values, 90)),
        "p99_ms": ms(percentile(values, 99)),
        "max_ms": ms(max(values) if values else None),
    }


def ratio(a: Any, b: Any) -> float | None:
    """a / b to two places, or None when either is missing or zero (a row that did not measure it)."""
    return round(a / b, 2) if a and b else None
