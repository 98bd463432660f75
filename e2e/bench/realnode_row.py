"""Row e: WasmApps whose pods really run, on the real node of e2e/node/ (containerd + the shim).

KWOK nodes make pods "Running" without running anything, so every other row measures the
control plane only. When e2e/node/ provides `ensure_real_node()` and this machine passes its
preflight, a few WasmApps running e2e/node's long-running "sleeper" module are pinned to
`real-node-1`, and the time from create to Ready (image pulled by containerd, Wasm started by
the shim) is measured; then bare Wasm pods and busybox container pods are started there one at a
time, create to Running, the shim against runc. The binaries are built
first, outside the cluster lock (a cold build takes many minutes); the node is then started with
`python -m e2e.node.realnode up` (which calls ensure_real_node()) in a subprocess, so a start that
hangs can be bounded, and stopped again afterwards if it was not running before.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from e2e.node import workloads
from e2e.node.layout import NODE_NAME, REAL_NODE_SELECTOR, REAL_NODE_TOLERATION
from e2e.node.paths import NodePaths
from e2e.node.preflight import preflight
from e2e.registry import artifacts
from e2e.registry.pusher import Pusher
from e2e.support.cluster import REGISTRY, Cluster
from e2e.support.state import REPO_ROOT

from .config import BenchConfig
from .context import BenchContext
from .create import create_all
from .identity import Identity
from .operator_run import OperatorRun
from .report import Row
from .shared import create_namespace, delete_namespace, kubectl, say
from .stats import latencies, latency_summary
from .wasmkube_row import wasmapp
from .watch import FirstSeen, always, condition_true

BUILD_NODE = REPO_ROOT / "e2e" / "node" / "build-node.sh"


def _pod_starts(cluster: Cluster, namespace: str, wasm_image: str, k: int) -> dict[str, Any]:
    """Create-to-Running of k bare Wasm pods and k busybox container pods on the real node, one at a
    time and alternating, so neither kind queues behind the other: the shim against runc."""
    pusher = Pusher(REGISTRY)
    try:
        busybox = artifacts.container_image(pusher, "realnode/busybox", "v1")
    finally:
        pusher.close()
    container_image = f"{REGISTRY}/realnode/busybox@{busybox.digest}"
    seconds: dict[str, list[float]] = {"wasm": [], "container": []}
    for i in range(k):
        for kind, pod in (("wasm", workloads.wasm_pod(f"wasm-pod-{i}", wasm_image, command=["/"])),
                          ("container", workloads.container_pod(f"container-pod-{i}", container_image,
                                                                "sleep 3600"))):
            started = time.monotonic()
            cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
            seconds[kind].append(workloads.wait_running(cluster.kubectl, namespace, pod["metadata"]["name"],
                                                        started))
    return {kind: latency_summary(values) for kind, values in seconds.items()}


def _long_running_image() -> str:
    """A module that keeps running (e2e/node/workloads.py's sleeper), pushed to the local registry.

    The example artifacts of the other rows are tiny placeholders that no runtime could execute;
    on a real node the pod must really run and stay up, or it never becomes Ready."""
    pusher = Pusher(REGISTRY)
    try:
        return str(workloads.push_sleeper_module(pusher).image)
    finally:
        pusher.close()


async def node_ready(ctx: BenchContext, name: str) -> bool:
    node = await ctx.admin.get(f"/api/v1/nodes/{name}")
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _run_realnode(action: str, timeout: float) -> str | None:
    """`python -m e2e.node.realnode <action>`; None on success, else the tail of its output."""
    try:
        result = subprocess.run([sys.executable, "-m", "e2e.node.realnode", action], capture_output=True,
                                text=True, timeout=timeout, check=False, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        return f"realnode.py {action} did not finish within {timeout:.0f}s"
    if result.returncode != 0:
        return f"realnode.py {action} exited {result.returncode}: {(result.stderr or result.stdout)[-800:]}"
    return None


def _build_in_progress() -> str | None:
    """Someone is building the node's binaries right now (build-node.sh or its cargo build).

    A second build-node.sh would delete the first one's temporary directory under its feet, so
    the benchmark waits for nobody and skips the row instead."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "build-node.sh" in cmdline or ("cargo" in cmdline and "e2e/shim" in cmdline):
            return f"pid {entry.name}: {cmdline[:120]}"
    return None


def prepare(config: BenchConfig) -> str | None:
    """Everything that needs no cluster: run the preflight, build. None when the node can be
    started, else why not."""
    if config.real_node == "0":
        return "skipped: BENCH_REAL_NODE=0"
    problems = preflight(NodePaths.from_env())
    if problems:
        return "real node not available on this machine: " + "; ".join(problems)
    busy = _build_in_progress()
    if busy:
        return f"real node not available yet: its binaries are being built by another process ({busy})"
    say("building the real node's binaries if needed (build-node.sh; cold: many minutes)")
    try:
        result = subprocess.run(["bash", str(BUILD_NODE)], capture_output=True, text=True,
                                timeout=config.real_node_timeout, check=False, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired:
        return f"real node not available: build-node.sh took longer than {config.real_node_timeout:.0f}s"
    if result.returncode != 0:
        return f"real node not available: build-node.sh failed: {result.stderr.strip()[-600:]}"
    return None


def skipped(k: int, why: str) -> Row:
    return Row("e", "real node (pods really run)", k, status="skipped", note=why, metrics={"summary": why})


async def start_node() -> str | None:
    """`realnode.py up` (under the cluster lock: the node joins the cluster); None or why it failed."""
    say("starting the real node (python -m e2e.node.realnode up)")
    return await asyncio.to_thread(_run_realnode, "up", 300)


async def stop_node() -> None:
    await asyncio.to_thread(_run_realnode, "down", 300)


async def measure(ctx: BenchContext, identity: Identity, k: int) -> Row:
    """Row e on a running node (the runner starts it first unless it was up)."""
    row = Row("e", "real node (pods really run)", k)
    await _measure_apps(ctx, identity, row, k)
    return row


async def _measure_apps(ctx: BenchContext, identity: Identity, row: Row, k: int) -> None:
    assert ctx.images is not None
    namespace = ctx.namespace("realnode", k)
    await create_namespace(ctx.admin, namespace)
    operator = OperatorRun(identity, ctx.workdir / "wasmkube-realnode.log", ctx.config.resync_seconds,
                           namespace if ctx.config.operator_scope == "namespace" else None, ctx.config.operator_args)
    deployments = FirstSeen(ctx.admin, f"/apis/apps/v1/namespaces/{namespace}/deployments", always)
    ready = FirstSeen(ctx.admin, f"/apis/wasmkube.dev/v1alpha1/namespaces/{namespace}/wasmapps",
                      condition_true("Ready"))
    try:
        image = await asyncio.to_thread(_long_running_image)
        await operator.start(2)
        await deployments.start()
        await ready.start()
        bodies = [wasmapp(f"real-{i}", namespace, image, 1,
                          nodeSelector=dict(REAL_NODE_SELECTOR), tolerations=[dict(REAL_NODE_TOLERATION)])
                  for i in range(k)]
        created = await create_all(ctx.admin, f"/apis/wasmkube.dev/v1alpha1/namespaces/{namespace}/wasmapps", bodies,
                                   ctx.config.concurrency)
        await deployments.wait_for(created.returned, within=60)
        all_ready = await ready.wait_for(created.returned, within=180)
        to_ready = latency_summary(latencies(created.returned, ready.seen))
        row.metrics.update({
            "image": image,
            "create_to_deployment": latency_summary(latencies(created.returned, deployments.seen)),
            "create_to_ready": to_ready,
            "ready": len(ready.seen),
        })
        pod_starts = await asyncio.to_thread(_pod_starts, ctx.cluster, namespace, image, k)
        row.metrics["pod_create_to_running"] = pod_starts
        row.metrics["summary"] = (f"{len(ready.seen)}/{k} long-running Wasm apps Ready on {NODE_NAME}: "
                                  f"create->Ready p50 {to_ready['p50_ms']} ms, max {to_ready['max_ms']} ms; "
                                  f"bare pods create->Running p50: Wasm {pod_starts['wasm']['p50_ms']} ms, "
                                  f"container {pod_starts['container']['p50_ms']} ms")
        if not all_ready:
            row.status = "partial"
            pods = kubectl(ctx.cluster, "get", "pods", "-n", namespace, "-o", "wide", check=False)
            events = kubectl(ctx.cluster, "get", "events", "-n", namespace, "--field-selector", "type=Warning",
                             "-o", "custom-columns=REASON:.reason,MESSAGE:.message", check=False)
            row.note = f"not all Ready within 180s; pods:\n{pods}\nwarnings:\n{events[-1500:]}"
    except Exception as exc:
        row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
        row.metrics["summary"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        await deployments.stop()
        await ready.stop()
        await operator.stop()
        await delete_namespace(ctx.admin, namespace, within=180)
