"""Row f: spin-operator on the same load, measured the same way as wasmkube.

It gets a SpinAppExecutor (`createDeployment: true`, RuntimeClass `wasmtime-spin-v2`, which
wasmkube's `spin` WasmRuntime keeps) in the benchmark namespace and N SpinApps naming it (the
executor must be set explicitly: defaulting it is the job of the webhook that is off). The
namespace is deleted while spin-operator still runs, because its finalizer on the executor is
only removed by spin-operator itself.
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

from .context import BenchContext
from .create import create_all
from .identity import Identity, cluster_admin_identity, remove
from .logs import LogTail, tally_audit
from .peer import VERSION, PeerProcess, PeerUnavailable, build, crd_files
from .procstat import loadavg, sample
from .report import Row
from .shared import audit_log_path, create_namespace, delete_namespace, kubectl, say
from .stats import latencies, latency_summary
from .watch import FirstSeen, always, ready_replicas_at_least_spec

GROUP = "core.spinkube.dev/v1alpha1"
EXECUTOR = "containerd-shim-spin"
CRDS = ("spinapps.core.spinkube.dev", "spinappexecutors.core.spinkube.dev")


def executor(namespace: str) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "SpinAppExecutor", "metadata": {"name": EXECUTOR, "namespace": namespace},
            "spec": {"createDeployment": True, "deploymentConfig": {"runtimeClassName": "wasmtime-spin-v2"}}}


def spinapp(name: str, namespace: str, image: str, replicas: int) -> dict[str, Any]:
    return {"apiVersion": GROUP, "kind": "SpinApp", "metadata": {"name": name, "namespace": namespace},
            "spec": {"image": image, "executor": EXECUTOR, "replicas": replicas}}


class PeerSetup:
    """Built binary, CRDs and identity, shared by every size; `close` undoes what it created."""

    def __init__(self, ctx: BenchContext) -> None:
        self.ctx = ctx
        self.identity: Identity | None = None
        self.crds_created = False
        self.problem: str | None = None

    def build(self) -> None:
        """Download and compile (no cluster needed, so outside the cluster lock)."""
        try:
            say(f"building spin-operator {VERSION} from its Go module (cached after the first time)")
            self.binary, self.source = build()
        except (PeerUnavailable, OSError, subprocess.TimeoutExpired) as exc:
            self.problem = str(exc)

    def install(self) -> None:
        """Its CRDs (from the module zip) and its identity."""
        if self.problem:
            return
        existing = kubectl(self.ctx.cluster, "get", "crd", *CRDS, "-o", "name", "--ignore-not-found")
        self.crds_created = existing.count("customresourcedefinition") < len(CRDS)
        kubectl(self.ctx.cluster, "apply", "--server-side", "--force-conflicts",
                *(arg for f in crd_files(self.source) for arg in ("-f", str(f))))
        for crd in CRDS:
            kubectl(self.ctx.cluster, "wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
        self.identity = cluster_admin_identity(self.ctx.cluster, "spin-operator", self.ctx.workdir)

    def close(self) -> None:
        if self.identity is not None:
            remove(self.ctx.cluster, self.identity)
        if self.crds_created:
            kubectl(self.ctx.cluster, "delete", "crd", *CRDS, "--ignore-not-found", "--wait=false", check=False)


async def measure(ctx: BenchContext, setup: PeerSetup, n: int, replicas: int, audit_problem: str | None) -> Row:
    row = Row("f", f"spin-operator {VERSION}", n)
    if setup.problem or setup.identity is None:
        row.status, row.note = "skipped", f"spin-operator could not be built: {setup.problem}"
        return row
    assert ctx.images is not None
    namespace = ctx.namespace("spin", n)
    names = [f"app-{i:05d}" for i in range(n)]
    audit = LogTail(audit_log_path())
    await create_namespace(ctx.admin, namespace)
    await ctx.admin.call("POST", f"/apis/{GROUP}/namespaces/{namespace}/spinappexecutors", body=executor(namespace),
                         ok=(201,))
    peer = PeerProcess(setup.binary, setup.identity.kubeconfig, ctx.workdir / f"spin-operator-{n}.log")
    deployments = FirstSeen(ctx.admin, f"/apis/apps/v1/namespaces/{namespace}/deployments", always)
    ready = FirstSeen(ctx.admin, f"/apis/{GROUP}/namespaces/{namespace}/spinapps", ready_replicas_at_least_spec)
    try:
        await asyncio.to_thread(peer.start)
        await asyncio.sleep(2.0)  # informers list and sync after /readyz already answers
        await deployments.start()
        await ready.start()
        assert peer.pid is not None, "the spin operator did not start"
        cpu_before = sample(peer.pid)
        reconciles_before = await asyncio.to_thread(peer.reconciles) or 0.0
        audit_start = audit.mark()
        say(f"spin-operator N={n}: creating {n} SpinApps in {namespace}")
        bodies = [spinapp(name, namespace, ctx.images.spin.reference, replicas) for name in names]
        created = await create_all(ctx.admin, f"/apis/{GROUP}/namespaces/{namespace}/spinapps", bodies,
                                   ctx.config.concurrency)
        got_all = await deployments.wait_for(created.returned, within=120 + 1.0 * n)
        all_ready = await ready.wait_for(created.returned, within=60 + 0.2 * n)
        proc = sample(peer.pid)
        await asyncio.sleep(1.0)
        audit_end = audit.mark()
        seen = [deployments.seen[k] for k in created.returned if k in deployments.seen]
        ready_at = [ready.seen[k] for k in created.returned if k in ready.seen]
        t_all = max(seen) - created.started if seen else None
        t_ready = max(ready_at) - created.started if ready_at else None
        reconciles = (await asyncio.to_thread(peer.reconciles) or 0.0) - reconciles_before
        row.metrics.update({
            "created": created.created,
            "create_seconds": round(created.seconds, 2),
            "create_retries": created.retries,
            "all_deployments_seconds": round(t_all, 2) if got_all and t_all else None,
            "all_ready_seconds": round(t_ready, 2) if all_ready and t_ready else None,
            "deployments_per_second": round(n / t_all, 1) if got_all and t_all else None,
            "create_to_deployment": latency_summary(latencies(created.returned, deployments.seen)),
            "create_to_ready": latency_summary(latencies(created.returned, ready.seen)),
            "process": {**proc.as_dict(), "cpu_seconds_during_load": round(proc.cpu_seconds - cpu_before.cpu_seconds,
                                                                           2)},
            "reconciles": reconciles,
            "loadavg_after": loadavg(),
        })
        if audit_problem is None:
            tally = tally_audit(audit.lines_between(audit_start, audit_end), setup.identity.username, namespace)
            row.metrics["requests"] = tally.as_dict()
            row.metrics["requests_per_app"] = round(tally.total / n, 3)
            row.metrics["requests_per_reconcile"] = round(tally.total / reconciles, 3) if reconciles else None
        if not got_all:
            row.status = "partial"
            row.note += f"only {len(seen)}/{n} Deployments before the timeout. "
        if not all_ready:  # not what this row compares; said, but not a failure of the row
            row.note += f"{len(ready_at)}/{n} SpinApps reached readyReplicas before the (short) timeout. "
        row.note += ("spin-operator also applies a Service and a runtime-config Secret per SpinApp; it reconciles with "
                     "controller-runtime's defaults: 1 worker (MaxConcurrentReconciles) and no client-side rate "
                     "limit (v0.21 leaves that to API priority and fairness). ")
        say(f"spin-operator N={n}: Deployments {row.get('all_deployments_seconds')}s")
    except Exception as exc:
        row.status = "failed"
        row.note += f"{type(exc).__name__}: {exc}; log: {peer.log_path}"
    finally:
        await deployments.stop()
        await ready.stop()
        gone = await delete_namespace(ctx.admin, namespace)  # spin-operator must still run (executor finalizer)
        if gone is None:
            await _force_remove_executor(ctx, namespace)
            gone = await delete_namespace(ctx.admin, namespace, within=120)
        row.metrics["namespace_delete_seconds"] = None if gone is None else round(gone, 1)
        await asyncio.to_thread(peer.stop)
    return row


async def _force_remove_executor(ctx: BenchContext, namespace: str) -> None:
    """Last resort if spin-operator did not release its executor: drop the finalizer ourselves."""
    await ctx.admin.request("PATCH", f"/apis/{GROUP}/namespaces/{namespace}/spinappexecutors/{EXECUTOR}",
                            body={"metadata": {"finalizers": None}}, content_type="application/merge-patch+json")
