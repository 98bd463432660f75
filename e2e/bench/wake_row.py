"""Rows m and n: scale to zero on the real node, the wake and what the design costs when awake.

Row m, wake from zero. A WasmApp with scaleToZero per kind (the C greeter, the Python
componentize-py component) runs through a namespace-scoped operator and an activator on the
bridge gateway, as e2e/test_scale_to_zero.py runs them. Each cycle puts the app at zero (through
the Deployment's /scale, as the idle loop does, without waiting idleSeconds), waits until no pod
is left and the app's Service points at the activator, then sends one request to where the
Service points and times it to the answer. "cached" cycles reuse the digest the node has
compiled; "first" cycles change the app's image, while at zero, to a digest the node has never
seen (a salted custom section), so the wake pulls and compiles it.

Each wake is broken down from what this process sees, on one clock:
  activator   request sent -> the Deployment's replicas > 0 (a watch sees the activator's patch)
  scale-up    -> the pod exists (Deployment and ReplicaSet controllers)
  scheduling  -> the pod is bound to the node
  sandbox     the kubelet's own run_podsandbox time for the pod (its /metrics histogram delta)
  shim start  the kubelet's pull_image (if any) + create_container + start_container times
  pod status  -> the pod's IP and running state in its status: the kubelet notices the started
              container at its next runtime relist (PLEG, once a second) and writes the status
  forward     -> the answer: the EndpointSlice lists the (not yet Ready) pod, the activator's own
              probe finds it serving, the held request is forwarded and answered
The pod's Ready (kubelet probe, as a watch sees it) is recorded beside it.

Row n, steady state. The chosen design keeps the activator out of the path of an awake app: its
Service's slice lists the pod itself (the row checks that). What remains per request is the
shim's request counter that the idle loop reads. wrk loads, one after another on the same
pod-IP path: a bare pod of the same component without the counter, the awake app's pod (counter
on, idle loop scraping), and, for the record, the same pod through the activator (what an
always-in-the-path proxy would cost).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from e2e.support.activator import BRIDGE_GATEWAY, ActivatorProcess, http_request, slice_target
from e2e.support.cluster import REGISTRY
from e2e.support.operator import OperatorProcess
from wasmkube.builders.identity import MANAGED_BY

from . import wrk
from .kubeapi import KubeApi
from .nodepods import (
    LABELS,
    PORT,
    NodeSession,
    PodWatch,
    create_pod,
    histogram_delta,
    http_pod,
    kubelet_histograms,
    make_namespace,
    pod_ready,
    push_kind,
    realnode,
)
from .report import Row
from .shared import delete_namespace, say
from .stats import latency_summary, ratio
from .watch import FirstSeen

KINDS = ("wasm-c", "wasm-python")
WAKE_TIMEOUT_SECONDS = 120
PHASES = ("activator", "scale_up", "scheduling", "sandbox", "shim_start", "pod_status", "forward")


class PodTimeline(FirstSeen):
    """Per pod: when this process first saw it created, bound, with an IP, running and Ready."""

    def __init__(self, api: KubeApi, namespace: str, selector: str) -> None:
        super().__init__(api, f"/api/v1/namespaces/{namespace}/pods", label_selector=selector)
        self.marks: dict[str, dict[str, float]] = {}

    def _observe(self, when: float, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        if not name:
            return
        marks = self.marks.setdefault(name, {"created": when})
        status = obj.get("status") or {}
        found = {
            "bound": bool((obj.get("spec") or {}).get("nodeName")),
            "ip": bool(status.get("podIP")),
            "running": any((c.get("state") or {}).get("running") for c in status.get("containerStatuses") or []),
            "ready": pod_ready(obj),
        }
        for mark, now in found.items():
            if now:
                marks.setdefault(mark, when)
        super()._observe(when, obj)


class ScaleUps(FirstSeen):
    """Every time the Deployment went from 0 replicas to more, as a watch saw it."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        super().__init__(api, f"/apis/apps/v1/namespaces/{namespace}/deployments")
        self.ups: dict[str, list[float]] = {}
        self._replicas: dict[str, int] = {}

    def _observe(self, when: float, obj: dict[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name") or "")
        replicas = int((obj.get("spec") or {}).get("replicas") or 0)
        if self._replicas.get(name, 0) == 0 and replicas > 0:
            self.ups.setdefault(name, []).append(when)
        self._replicas[name] = replicas


def wasmapp(name: str, image: str) -> dict[str, Any]:
    node = realnode()
    return {
        "apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
        "metadata": {"name": name},
        "spec": {
            "image": image, "runtime": "wasmtime",
            "nodeSelector": dict(node.REAL_NODE_SELECTOR), "tolerations": [dict(node.REAL_NODE_TOLERATION)],
            "ports": [{"name": "http", "containerPort": PORT}], "service": {"port": 80},
            "env": [{"name": "GREETING", "value": "hello from the bench"}],
            "drainSeconds": 0,  # the bench's own scale-downs need not wait out a drain
            "probes": {"readiness": {"path": "/healthz"}},
            # The bench scales to zero itself; the idle loop must not race it within a cycle.
            "scaleToZero": {"idleSeconds": 600, "wakeTimeoutSeconds": WAKE_TIMEOUT_SECONDS},
        },
    }  # fmt: skip


async def _until(check: Callable[[], Awaitable[Any]], within: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(interval)
    raise RuntimeError(f"{what}: not within {within:.0f}s")


class WakeBench:
    """One namespace, its operator and activator, and the apps whose wakes are timed."""

    def __init__(self, ctx: Any, session: NodeSession, namespace: str) -> None:
        self.ctx, self.session, self.namespace = ctx, session, namespace
        self.api: KubeApi = ctx.admin
        workdir: Path = ctx.workdir
        self.activator = ActivatorProcess(ctx.cluster.kubeconfig, workdir / "wake-activator.log", BRIDGE_GATEWAY,
                                          namespace)  # fmt: skip
        self.operator = OperatorProcess(ctx.cluster.kubeconfig, workdir / "wake-operator.log", extra_args=[
            "--namespace", namespace, "--insecure-registry", REGISTRY,
            "--activator-address", self.activator.endpoint])  # fmt: skip
        self.pods = PodTimeline(self.api, namespace, f"app.kubernetes.io/managed-by={MANAGED_BY}")
        self.scales = ScaleUps(self.api, namespace)

    def path(self, kind: str, *rest: str) -> str:
        return "/".join((f"/apis/apps/v1/namespaces/{self.namespace}/deployments/{kind}", *rest))

    async def start(self) -> None:
        await make_namespace(self.ctx, self.namespace)
        await asyncio.to_thread(self.operator.start)
        await asyncio.to_thread(self.activator.start)
        await self.pods.start()
        await self.scales.start()

    async def stop(self) -> None:
        await self.pods.stop()
        await self.scales.stop()
        await asyncio.to_thread(self.activator.stop)
        await asyncio.to_thread(self.operator.stop)

    async def service_target(self, app: str) -> tuple[str | None, list[str]]:
        found = await self.api.get(f"/apis/discovery.k8s.io/v1/namespaces/{self.namespace}/endpointslices"
                                   f"?labelSelector=kubernetes.io/service-name={app},"
                                   f"endpointslice.kubernetes.io/managed-by=wasmkube.dev")  # fmt: skip
        items = (found or {}).get("items") or []
        target, endpoints = slice_target(items[0] if items else None)
        return target, [address for address, _ in endpoints]

    async def app_pods(self, app: str) -> list[dict[str, Any]]:
        found = await self.api.get(f"/api/v1/namespaces/{self.namespace}/pods"
                                   f"?labelSelector=wasmkube.dev/app={app}")  # fmt: skip
        return list((found or {}).get("items") or [])

    async def create(self, app: str, image: str) -> None:
        await self.api.call("POST", f"/apis/wasmkube.dev/v1alpha1/namespaces/{self.namespace}/wasmapps",
                            body=wasmapp(app, image), ok=(201,))  # fmt: skip

        async def ready() -> bool:
            pods = await self.app_pods(app)
            target, _ = await self.service_target(app)
            return target == "pods" and any(pod_ready(p) for p in pods)

        await _until(ready, 300, f"{app} awake and its Service on the pods")

    async def to_zero(self, app: str) -> None:
        """Scale to 0 as the idle loop does; wait until no pod is left and the Service is on the activator."""
        await self.api.call("PATCH", self.path(app, "scale"), body={"spec": {"replicas": 0}},
                            content_type="application/merge-patch+json")  # fmt: skip

        async def at_zero() -> bool:
            target, _ = await self.service_target(app)
            return target == "activator" and not await self.app_pods(app)

        await _until(at_zero, 120, f"{app} at zero")

    async def new_image(self, app: str, image: str) -> None:
        """Change the image while at zero; wait until the Deployment's template carries it (still 0)."""
        await self.api.call("PATCH", f"/apis/wasmkube.dev/v1alpha1/namespaces/{self.namespace}/wasmapps/{app}",
                            body={"spec": {"image": image}}, content_type="application/merge-patch+json")  # fmt: skip
        digest = image.rsplit("@", 1)[-1]

        async def rolled() -> bool:
            found = await self.api.get(self.path(app))
            containers = ((found or {}).get("spec") or {}).get("template", {}).get("spec", {}).get("containers", [])
            return any(digest in str(c.get("image")) for c in containers)

        await _until(rolled, 120, f"{app}'s Deployment on the new digest")

    async def wake(self, app: str) -> dict[str, Any]:
        """One request at zero, timed to its answer, with the breakdown."""
        target, addresses = await self.service_target(app)
        if target != "activator" or not addresses:
            raise RuntimeError(f"{app}'s Service does not point at the activator ({target}, {addresses})")
        before = await kubelet_histograms(self.api, self.session.node)
        known = set(self.pods.marks)
        ups = len(self.scales.ups.get(app, []))
        sent = time.monotonic()
        host = f"{app}.{self.namespace}"
        answer = await asyncio.to_thread(http_request, addresses[0], self.activator.port, "/", host=host,
                                         timeout=WAKE_TIMEOUT_SECONDS + 30)  # fmt: skip
        answered = sent + answer.seconds
        new = [n for n in self.pods.marks if n not in known]
        pod = new[0] if new else None
        with contextlib.suppress(RuntimeError):
            await _until(self._seen_ready(pod), 60, "pod Ready")
        await asyncio.sleep(0.5)  # the kubelet records the pod's start after its status write
        after = await kubelet_histograms(self.api, self.session.node)
        kubelet = histogram_delta(before, after)
        marks = self.pods.marks.get(pod or "", {})
        ups_now = self.scales.ups.get(app, [])
        scaled = ups_now[ups] if len(ups_now) > ups else None  # this wake's scale-up, as the watch saw it
        result: dict[str, Any] = {"status": answer.status, "wake_ms": round(1000 * answer.seconds, 1),
                                  "pod_ready_ms": _ms(marks.get("ready"), sent), "kubelet": kubelet}  # fmt: skip
        if answer.status != 200:
            result["problem"] = f"{answer.status} {answer.error} {answer.body[:200]}"
        sandbox = _kubelet_ms(kubelet, "run_podsandbox")
        shim = sum(_kubelet_ms(kubelet, op) or 0.0 for op in ("pull_image", "create_container", "start_container"))
        phases = {
            "activator": _ms(scaled, sent),
            "scale_up": _ms(marks.get("created"), scaled),
            "scheduling": _ms(marks.get("bound"), marks.get("created")),
            "sandbox": sandbox,
            "shim_start": round(shim, 1) if kubelet else None,
        }
        if marks.get("bound") is not None and marks.get("ip") is not None and sandbox is not None:
            phases["pod_status"] = round(1000 * (marks["ip"] - marks["bound"]) - sandbox - shim, 1)
        phases["forward"] = _ms(answered, marks.get("ip"))
        result["phases_ms"] = phases
        result["seen_ms"] = {k: _ms(v, sent) for k, v in marks.items()}
        return result

    def _seen_ready(self, pod: str | None) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return pod is None or "ready" in self.pods.marks.get(pod, {})

        return check


def _ms(later: float | None, earlier: float | None) -> float | None:
    return round(1000 * (later - earlier), 1) if later is not None and earlier is not None else None


def _kubelet_ms(kubelet: dict[str, float], operation: str) -> float | None:
    """One runtime operation's milliseconds from the kubelet's histogram deltas."""
    return kubelet.get(f"op{{{operation}}}_ms")


def _summarise(samples: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [s for s in samples if s["status"] == 200]
    out: dict[str, Any] = {"cycles": len(samples), "answered_200": len(ok),
                           "wake": latency_summary([s["wake_ms"] / 1000 for s in ok])}  # fmt: skip
    out["phases_p50_ms"] = {}
    for phase in PHASES:
        values = [s["phases_ms"].get(phase) for s in ok]
        known = [v / 1000 for v in values if v is not None]
        out["phases_p50_ms"][phase] = latency_summary(known)["p50_ms"] if known else None
    ready = [s["pod_ready_ms"] / 1000 for s in ok if s.get("pod_ready_ms") is not None]
    out["pod_ready"] = latency_summary(ready)
    problems = [s["problem"] for s in samples if s.get("problem")]
    if problems:
        out["problems"] = problems[:3]
    return out


async def measure(ctx: Any, session: NodeSession, cycles: int, first_cycles: int) -> list[Row]:
    wake = Row("m", "wake from zero (scale to zero)", cycles)
    steady = Row("n", "scale to zero: steady-state cost", 1)
    problem = await session.open() or wrk.available()
    if problem:
        for row in (wake, steady):
            row.status, row.note = "skipped", problem
            row.metrics["summary"] = "skipped: " + problem
        return [wake, steady]
    namespace = ctx.namespace("wake", cycles)
    bench = WakeBench(ctx, session, namespace)
    try:
        await bench.start()
        results: dict[str, Any] = {}
        raw: dict[str, list[dict[str, Any]]] = {}
        for kind in KINDS:
            app = kind
            say(f"wake: {LABELS[kind]}: creating the app")
            await bench.create(app, session.images[kind])
            for state, count in (("cached", cycles), ("first", first_cycles)):
                samples = raw.setdefault(f"{kind}-{state}", [])
                for i in range(count):
                    await bench.to_zero(app)
                    if state == "first":
                        salt = f"{ctx.run_id}-wake-{i}-{uuid.uuid4().hex[:6]}"
                        await bench.new_image(app, await asyncio.to_thread(push_kind, kind, salt))
                    say(f"wake: {LABELS[kind]} ({state} compile) {i + 1}/{count}")
                    samples.append(await bench.wake(app))
                results[f"{kind}-{state}"] = _summarise(samples)
        wake.metrics.update({"kinds": results, "raw": raw})
        parts = []
        for key, res in results.items():
            phases = ", ".join(f"{k} {v}" for k, v in res["phases_p50_ms"].items())
            parts.append(f"{key} p50/p99 {res['wake']['p50_ms']}/{res['wake']['p99_ms']} ms ({phases})")
            if res["answered_200"] < res["cycles"]:
                wake.status = "partial"
                wake.note += f"{key}: {res['cycles'] - res['answered_200']} wakes not answered 200: " \
                             f"{(res.get('problems') or ['?'])[0]}. "
        wake.metrics["summary"] = "; ".join(parts)
        await _steady_state(ctx, bench, session, steady)
    except Exception as exc:
        for row in (wake, steady):
            if row.status == "ok" and "summary" not in row.metrics:
                row.status, row.note = "failed", f"{type(exc).__name__}: {exc}"
                row.metrics["summary"] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        await bench.stop()
        await delete_namespace(ctx.admin, namespace, within=180)
    return [wake, steady]


async def _steady_state(ctx: Any, bench: WakeBench, session: NodeSession, row: Row) -> None:
    """wrk: bare pod without the counter, the awake app's pod (counter on), the same through the activator."""
    config = ctx.config
    app = "wasm-c"
    bare = PodWatch(ctx.admin, bench.namespace, "wasmkube.dev/bench-kind=wasm-c")
    await bare.start()
    try:
        await create_pod(ctx.admin, bench.namespace, http_pod("bare", "wasm-c", session.images["wasm-c"]))
        if not await bare.wait_for(["bare"], within=120):
            raise RuntimeError("the bare pod was not Ready within 120s")
        await bench.api.call("PATCH", bench.path(app, "scale"), body={"spec": {"replicas": 1}},
                             content_type="application/merge-patch+json")  # fmt: skip

        async def awake() -> list[str] | None:
            target, addresses = await bench.service_target(app)
            return addresses if target == "pods" and addresses else None

        addresses = await _until(awake, 120, "the app awake, its Service on the pod")
        pods = [p for p in await bench.app_pods(app) if pod_ready(p)]
        pod_ip = pods[0]["status"]["podIP"]
        if addresses != [pod_ip]:
            row.note += f"the awake Service lists {addresses}, not just the pod {pod_ip}. "
        host = f"{app}.{bench.namespace}"
        targets = {"bare pod, no counter": (bare.ips["bare"], PORT, None),
                   "awake app: Service -> pod": (addresses[0], PORT, host),
                   "through the activator (not used awake)": (BRIDGE_GATEWAY, bench.activator.port, host)}
        results: dict[str, Any] = {}
        for label, (ip, port, header) in targets.items():
            say(f"steady state: wrk against {label} at {ip}:{port}")
            await asyncio.to_thread(wrk.run, ip, port, "/", 2, config.wrk_connections, 2.0, False, header)
            results[label] = await asyncio.to_thread(wrk.run, ip, port, "/", 2, config.wrk_connections,
                                                     config.wrk_seconds, True, header)  # fmt: skip
        base = results["bare pod, no counter"]
        for res in results.values():
            res["vs_bare"] = {
                "requests_per_second": ratio(res.get("requests_per_second"), base.get("requests_per_second")),
                "added_p50_ms": round(res["p50_ms"] - base["p50_ms"], 3) if res.get("p50_ms") else None,
            }
        row.metrics.update({"targets": results, "connections": config.wrk_connections, "seconds": config.wrk_seconds})
        row.metrics["summary"] = "; ".join(
            f"{k}: {v.get('requests_per_second')}/s ({v['vs_bare']['requests_per_second']}x), p50 {v.get('p50_ms')} ms"
            for k, v in results.items())  # fmt: skip
        if any(v.get("errors") for v in results.values()):
            row.status = "partial"
            row.note += "errors under load: " + ", ".join(f"{k} {v['errors']}" for k, v in results.items()) + ". "
    finally:
        await bare.stop()
