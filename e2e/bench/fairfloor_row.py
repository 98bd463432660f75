"""Row g: the fair floor. A plain client does, per app, the API work the operator path needs.

Row b creates bare Deployments, which is less work than the operator is asked to do: on the
operator path every app is a WasmApp first (admission with the CRD's schema and CEL rules, an
etcd write and a watch event), then a Deployment (server-side apply, with an ownerReference the
garbage collector tracks), then a status patch. This row makes exactly those three calls per app
with no operator and no watch of its own, from the same two streams the operator path has: the
WasmApp creates at BENCH_CONCURRENCY (the benchmark client of row a), and each app's follow-up
(apply its Deployment, then patch its status) as soon as its create returned, with up to
BENCH_FAIR_WORKERS (the operator's 64 workers) in flight. What it does not do, the operator does
on top: watch, cache, decide, resolve the image in the registry (cached), post Events, and write
status a second time once the Deployment is available. The operator's time to all Deployments
divided by this row's is the overhead the operator itself adds.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from .context import BenchContext
from .create import CreateResult
from .floor_row import PLACEHOLDER, rendered_deployment
from .kubeapi import ApiError, KubeApi
from .procstat import loadavg
from .report import Row
from .shared import create_namespace, delete_namespace, other_operators, say
from .stats import latencies, latency_summary
from .wasmkube_row import app_names, wasmapp
from .watch import FirstSeen, always

FAIR_LABEL = "wasmkube-bench-fairfloor"
FIELD_MANAGER = "wasmkube-bench-fairfloor"


def status_body(name: str, image: str, replicas: int, now: str) -> dict[str, Any]:
    """A status of the shape the operator writes after applying the Deployment (Reconciling)."""
    def condition(kind: str, status: str, reason: str, message: str) -> dict[str, Any]:
        return {"type": kind, "status": status, "observedGeneration": 1, "lastTransitionTime": now,
                "reason": reason, "message": message}
    return {"status": {
        "observedGeneration": 1,
        "conditions": [condition("Ready", "False", "Progressing", f"Deployment {name}: 0/{replicas} ready"),
                       condition("Reconciling", "True", "Progressing", f"Deployment {name}: 0/{replicas} ready"),
                       condition("Stalled", "False", "Progressing", "")],
        "selector": f"wasmkube.dev/app={name}", "replicas": 0, "readyReplicas": 0, "availableReplicas": 0,
        "updatedReplicas": 0, "runtime": "wasmtime", "runtimeClassName": "wasmtime", "deploymentName": name,
        "artifact": {"reference": image, "digest": "sha256:" + "0" * 64, "pinnedImage": image, "kind": "Module",
                     "layout": "CNCFWasmArtifact",
                     "mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1024, "resolvedAt": now},
    }}


def deployment_text(template: dict[str, Any]) -> str:
    """The rendered Deployment as JSON text with our managed-by label (no operator adopts it)."""
    return json.dumps(template).replace('"app.kubernetes.io/managed-by": "wasmkube"',
                                        f'"app.kubernetes.io/managed-by": "{FAIR_LABEL}"')


async def measure(ctx: BenchContext, n: int, replicas: int) -> Row:
    assert ctx.images is not None
    row = Row("g", "fair floor (client does operator's writes)", n)
    namespace = ctx.namespace("fairfloor", n)
    image = ctx.images.module.reference
    text = deployment_text(rendered_deployment(image, replicas))
    await create_namespace(ctx.admin, namespace)
    apps = f"/apis/wasmkube.dev/v1alpha1/namespaces/{namespace}/wasmapps"
    deployments = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    watch = FirstSeen(ctx.admin, deployments, always, f"app.kubernetes.io/managed-by={FAIR_LABEL}")
    # The follow-ups get a client (connection pool) of their own, as the operator has its own.
    worker_api = KubeApi.from_kubeconfig(ctx.cluster.kubeconfig, concurrency=ctx.config.fair_workers)
    create_gate = asyncio.Semaphore(ctx.config.concurrency)
    worker_gate = asyncio.Semaphore(ctx.config.fair_workers)
    returned: dict[str, float] = {}
    patched: dict[str, float] = {}
    errors: list[str] = []
    retries = 0
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    async def follow_up(name: str, uid: str) -> None:
        nonlocal retries
        body = json.loads(text.replace(PLACEHOLDER, name))
        body["metadata"]["namespace"] = namespace
        body["metadata"]["ownerReferences"] = [{"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
                                                "name": name, "uid": uid, "controller": True,
                                                "blockOwnerDeletion": True}]
        async with worker_gate:
            _, used = await worker_api.call("PATCH", f"{deployments}/{name}", body=body,
                                           params={"fieldManager": FIELD_MANAGER, "force": "true"},
                                           content_type="application/apply-patch+yaml")
            retries += used
            _, used = await worker_api.call("PATCH", f"{apps}/{name}/status",
                                            body=status_body(name, image, replicas, now),
                                            content_type="application/merge-patch+json")
            retries += used
            patched[name] = time.monotonic()

    async def one(name: str) -> None:
        nonlocal retries
        try:
            async with create_gate:
                created, used = await ctx.admin.call("POST", apps, body=wasmapp(name, namespace, image, replicas),
                                                     ok=(201,))
                returned[name] = time.monotonic()
                retries += used
            await follow_up(name, created["metadata"]["uid"])
        except ApiError as exc:
            errors.append(str(exc))

    try:
        await watch.start()
        say(f"fair floor N={n}: WasmApp + Deployment + status patch for {n} apps in {namespace}")
        started = time.monotonic()
        await asyncio.gather(*(one(name) for name in app_names(n)))
        result = CreateResult(started, time.monotonic(), returned, retries, errors)
        got_all = await watch.wait_for(result.returned, within=60 + 0.2 * n)
        seen = [watch.seen[k] for k in result.returned if k in watch.seen]
        t_all = max(seen) - started if seen else None
        row.metrics.update({
            "created": result.created,
            "calls_seconds": round(result.seconds, 2),
            "create_retries": retries,
            "create_errors": errors[:5],
            "status_patches": len(patched),
            "all_deployments_seconds": round(t_all, 2) if got_all and t_all else None,
            "deployments_per_second": round(n / t_all, 1) if got_all and t_all else None,
            "create_to_deployment": latency_summary(latencies(returned, watch.seen)),
            "create_to_status": latency_summary(latencies(returned, patched)),
            "workers": ctx.config.fair_workers,
            "loadavg_after": loadavg(),
        })
        if errors or not got_all:
            row.status = "partial"
            row.note = f"{result.created}/{n} created, {len(seen)} Deployments seen before the timeout. "
        others = other_operators(set())
        if others:  # a cluster-wide one would reconcile these WasmApps too and race our writes
            row.note += f"other wasmkube operators were running on this machine: {others}. "
        say(f"fair floor N={n}: all Deployments after {row.get('all_deployments_seconds')}s")
    except Exception as exc:
        row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        await watch.stop()
        await worker_api.close()
        gone = await delete_namespace(ctx.admin, namespace)
        row.metrics["namespace_delete_seconds"] = None if gone is None else round(gone, 1)
    return row
