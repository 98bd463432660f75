"""A fresh wasmkube operator for one measurement: started, warmed up, observed, stopped.

"Fresh" matters: a warm operator already holds every object in its caches and its registry
cache, so each size gets a new process, started as the chart's ServiceAccount and given time to
list and reconcile the WasmRuntimes before the first WasmApp is created.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from e2e.support.cluster import REGISTRY
from e2e.support.operator import OperatorProcess

from .identity import Identity


def parse_metrics(text: str) -> dict[str, float]:
    """The operator's counters the benchmark reads, summed over labels that do not matter here."""
    out = {"reconciles_app": 0.0, "reconciles_runtime": 0.0, "reconcile_errors": 0.0, "status_writes": 0.0,
           "queue_depth": 0.0}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "wasmkube_reconciles_total":
                out[f"reconciles_{sample.labels.get('kind')}"] = out.get(
                    f"reconciles_{sample.labels.get('kind')}", 0.0) + sample.value
                if sample.labels.get("result") == "error":
                    out["reconcile_errors"] += sample.value
            elif sample.name == "wasmkube_status_writes_total":
                out["status_writes"] += sample.value
            elif sample.name == "wasmkube_queue_depth":
                out["queue_depth"] = sample.value
    return out


class OperatorRun:
    """`wasmkube run` as `identity`: watching one namespace, or cluster-wide like a default install.

    One namespace is the default because the cluster is shared: cluster-wide, the operator would
    also reconcile other people's leftover WasmApps, and their writes would land in our counts."""

    def __init__(self, identity: Identity, log_path: Path, resync_seconds: float, namespace: str | None,
                 extra_args: tuple[str, ...] = ()) -> None:
        args = ["--insecure-registry", REGISTRY, *extra_args]
        if namespace:
            args += ["--namespace", namespace]
        if resync_seconds:
            args += ["--resync-seconds", f"{resync_seconds:g}"]
        self.process = OperatorProcess(identity.kubeconfig, log_path, extra_args=args)

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    async def start(self, runtimes: int) -> float:
        """Start and wait until the runtimes are reconciled and the queue is empty; seconds taken."""
        started = time.monotonic()
        await asyncio.to_thread(self.process.start)
        deadline = started + 90
        while time.monotonic() < deadline:
            metrics = await self.metrics()
            if metrics["reconciles_runtime"] >= runtimes and metrics["queue_depth"] == 0:
                await asyncio.sleep(1.0)  # node and child watches may still be delivering their lists
                return time.monotonic() - started
            await asyncio.sleep(0.3)
        raise RuntimeError(f"operator did not reconcile the WasmRuntimes within 90s; log: {self.process.log_tail()}")

    async def metrics(self) -> dict[str, float]:
        return parse_metrics(await asyncio.to_thread(self.process.metrics))

    async def stop(self) -> int | None:
        return await asyncio.to_thread(self.process.stop)
