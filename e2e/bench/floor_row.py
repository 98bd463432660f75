"""Row b: the floor. A plain client creates the same N Deployments directly.

No operator can be faster than the API server, controller-manager and etcd of this machine
accept Deployments, so the operator's time to all Deployments is reported as a multiple of this.
The Deployment is what `wasmkube render` makes for the same WasmApp (same pod template, same
size on the wire); only the managed-by label differs, so no wasmkube operator picks them up.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .context import RUNTIMES_FILE, BenchContext
from .create import create_all
from .procstat import loadavg
from .report import Row
from .shared import create_namespace, delete_namespace, say
from .stats import latencies, latency_summary
from .wasmkube_row import app_names, wasmapp
from .watch import FirstSeen, always

PLACEHOLDER = "wkbenchplaceholder"
FLOOR_LABEL = "wasmkube-bench-floor"


def rendered_deployment(image: str, replicas: int) -> dict[str, Any]:
    """The Deployment `wasmkube render` produces for one WasmApp (its name is a placeholder)."""
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app.yaml"
        app.write_text(yaml.safe_dump(wasmapp(PLACEHOLDER, PLACEHOLDER, image, replicas)))
        out = subprocess.run([sys.executable, "-m", "wasmkube.cli", "render", "-f", str(RUNTIMES_FILE), "-f", str(app),
                              "--kind", "Module"], capture_output=True, text=True, check=True, timeout=60).stdout
    return next(d for d in yaml.safe_load_all(out) if d and d.get("kind") == "Deployment")


def deployment_bodies(template: dict[str, Any], names: list[str], namespace: str) -> list[dict[str, Any]]:
    text = json.dumps(template).replace('"app.kubernetes.io/managed-by": "wasmkube"',
                                        f'"app.kubernetes.io/managed-by": "{FLOOR_LABEL}"')
    bodies = []
    for name in names:
        body = json.loads(text.replace(PLACEHOLDER, name))
        body["metadata"]["namespace"] = namespace
        bodies.append(body)
    return bodies


async def measure(ctx: BenchContext, n: int, replicas: int) -> Row:
    assert ctx.images is not None
    row = Row("b", "direct client (floor)", n)
    namespace = ctx.namespace("floor", n)
    template = rendered_deployment(ctx.images.module.reference, replicas)
    bodies = deployment_bodies(template, app_names(n), namespace)
    await create_namespace(ctx.admin, namespace)
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    watch = FirstSeen(ctx.admin, path, always, f"app.kubernetes.io/managed-by={FLOOR_LABEL}")
    try:
        await watch.start()
        say(f"floor N={n}: creating {n} Deployments in {namespace}")
        created = await create_all(ctx.admin, path, bodies, ctx.config.concurrency)
        got_all = await watch.wait_for(created.returned, within=60 + 0.2 * n)
        seen = [watch.seen[k] for k in created.returned if k in watch.seen]
        t_all = max(seen) - created.started if seen else None
        row.metrics.update({
            "created": created.created,
            "create_seconds": round(created.seconds, 2),
            "create_retries": created.retries,
            "create_errors": created.errors[:5],
            "all_deployments_seconds": round(t_all, 2) if got_all and t_all else None,
            "deployments_per_second": round(n / t_all, 1) if got_all and t_all else None,
            "create_to_deployment": latency_summary(latencies(created.returned, watch.seen)),
            "loadavg_after": loadavg(),
        })
        if created.errors or not got_all:
            row.status = "partial"
            row.note = f"{created.created}/{n} created, {len(seen)} seen before the timeout. "
        say(f"floor N={n}: all Deployments after {row.get('all_deployments_seconds')}s")
    except Exception as exc:
        row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
    finally:
        await watch.stop()
        gone = await delete_namespace(ctx.admin, namespace)
        row.metrics["namespace_delete_seconds"] = None if gone is None else round(gone, 1)
    return row
