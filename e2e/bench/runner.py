"""The order of the benchmark, and the bookkeeping around it.

For each size: wasmkube (rows a, c, d), then the direct-client floor (b), then spin-operator (f),
each in its own namespace, each phase under the shared cluster lock, each namespace deleted (and
waited for) before the next phase, so no phase pays for the previous one's garbage collection.
The real-node row (e) comes last. Whatever the benchmark created is removed at the end, and
auditing is switched back off if it was off when the run began.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import AsyncIterator
from typing import Any

from e2e.support.cluster import Cluster

from . import floor_row, peer_row, realnode_row, wasmkube_row
from .config import BenchConfig
from .context import BenchContext, cleanup, prepare
from .identity import Identity, remove, remove_system_namespace, wasmkube_identity
from .kubeapi import KubeApi
from .machine import describe
from .peer import VERSION as PEER_VERSION
from .report import Row, render, write_json
from .shared import audit_active, cluster_lock, say, set_audit, wait_api_ready

ALWAYS_RUN = 1000  # sizes up to this always run; larger ones must fit BENCH_SIZE_BUDGET_SECONDS
ROW_NAMES = {"a": "wasmkube", "b": "direct client (floor)", "c": "wasmkube API requests", "d": "registry requests"}


_SUFFIX = {"k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}


def _quantity(value: str) -> int:
    """A count-like Kubernetes quantity ("110", "1k") as an integer."""
    for suffix in sorted(_SUFFIX, key=len, reverse=True):
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * _SUFFIX[suffix])
    return int(float(value))


async def _free_pod_capacity(admin: KubeApi) -> int:
    """Pods the wasmtime runtime's nodes can still take (nodes with the label and no NoSchedule taint)."""
    nodes = (await admin.call("GET", "/api/v1/nodes", params={"labelSelector": "wasmkube.dev/shim-wasmtime=ready"}))[0]
    eligible = {n["metadata"]["name"]: _quantity(n["status"].get("allocatable", {}).get("pods", "0"))
                for n in nodes.get("items") or []
                if not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])}
    pods = (await admin.call("GET", "/api/v1/pods", params={"fieldSelector": "status.phase!=Succeeded"}))[0]
    used = sum(1 for p in pods.get("items") or [] if p.get("spec", {}).get("nodeName") in eligible)
    return sum(eligible.values()) - used


def _skip_size(n: int, why: str, peer: bool, floor: bool) -> list[Row]:
    keys = ["a", "c", "d"] + (["b"] if floor else []) + (["f"] if peer else [])
    rows = []
    for key in keys:
        row = Row(key, ROW_NAMES.get(key, "spin-operator"), n, status="skipped", note=why)
        if key in ("c", "d"):
            row.metrics["summary"] = "skipped: " + why
        rows.append(row)
    return rows


def _ratios(rows: list[Row]) -> None:
    """Time to all Deployments as a multiple of the floor's, per size."""
    floors = {r.n: r.get("all_deployments_seconds") for r in rows if r.key == "b"}
    for row in rows:
        floor = floors.get(row.n)
        mine = row.get("all_deployments_seconds")
        if row.key in ("a", "f") and floor and mine:
            row.metrics["ratio_to_floor"] = round(mine / floor, 2)


class Benchmark:
    def __init__(self, config: BenchConfig) -> None:
        self.config = config
        self.cluster = Cluster.local()
        self.admin = KubeApi.from_kubeconfig(self.cluster.kubeconfig, concurrency=config.concurrency)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
        self.ctx = BenchContext(config, self.cluster, self.admin, config.output_dir / f"run-{stamp}")
        self.ctx.workdir.mkdir(parents=True, exist_ok=True)
        self.rows: list[Row] = []
        self.identity: Identity | None = None
        self.peer: peer_row.PeerSetup | None = None
        self.locked_seconds = 0.0  # time spent inside the phases of the current size

    async def run(self) -> dict[str, Any]:
        started = datetime.datetime.now(datetime.UTC)
        audit_was_on = audit_active()
        version = await self.admin.get("/version")
        machine = await asyncio.to_thread(describe, (version or {}).get("gitVersion"))
        if self.config.peer:
            self.peer = peer_row.PeerSetup(self.ctx)
            await asyncio.to_thread(self.peer.build)  # minutes the first time; needs no cluster
            machine["versions"]["spin_operator"] = f"{PEER_VERSION} ({self.peer.problem or 'built'})"
        try:
            async with cluster_lock(self.config.lock_file, "setup"):
                await wait_api_ready(self.admin)
                await asyncio.to_thread(prepare, self.ctx)
                self.identity = await asyncio.to_thread(wasmkube_identity, self.cluster, self.ctx.workdir)
                if self.peer is not None:
                    await asyncio.to_thread(self.peer.install)
            await self._sizes()
            k = self.config.real_node_apps
            module, why = await asyncio.to_thread(realnode_row.prepare, self.config)
            if module is None:
                self.rows.append(realnode_row.skipped(k, str(why)))
            else:
                async with cluster_lock(self.config.lock_file, "real node"):
                    self.rows.append(await realnode_row.measure(self.ctx, self.identity, module, k))
        finally:
            async with cluster_lock(self.config.lock_file, "cleanup"):
                await asyncio.to_thread(self._cleanup, audit_was_on)
            await self.admin.close()
        _ratios(self.rows)
        return {"started_at": started.isoformat(), "finished_at": datetime.datetime.now(datetime.UTC).isoformat(),
                "machine": machine, "config": self.config.as_dict(),
                "rows": [r.__dict__ for r in self.rows], "profile": self.ctx.profile,
                "workdir": str(self.ctx.workdir)}

    async def _sizes(self) -> None:
        assert self.identity is not None
        previous: tuple[int, float] | None = None
        idle = self.config.idle_seconds + self.config.settle_seconds
        profile_size = max(self.config.sizes) if self.config.profile else None
        for n in self.config.sizes:
            if previous is not None and n > ALWAYS_RUN:
                # Scale the largest size run so far linearly (all but the fixed idle window).
                predicted = (previous[1] - idle) * n / previous[0] + idle
                if predicted > self.config.size_budget_seconds:
                    budget = self.config.size_budget_seconds
                    why = (f"not run: N={previous[0]} took {previous[1]:.0f}s for all rows (lock waits excluded), "
                           f"so N={n} would take about {predicted:.0f}s > budget {budget:.0f}s "
                           "(BENCH_SIZE_BUDGET_SECONDS)")
                    say(why)
                    self.rows += _skip_size(n, why, self.config.peer, self.config.floor)
                    continue
            self.locked_seconds = 0.0
            replicas = self.config.replicas
            capacity = await _free_pod_capacity(self.admin)
            if n * replicas > capacity:
                say(f"N={n}: {n * replicas} pods would not fit the {capacity} free pod slots; using replicas=0")
                replicas = 0
            async with self._phase(f"wasmkube N={n}"):
                audit_problem = await asyncio.to_thread(set_audit, True)
                await wait_api_ready(self.admin)
                size_rows = await wasmkube_row.measure(self.ctx, self.identity, n, replicas, audit_problem,
                                                       profile=n == profile_size)
            if replicas != self.config.replicas:
                size_rows[0].note += f"replicas=0 for this size: {n} pods exceed the {capacity} free pod slots. "
            self.rows += size_rows
            if self.config.floor:
                async with self._phase(f"floor N={n}"):
                    self.rows.append(await floor_row.measure(self.ctx, n, replicas))
            if self.peer is not None:
                async with self._phase(f"spin-operator N={n}"):
                    audit_problem = await asyncio.to_thread(set_audit, True)
                    await wait_api_ready(self.admin)
                    self.rows.append(await peer_row.measure(self.ctx, self.peer, n, replicas, audit_problem))
            if previous is None or n > previous[0]:
                previous = (n, self.locked_seconds)

    @contextlib.asynccontextmanager
    async def _phase(self, name: str) -> AsyncIterator[None]:
        """One measured phase under the cluster lock; adds its duration (not the wait) to locked_seconds."""
        async with cluster_lock(self.config.lock_file, name):
            began = time.monotonic()
            try:
                yield
            finally:
                self.locked_seconds += time.monotonic() - began

    def _cleanup(self, audit_was_on: bool) -> None:
        if self.identity is not None:
            remove(self.cluster, self.identity)
        if self.peer is not None:
            self.peer.close()
        cleanup(self.ctx)
        remove_system_namespace(self.cluster)
        if not audit_was_on and audit_active():
            problem = set_audit(False)
            if problem:
                say(f"could not switch auditing off again: {problem}")


def main() -> int:
    config = BenchConfig.from_env()
    say(f"config: {config.as_dict()}")
    document = asyncio.run(Benchmark(config).run())
    path = write_json(config.output_dir, document)
    rows = [Row(**r) for r in document["rows"]]
    print(render(rows, document.get("profile")))
    print(f"\nJSON: {path}")
    failed = [r for r in rows if r.status == "failed"]
    return 1 if failed else 0
