"""The order of the benchmark, and the bookkeeping around it.

Order: the sizes up to 1,000 (for each: wasmkube rows a, c, d; the direct-client floor b; the
fair floor g; spin-operator f), then the CEL admission row h, then the real-node rows (e, and
the data-plane rows i serving, j start, k memory per pod, l density, m/n wake from zero), then sizes above 1,000 if
the budget still allows. Each phase runs in its own namespace under the shared cluster lock,
and each namespace is deleted (and waited for) before the next phase, so no phase pays for the
previous one's garbage collection. BENCH_ROWS picks row groups; BENCH_BUDGET_SECONDS bounds the
whole run: a group predicted not to fit what is left is skipped, and its rows say so. Whatever
the benchmark created is removed at the end, and auditing is switched back off if it was off
when the run began.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

from e2e.node.layout import NODE_NAME
from e2e.support.cluster import Cluster

from . import (
    cel_row,
    density_row,
    fairfloor_row,
    floor_row,
    peer_row,
    realnode_row,
    serving_row,
    start_row,
    wake_row,
    wasmkube_row,
)
from .config import NODE_GROUPS, BenchConfig
from .context import BenchContext, cleanup, prepare
from .identity import Identity, remove, remove_system_namespace, wasmkube_identity
from .kubeapi import KubeApi
from .machine import describe
from .nodepods import NodeSession
from .peer import VERSION as PEER_VERSION
from .report import Row, render, write_json
from .shared import audit_active, cluster_lock, quantity, say, set_audit, wait_api_ready

ALWAYS_RUN = 1000  # sizes up to this always run; larger ones must fit BENCH_SIZE_BUDGET_SECONDS
SHORT_IDLE_SECONDS = 20.0  # the idle window of sizes below the largest always-run one
ROW_NAMES = {"a": "wasmkube", "b": "direct client (floor)", "c": "wasmkube API requests", "d": "registry requests",
             "f": "spin-operator", "g": "fair floor (client does operator's writes)"}
# Rough seconds each non-size group needs on this project's machine, to skip what cannot fit.
ESTIMATES = {"cel": 240.0, "realnode": 90.0, "serving": 150.0, "start": 80.0, "memory": 480.0, "wake": 240.0}
NODE_ROWS = {"realnode": [("e", "real node (pods really run)")],
             "serving": [("i", "serving: Wasm pod vs container pod")],
             "start": [("j", "start: Wasm pod vs container pod")],
             "memory": [("k", "memory per pod: Wasm vs container"), ("l", "density: pods per node")],
             "wake": [("m", "wake from zero (scale to zero)"), ("n", "scale to zero: steady-state cost")]}


async def _free_pod_capacity(admin: KubeApi) -> int:
    """Pods the wasmtime runtime's nodes can still take (nodes with the label and no NoSchedule taint)."""
    nodes = (await admin.call("GET", "/api/v1/nodes", params={"labelSelector": "wasmkube.dev/shim-wasmtime=ready"}))[0]
    eligible = {n["metadata"]["name"]: quantity(n["status"].get("allocatable", {}).get("pods", "0"))
                for n in nodes.get("items") or []
                if not any(t.get("effect") == "NoSchedule" for t in n["spec"].get("taints") or [])}
    pods = (await admin.call("GET", "/api/v1/pods", params={"fieldSelector": "status.phase!=Succeeded"}))[0]
    used = sum(1 for p in pods.get("items") or [] if p.get("spec", {}).get("nodeName") in eligible)
    return sum(eligible.values()) - used


def _size_keys(config: BenchConfig) -> list[str]:
    keys = []
    if config.wants("operator"):
        keys += ["a", "c", "d"]
    if config.wants("floor"):
        keys.append("b")
    if config.wants("fairfloor"):
        keys.append("g")
    if config.wants("peer"):
        keys.append("f")
    return keys


def _skipped(key: str, subject: str, n: int | None, why: str) -> Row:
    row = Row(key, subject, n, status="skipped", note=why)
    row.metrics["summary"] = "skipped: " + why
    return row


def _skip_size(n: int, why: str, config: BenchConfig) -> list[Row]:
    return [_skipped(key, ROW_NAMES[key], n, why) for key in _size_keys(config)]


async def _timed(measurement: Awaitable[Row]) -> Row:
    """Await one row's measurement and record how long it took (for the run's time budget)."""
    began = time.monotonic()
    row = await measurement
    row.metrics["row_seconds"] = round(time.monotonic() - began, 1)
    return row


def _ratios(rows: list[Row]) -> None:
    """Time to all Deployments as a multiple of the floors' (b: Deployments only; g: the same API
    work as the operator path), per size."""
    floors = {r.n: r.get("all_deployments_seconds") for r in rows if r.key == "b"}
    fair = {r.n: r.get("all_deployments_seconds") for r in rows if r.key == "g"}
    for row in rows:
        mine = row.get("all_deployments_seconds")
        if row.key in ("a", "f") and mine:
            if floors.get(row.n):
                row.metrics["ratio_to_floor"] = round(mine / floors[row.n], 2)
            if fair.get(row.n):
                row.metrics["ratio_to_fair_floor"] = round(mine / fair[row.n], 2)
        if row.key == "g" and mine and floors.get(row.n):
            row.metrics["ratio_to_floor"] = round(mine / floors[row.n], 2)


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
        self.began = time.monotonic()
        self.previous: tuple[int, float] | None = None  # (largest size run, its locked seconds)

    def remaining(self) -> float:
        return self.config.budget_seconds - (time.monotonic() - self.began)

    def over_budget(self, estimate: float) -> str | None:
        left = self.remaining()
        if estimate <= left:
            return None
        return (f"not run: about {estimate:.0f}s needed, {max(0.0, left):.0f}s left of the "
                f"{self.config.budget_seconds:.0f}s budget (BENCH_BUDGET_SECONDS)")

    async def run(self) -> dict[str, Any]:
        started = datetime.datetime.now(datetime.UTC)
        audit_was_on = audit_active()
        version = await self.admin.get("/version")
        machine = await asyncio.to_thread(describe, (version or {}).get("gitVersion"))
        if self.config.wants("peer"):
            self.peer = peer_row.PeerSetup(self.ctx)
            await asyncio.to_thread(self.peer.build)  # minutes the first time; needs no cluster
            machine["versions"]["spin_operator"] = f"{PEER_VERSION} ({self.peer.problem or 'built'})"
        try:
            async with cluster_lock(self.config.lock_file, "setup"):
                await wait_api_ready(self.admin)
                await asyncio.to_thread(prepare, self.ctx)
                if self.config.wants("operator") or self.config.wants("realnode"):
                    self.identity = await asyncio.to_thread(wasmkube_identity, self.cluster, self.ctx.workdir)
                if self.peer is not None:
                    await asyncio.to_thread(self.peer.install)
            await self._sizes([n for n in self.config.sizes if n <= ALWAYS_RUN])
            if self.config.wants("cel"):
                why = self.over_budget(ESTIMATES["cel"] * self.config.cel_n / 1000)
                if why:
                    self.rows.append(_skipped("h", "CEL admission cost (CRD rules)", self.config.cel_n, why))
                else:
                    async with self._phase("CEL admission"):
                        self.rows.append(await _timed(cel_row.measure(self.ctx)))
            await self._node_rows()
            await self._sizes([n for n in self.config.sizes if n > ALWAYS_RUN])
        finally:
            async with cluster_lock(self.config.lock_file, "cleanup"):
                await asyncio.to_thread(self._cleanup, audit_was_on)
            await self.admin.close()
        _ratios(self.rows)
        return {"started_at": started.isoformat(), "finished_at": datetime.datetime.now(datetime.UTC).isoformat(),
                "elapsed_seconds": round(time.monotonic() - self.began, 1),
                "machine": machine, "config": self.config.as_dict(),
                "rows": [r.__dict__ for r in self.rows], "profile": self.ctx.profile,
                "workdir": str(self.ctx.workdir)}

    async def _sizes(self, sizes: list[int]) -> None:
        if not _size_keys(self.config):
            return
        idle = self.config.idle_seconds + self.config.settle_seconds
        profile_size = max(self.config.sizes) if self.config.profile else None
        # The idle window (zero writes at steady state, a whole resync pass, RSS after it) is
        # measured where it means most, at the largest size that always runs and above; smaller
        # sizes get a short one, which keeps the whole run inside BENCH_BUDGET_SECONDS.
        idle_from = max((s for s in self.config.sizes if s <= ALWAYS_RUN), default=0)
        for n in sizes:
            previous = self.previous
            if previous is not None and n > ALWAYS_RUN:
                # Scale the largest size run so far linearly (all but the fixed idle window).
                predicted = (previous[1] - idle) * n / previous[0] + idle
                why = None
                if predicted > self.config.size_budget_seconds:
                    why = (f"not run: N={previous[0]} took {previous[1]:.0f}s for all rows (lock waits excluded), "
                           f"so N={n} would take about {predicted:.0f}s > budget "
                           f"{self.config.size_budget_seconds:.0f}s (BENCH_SIZE_BUDGET_SECONDS)")
                else:
                    why = self.over_budget(predicted)
                if why:
                    say(why)
                    self.rows += _skip_size(n, why, self.config)
                    continue
            self.locked_seconds = 0.0
            replicas = self.config.replicas
            capacity = await _free_pod_capacity(self.admin)
            if n * replicas > capacity:
                say(f"N={n}: {n * replicas} pods would not fit the {capacity} free pod slots; using replicas=0")
                replicas = 0
            if self.config.wants("operator"):
                assert self.identity is not None
                async with self._phase(f"wasmkube N={n}"):
                    audit_problem = await asyncio.to_thread(set_audit, True)
                    await wait_api_ready(self.admin)
                    idle_seconds = self.config.idle_seconds if n >= idle_from else SHORT_IDLE_SECONDS
                    size_rows = await wasmkube_row.measure(self.ctx, self.identity, n, replicas, audit_problem,
                                                           profile=n == profile_size, idle_seconds=idle_seconds)
                if replicas != self.config.replicas:
                    size_rows[0].note += f"replicas=0 for this size: {n} pods exceed the {capacity} free pod slots. "
                self.rows += size_rows
            if self.config.wants("floor"):
                async with self._phase(f"floor N={n}"):
                    self.rows.append(await floor_row.measure(self.ctx, n, replicas))
            if self.config.wants("fairfloor"):
                async with self._phase(f"fair floor N={n}"):
                    self.rows.append(await _timed(fairfloor_row.measure(self.ctx, n, replicas)))
            if self.peer is not None:
                async with self._phase(f"spin-operator N={n}"):
                    audit_problem = await asyncio.to_thread(set_audit, True)
                    await wait_api_ready(self.admin)
                    self.rows.append(await peer_row.measure(self.ctx, self.peer, n, replicas, audit_problem))
            if previous is None or n > previous[0]:
                self.previous = (n, self.locked_seconds)

    async def _node_rows(self) -> None:
        """Rows e, i, j, k, l on the real node: used as it is when Ready, else built and started here
        (and stopped again afterwards)."""
        groups = [g for g in NODE_GROUPS if self.config.wants(g)]
        if not groups:
            return
        k = self.config.real_node_apps

        def skip_all(why: str) -> None:
            for group in groups:
                for key, subject in NODE_ROWS[group]:
                    self.rows.append(_skipped(key, subject, k if key == "e" else None, why))

        was_up = await realnode_row.node_ready(self.ctx, NODE_NAME)
        if not was_up:
            why = await asyncio.to_thread(realnode_row.prepare, self.config)
            if why is not None:
                skip_all(why)
                return
            async with cluster_lock(self.config.lock_file, "real node up"):
                failure = await realnode_row.start_node()
            if failure:
                skip_all(f"the real node did not start: {failure}")
                return
        session = NodeSession(self.ctx)
        try:
            for group in groups:
                estimate = ESTIMATES[group] * (self.config.start_samples if group == "start" else 1)
                why = self.over_budget(estimate)
                if why:
                    for key, subject in NODE_ROWS[group]:
                        self.rows.append(_skipped(key, subject, k if key == "e" else None, why))
                    continue
                async with self._phase(f"real node: {group}"):
                    if group == "realnode":
                        assert self.identity is not None
                        self.rows.append(await _timed(realnode_row.measure(self.ctx, self.identity, k)))
                    elif group == "serving":
                        self.rows.append(await _timed(serving_row.measure(self.ctx, session)))
                    elif group == "start":
                        self.rows.append(await _timed(start_row.measure(self.ctx, session,
                                                                        self.config.start_samples)))
                    elif group == "memory":
                        self.rows.append(await _timed(density_row.memory_row(self.ctx, session)))
                        self.rows.append(await _timed(density_row.density_row(self.ctx, session)))
                    elif group == "wake":
                        self.rows += await wake_row.measure(self.ctx, session, self.config.wake_cycles,
                                                            self.config.wake_first_cycles)
        finally:
            await session.close()
            if not was_up:
                async with cluster_lock(self.config.lock_file, "real node down"):
                    await realnode_row.stop_node()

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
    print(render(rows, document.get("profile"), document.get("elapsed_seconds"), config.budget_seconds))
    print(f"\nJSON: {path}")
    failed = [r for r in rows if r.status == "failed"]
    return 1 if failed else 0
