"""Row h: what the WasmApp CRD's CEL rules (`x-kubernetes-validations`) cost at admission.

The same N WasmApps are created against three CRDs, all with the schema of
crds/wasmkube.dev_wasmapps.yaml: the installed one (`wasmkube.dev`), a byte-for-byte copy under
another group (`cel.bench.wasmkube.dev`) and a copy with every `x-kubernetes-validations`
removed (`nocel.bench.wasmkube.dev`). The two copies are equally new and nobody watches them, so
their ratio is the CEL rules' cost; the installed CRD is measured too because that is what
users pay (an operator watching it adds watch fan-out). Each variant first gets a few unmeasured
creates (a new CRD's first requests build its handler), then rounds rotate the variants' order,
so a burst of load elsewhere on the shared machine hits all three alike. Two bodies: the benchmark's
minimal WasmApp (image and replicas: most rules see absent fields and return at once) and a
full one that sets every field a rule looks at.

Besides wall time, the apiserver's own histogram `apiserver_cel_evaluation_duration_seconds`
says how long CEL evaluation took in total, which is much less noisy than a difference of wall
times. When the rules cost more than 1.5x (or with BENCH_CEL_ATTRIBUTE=1), the row measures
CRDs that keep only one schema location's rules each, one create at a time, to say which rules
cost most. The CRD itself is never changed here.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Iterator
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from e2e.support.state import REPO_ROOT

from .context import BenchContext
from .kubeapi import ApiError, KubeApi
from .report import Row
from .shared import create_namespace, delete_namespace, say
from .stats import latency_summary, ratio

CRD_FILE = REPO_ROOT / "crds" / "wasmkube.dev_wasmapps.yaml"
REAL_GROUP = "wasmkube.dev"
COPY_GROUP = "cel.bench.wasmkube.dev"
NOCEL_GROUP = "nocel.bench.wasmkube.dev"
ROUNDS = 4
WARMUP = 20  # creates per variant before measuring: a new CRD's first requests build its handler
CEL_LIMIT = 1.5  # the threshold: above this, say which rules cost most
SEQUENTIAL_N = 100  # creates one at a time per variant: the per-request cost without queueing
CEL_METRIC = "apiserver_cel_evaluation_duration_seconds"


def full_spec(image: str) -> dict[str, Any]:
    """A spec that sets every field one of the CRD's rules looks at (and is valid)."""
    return {
        "image": image, "replicas": 2, "runtime": "wasmtime",
        "ports": [{"name": "http", "containerPort": 8080}],
        "service": {"port": 80, "annotations": {"example.com/owner": "bench"}},
        "env": [{"name": "GREETING", "value": "hello"}, {"name": "MODE", "value": "bench"}],
        "probes": {"readiness": {"path": "/healthz"}},
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "example.com/dedicated", "operator": "Equal", "value": "wasm",
                         "effect": "NoSchedule"}],
        "podLabels": {"team": "bench", "tier": "web"}, "podAnnotations": {"example.com/note": "bench"},
        "variables": [{"name": "greeting", "value": "hi"}],
        "otel": {"endpoint": "http://127.0.0.1:4318"},
        "strategy": {"type": "RollingUpdate"}, "terminationGracePeriodSeconds": 30, "drainSeconds": 5,
    }


def bench_specs(image: str) -> dict[str, dict[str, Any]]:
    """The two specs row h creates (and e2e/tools/celcost measures offline): the benchmark's
    minimal WasmApp, and one that sets every field a rule looks at."""
    return {"minimal": {"image": image, "replicas": 1}, "full": full_spec(image)}


def _schema_nodes(node: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, schema node) for every node of an OpenAPI schema, depth first."""
    if not isinstance(node, dict):
        return
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from _schema_nodes(child, f"{path}.{name}")
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield from _schema_nodes(node[key], f"{path}[]")


def rule_locations(crd: dict[str, Any]) -> dict[str, list[str]]:
    """Schema path -> the rules at that path (e.g. `.spec.nodeSelector`: two regex rules)."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return {path: [r["rule"] for r in node["x-kubernetes-validations"]]
            for path, node in _schema_nodes(schema, "") if node.get("x-kubernetes-validations")}


def variant_crd(crd: dict[str, Any], group: str, keep: str | None = "*") -> dict[str, Any]:
    """The CRD under `group`, keeping the rules at every path ("*"), none (None) or one path."""
    out = copy.deepcopy(crd)
    out["metadata"] = {"name": f"{crd['spec']['names']['plural']}.{group}",
                       "labels": {"wasmkube.dev/bench": "true"}}
    out["spec"]["group"] = group
    out["spec"]["names"].pop("shortNames", None)
    out["spec"]["names"].pop("categories", None)
    if keep != "*":
        for version in out["spec"]["versions"]:
            for path, node in _schema_nodes(version["schema"]["openAPIV3Schema"], ""):
                if path != keep:
                    node.pop("x-kubernetes-validations", None)
    return out


def load_crd() -> dict[str, Any]:
    return next(d for d in yaml.safe_load_all(CRD_FILE.read_text()) if d)


async def install(api: KubeApi, crd: dict[str, Any]) -> None:
    """Create the CRD (or replace a leftover) and wait until it is Established and served."""
    name = crd["metadata"]["name"]
    path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    if await api.get(f"{path}/{name}") is not None:
        await remove(api, name)
    await api.call("POST", path, body=crd, ok=(201,))
    deadline = time.monotonic() + 60
    group, version = crd["spec"]["group"], crd["spec"]["versions"][0]["name"]
    while time.monotonic() < deadline:
        got = await api.get(f"{path}/{name}") or {}
        established = any(c.get("type") == "Established" and c.get("status") == "True"
                          for c in (got.get("status") or {}).get("conditions") or [])
        if established and await api.get(f"/apis/{group}/{version}") is not None:
            return
        await asyncio.sleep(0.3)
    raise RuntimeError(f"CRD {name} not Established within 60s")


async def remove(api: KubeApi, name: str, within: float = 180.0) -> None:
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}"
    await api.delete(path)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await api.get(path) is None:
            return
        await asyncio.sleep(0.5)


async def cel_seconds(api: KubeApi) -> tuple[float, float] | None:
    """(sum of seconds, count) of the apiserver's CEL evaluation histogram; None if not exposed."""
    raw = await api.text("/metrics")
    if raw is None:
        return None
    total = count = 0.0
    found = False
    for family in text_string_to_metric_families(raw):
        for sample in family.samples:
            if sample.name == f"{CEL_METRIC}_sum":
                total += sample.value
                found = True
            elif sample.name == f"{CEL_METRIC}_count":
                count += sample.value
    return (total, count) if found else None


async def timed_creates(api: KubeApi, path: str, bodies: list[dict[str, Any]],
                        concurrency: int) -> tuple[float, list[float], int]:
    """Create every body; (wall seconds, per-request seconds, errors)."""
    gate = asyncio.Semaphore(concurrency)
    took: list[float] = []
    errors = 0

    async def one(body: dict[str, Any]) -> None:
        nonlocal errors
        async with gate:
            began = time.monotonic()
            try:
                await api.call("POST", path, body=body, ok=(201,))
            except ApiError:
                errors += 1
                return
            took.append(time.monotonic() - began)

    started = time.monotonic()
    await asyncio.gather(*(one(b) for b in bodies))
    return time.monotonic() - started, took, errors


def _bodies(group: str, namespace: str, prefix: str, n: int, spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"apiVersion": f"{group}/v1alpha1", "kind": "WasmApp",
             "metadata": {"name": f"{prefix}-{i:05d}", "namespace": namespace}, "spec": spec} for i in range(n)]


async def _measure_variants(ctx: BenchContext, namespace: str, groups: list[str], spec: dict[str, Any], n: int,
                            tag: str) -> dict[str, dict[str, Any]]:
    """Create n WasmApps per group in ROUNDS alternating rounds; per group: rate, latency, CEL time."""
    per_round = max(1, n // ROUNDS)
    acc: dict[str, dict[str, Any]] = {g: {"seconds": 0.0, "took": [], "errors": 0, "cel_s": 0.0, "cel_n": 0.0,
                                          "created": 0} for g in groups}
    for group in groups:
        await timed_creates(ctx.admin, f"/apis/{group}/v1alpha1/namespaces/{namespace}/wasmapps",
                            _bodies(group, namespace, f"{tag}-warm", WARMUP, spec), ctx.config.concurrency)
    for r in range(ROUNDS):
        # Rotate and reverse the order, so no variant always runs first or after the same one.
        order = groups[r % len(groups):] + groups[:r % len(groups)]
        order = order if r % 2 == 0 else list(reversed(order))
        for group in order:
            before = await cel_seconds(ctx.admin)
            seconds, took, errors = await timed_creates(
                ctx.admin, f"/apis/{group}/v1alpha1/namespaces/{namespace}/wasmapps",
                _bodies(group, namespace, f"{tag}-r{r}", per_round, spec), ctx.config.concurrency)
            after = await cel_seconds(ctx.admin)
            slot = acc[group]
            slot["seconds"] += seconds
            slot["took"] += took
            slot["errors"] += errors
            slot["created"] += len(took)
            if before is not None and after is not None:
                slot["cel_s"] += after[0] - before[0]
                slot["cel_n"] += after[1] - before[1]
    out = {}
    for group, slot in acc.items():
        created = slot["created"]
        out[group] = {
            "created": created, "errors": slot["errors"],
            "creates_per_second": round(created / slot["seconds"], 1) if slot["seconds"] else None,
            "latency": latency_summary(slot["took"]),
            "cel_eval_ms_per_create": round(1000 * slot["cel_s"] / created, 3) if created else None,
            "cel_evaluations": int(slot["cel_n"]),
            "sequential": await sequential(ctx, namespace, group, spec, f"{tag}-seq"),
        }
    return out


async def sequential(ctx: BenchContext, namespace: str, group: str, spec: dict[str, Any],
                     tag: str) -> dict[str, Any]:
    """SEQUENTIAL_N creates one at a time: p50 latency and CEL evaluation time per create, with
    no queueing in the apiserver (at concurrency 32 both include waiting for the two cores)."""
    before = await cel_seconds(ctx.admin)
    _, took, errors = await timed_creates(ctx.admin, f"/apis/{group}/v1alpha1/namespaces/{namespace}/wasmapps",
                                          _bodies(group, namespace, tag, SEQUENTIAL_N, spec), 1)
    after = await cel_seconds(ctx.admin)
    cel = None
    if before is not None and after is not None and took:
        cel = round(1000 * (after[0] - before[0]) / len(took), 3)
    return {"created": len(took), "errors": errors, "p50_ms": latency_summary(took)["p50_ms"],
            "cel_eval_ms_per_create": cel}


async def measure(ctx: BenchContext) -> Row:
    n = ctx.config.cel_n
    row = Row("h", "CEL admission cost (CRD rules)", n)
    crd = load_crd()
    locations = rule_locations(crd)
    image = f"{ctx.images.module.reference}" if ctx.images else "127.0.0.1:5001/examples/hello-wasi:v1"
    copies = [variant_crd(crd, COPY_GROUP), variant_crd(crd, NOCEL_GROUP, keep=None)]
    namespace = ctx.namespace("cel", n)
    installed: list[str] = []
    try:
        for extra in copies:
            await install(ctx.admin, extra)
            installed.append(extra["metadata"]["name"])
        await create_namespace(ctx.admin, namespace)
        groups = [REAL_GROUP, COPY_GROUP, NOCEL_GROUP]
        bodies = bench_specs(image)
        results: dict[str, Any] = {}
        for kind, spec in bodies.items():
            say(f"CEL: {n} {kind} WasmApps against each of {', '.join(groups)}")
            results[kind] = await _measure_variants(ctx, namespace, groups, spec, n, kind)
        row.metrics.update({"rules": sum(len(r) for r in locations.values()), "rule_locations": len(locations),
                            "rounds": ROUNDS, "concurrency": ctx.config.concurrency, "bodies": results})
        summary = []
        worst = 0.0
        for kind, res in results.items():
            # Rate ratio: nocel creates/s over cel creates/s = how much slower admission is with CEL.
            rate = ratio(res[NOCEL_GROUP]["creates_per_second"], res[COPY_GROUP]["creates_per_second"])
            real_ratio = ratio(res[NOCEL_GROUP]["creates_per_second"], res[REAL_GROUP]["creates_per_second"])
            p50 = ratio(res[COPY_GROUP]["latency"]["p50_ms"], res[NOCEL_GROUP]["latency"]["p50_ms"])
            res["cel_cost_ratio"], res["installed_crd_ratio"], res["p50_ratio"] = rate, real_ratio, p50
            worst = max(worst, rate or 0.0)
            cel_ms = res[COPY_GROUP]["cel_eval_ms_per_create"]
            summary.append(f"{kind}: {res[COPY_GROUP]['creates_per_second']}/s with CEL vs "
                           f"{res[NOCEL_GROUP]['creates_per_second']}/s without = {rate}x, p50 "
                           f"{res[COPY_GROUP]['latency']['p50_ms']} vs {res[NOCEL_GROUP]['latency']['p50_ms']} ms"
                           f" (installed CRD {real_ratio}x; CEL evaluation {cel_ms} ms/create)")
        row.metrics["cel_cost_ratio_worst"] = worst
        seq = {kind: ratio(res[COPY_GROUP]["sequential"]["p50_ms"], res[NOCEL_GROUP]["sequential"]["p50_ms"])
               for kind, res in results.items()}
        row.metrics["sequential_p50_ratio"] = seq
        summary.append("one at a time p50: " + ", ".join(
            f"{kind} {res[COPY_GROUP]['sequential']['p50_ms']} vs {res[NOCEL_GROUP]['sequential']['p50_ms']} ms "
            f"(CEL {res[COPY_GROUP]['sequential']['cel_eval_ms_per_create']} ms)" for kind, res in results.items()))
        if worst > CEL_LIMIT or ctx.config.cel_attribute:
            row.metrics["costliest_rules"] = await _attribute(ctx, crd, locations, namespace, bodies["full"])
            top = row.metrics["costliest_rules"][:3]
            summary.append("costliest (CEL ms per create, one at a time): " + "; ".join(
                f"{t['path']} ({t['rules']} rules) {t['cel_eval_ms_per_create']}" for t in top))
        else:
            row.metrics["costliest_rules"] = (f"not measured: CEL costs {worst}x <= {CEL_LIMIT}x "
                                              "(BENCH_CEL_ATTRIBUTE=1 measures it anyway)")
        row.metrics["summary"] = f"{n} creates per CRD, concurrency {ctx.config.concurrency}: " + "; ".join(summary)
    except Exception as exc:
        row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
        row.metrics["summary"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        await delete_namespace(ctx.admin, namespace, within=300)
        for name in installed:
            await remove(ctx.admin, name)
    return row


async def _attribute(ctx: BenchContext, crd: dict[str, Any], locations: dict[str, list[str]], namespace: str,
                     spec: dict[str, Any]) -> list[dict[str, Any]]:
    """One CRD per schema location, keeping only that location's rules, each measured one create
    at a time against the rule-less copy: CEL evaluation time and extra p50 per create."""
    base = await sequential(ctx, namespace, NOCEL_GROUP, spec, "abl-base")
    found = []
    for i, path in enumerate(locations):
        group = f"r{i}.bench.wasmkube.dev"
        extra = variant_crd(crd, group, keep=path)
        await install(ctx.admin, extra)
        try:
            await timed_creates(ctx.admin, f"/apis/{group}/v1alpha1/namespaces/{namespace}/wasmapps",
                                _bodies(group, namespace, f"abl{i}-warm", 5, spec), 1)
            mine = await sequential(ctx, namespace, group, spec, f"abl{i}")
        finally:
            await remove(ctx.admin, extra["metadata"]["name"])
        extra_ms = None
        if mine["p50_ms"] is not None and base["p50_ms"] is not None:
            extra_ms = round(mine["p50_ms"] - base["p50_ms"], 2)
        found.append({"path": path or ".", "rules": len(locations[path]), "extra_p50_ms": extra_ms,
                      "cel_eval_ms_per_create": mine["cel_eval_ms_per_create"],
                      "first_rule": locations[path][0][:120]})
    found.sort(key=lambda f: -(f["cel_eval_ms_per_create"] or f["extra_p50_ms"] or 0))
    return found
