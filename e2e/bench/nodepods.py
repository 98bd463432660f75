"""What the data-plane rows (i, j, k, l) share: the images, the pods, and how they are watched.

Three kinds of pod do the same work on the real node: the C greeter component and the Python
(componentize-py) component on the `wasmtime` RuntimeClass (wasmkube's shim), and the greeter's
native twin, the same routes (examples/greeter/routes.h) compiled as a static HTTP server in a
one-file image run by runc. All three listen on 8080, answer `/` and `/healthz`, get the same
readiness probe, and are bare pods (no operator, no Deployment), so what is compared is the
node's data plane and nothing else. Traffic goes to pod IPs on the bridge (10.222.0.0/24),
checked by e2e/support/traffic.py like every test's.

"Cold" Wasm means a digest the node has never compiled: the component with a custom section
appended (it behaves the same, its bytes differ), as e2e/test_wasm_http.py does. The container
counterpart is a new image whose one layer also holds a salt file: a new layer to pull and
unpack. "Cached" is a second pod of an image the node has started before.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gzip
import io
import json
import tarfile
import threading
import time
from types import ModuleType
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from e2e.node import realnode as realnode_module
from e2e.node import workloads
from e2e.node.layout import KUBELET_PORT, NODE_NAME
from e2e.node.paths import NodePaths
from e2e.registry import artifacts, components
from e2e.registry.pusher import Blob, Pusher, canonical_json, sha256_digest
from e2e.support.cluster import REGISTRY
from e2e.support.traffic import check_allowed, request

from .context import BenchContext
from .kubeapi import ApiError, KubeApi
from .shared import create_namespace, delete_namespace, kubectl, say
from .watch import FirstSeen

PORT = 8080
METRICS_PORT = 9090  # the shim's request counters (WASMKUBE_METRICS_ADDR)
GREETING = "hello from the bench"
KINDS = ("wasm-c", "wasm-python", "native")
LABELS = {"wasm-c": "Wasm C greeter", "wasm-python": "Wasm Python (componentize-py)",
          "native": "native twin (runc)"}
KUBELET_HISTOGRAMS = {
    "kubelet_pod_start_sli_duration_seconds": None,
    "kubelet_pod_start_duration_seconds": None,
    "kubelet_run_podsandbox_duration_seconds": "runtime_handler",
    "kubelet_runtime_operations_duration_seconds": "operation_type",
    "kubelet_image_pull_duration_seconds": None,
}
WANTED_OPERATIONS = {"run_podsandbox", "pull_image", "create_container", "start_container"}


def realnode() -> ModuleType:
    """e2e.node.realnode, for callers that reach the node's names through it (the wake row)."""
    return realnode_module


# -- images -----------------------------------------------------------------------------------


def with_custom_section(data: bytes, salt: str) -> bytes:
    """The component plus a custom section: same behaviour, a digest no node has compiled."""
    return components.with_custom_section(data, salt)


def push_component(pusher: Pusher, repository: str, data: bytes) -> str:
    """A component as a CNCF Wasm artifact (what the operator and the shim expect); by digest."""
    pushed = artifacts.component(pusher, repository, "bench", data)
    return f"{pusher.host}/{repository}@{pushed.digest}"


def push_native(pusher: Pusher, repository: str, salt: str | None) -> str:
    """The native twin as a linux/amd64 image; with a salt, its layer also holds /salt (new layer)."""
    comps, arts = components, artifacts
    binary = comps.native_greeter_binary()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        files = [(comps.NATIVE_PATH_IN_IMAGE.lstrip("/"), binary, 0o755)]
        if salt:
            files.append(("salt", salt.encode(), 0o644))
        for name, content, mode in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), mode, 0
            tar.addfile(info, io.BytesIO(content))
    layer_tar = buffer.getvalue()
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0) as gz:
        gz.write(layer_tar)
    layer = Blob(arts.OCI_TAR_GZIP, compressed.getvalue())
    config = {"created": arts.CREATED, "architecture": "amd64", "os": "linux",
              "config": {"Entrypoint": [comps.NATIVE_PATH_IN_IMAGE], "User": comps.NATIVE_USER},
              "rootfs": {"type": "layers", "diff_ids": [sha256_digest(layer_tar)]}}
    pushed = arts.push_image(pusher, repository, "bench", Blob(arts.OCI_CONFIG, canonical_json(config)), [layer])
    return f"{pusher.host}/{repository}@{pushed.digest}"


def push_kind(kind: str, salt: str | None = None) -> str:
    """Build (cached) and push one kind's image; with a salt, a fresh digest. Returns image@digest."""
    pusher = Pusher(REGISTRY)
    try:
        if kind == "native":
            return push_native(pusher, "bench/greeter-native", salt)
        comps = components
        data = comps.greeter_component("v1") if kind == "wasm-c" else comps.python_http_component()
        if salt:
            data = with_custom_section(data, salt)
        return push_component(pusher, f"bench/{kind}", data)
    finally:
        pusher.close()


# -- pods -------------------------------------------------------------------------------------


def http_pod(name: str, kind: str, image: str, labels: dict[str, str] | None = None,
             metrics: bool = False) -> dict[str, Any]:
    """A bare pod of `kind` on real-node-1 serving on 8080, Ready once /healthz answers."""
    env = [{"name": "GREETING", "value": GREETING}]
    if metrics and kind != "native":
        env.append({"name": "WASMKUBE_METRICS_ADDR", "value": f"0.0.0.0:{METRICS_PORT}"})
    container: dict[str, Any] = {
        "name": "app", "image": image, "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PORT}], "env": env,
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": PORT}, "periodSeconds": 1,
                           "timeoutSeconds": 2, "failureThreshold": 3},
    }
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 1, "enableServiceLinks": False,
                            "automountServiceAccountToken": False, "containers": [container]}
    if kind != "native":
        container["command"] = ["/"]  # CRI wants a command; Wasm artifacts carry none
        spec["runtimeClassName"] = workloads.RUNTIME_CLASS
    spec = workloads.on_real_node(spec)
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"wasmkube.dev/bench-kind": kind, **(labels or {})}}, "spec": spec}


def pod_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


class PodWatch(FirstSeen):
    """First time each pod was Ready, plus its IP and uid as soon as the watch shows them."""

    def __init__(self, api: KubeApi, namespace: str, label_selector: str | None = None) -> None:
        super().__init__(api, f"/api/v1/namespaces/{namespace}/pods", pod_ready, label_selector)
        self.ips: dict[str, str] = {}
        self.uids: dict[str, str] = {}
        self.objects: dict[str, dict[str, Any]] = {}

    def _observe(self, when: float, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name = meta.get("name")
        if name:
            self.objects[name] = obj
            self.uids.setdefault(name, meta.get("uid", ""))
            ip = (obj.get("status") or {}).get("podIP")
            if ip and name not in self.ips:
                self.ips[name] = ip
                self._changed.set()
        super()._observe(when, obj)

    async def ip_of(self, name: str, within: float) -> str | None:
        deadline = time.monotonic() + within
        while name not in self.ips and time.monotonic() < deadline:
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=0.2)
        return self.ips.get(name)


def first_response(ip: str, deadline: float, stop: threading.Event | None = None) -> float | None:
    """Poll GET / until it answers 200; the monotonic time it did, None at the deadline."""
    check_allowed(ip)
    while time.monotonic() < deadline and not (stop and stop.is_set()):
        if request(ip, PORT, "/", timeout=0.5).status == 200:
            return time.monotonic()
        time.sleep(0.005)
    return None


def stuck_reason(obj: dict[str, Any]) -> str | None:
    for status in (obj.get("status") or {}).get("containerStatuses") or []:
        waiting = (status.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in {"ErrImagePull", "ImagePullBackOff", "CreateContainerError", "CrashLoopBackOff",
                                     "RunContainerError", "CreateContainerConfigError", "InvalidImageName"}:
            return f"{waiting['reason']}: {waiting.get('message', '')[:300]}"
        if (status.get("lastState") or {}).get("terminated"):
            term = status["lastState"]["terminated"]
            return f"container exited {term.get('exitCode')} ({term.get('reason')}): {term.get('message', '')[:300]}"
    return None


async def create_pod(api: KubeApi, namespace: str, body: dict[str, Any]) -> float:
    await api.call("POST", f"/api/v1/namespaces/{namespace}/pods", body=body, ok=(201,))
    return time.monotonic()


async def delete_pods(api: KubeApi, namespace: str, names: list[str], within: float = 120.0) -> bool:
    """Delete pods and wait until all are gone (their processes too, so the next row starts clean)."""
    for name in names:
        with contextlib.suppress(ApiError):
            await api.delete(f"/api/v1/namespaces/{namespace}/pods/{name}")
    deadline = time.monotonic() + within
    left = list(names)
    while left and time.monotonic() < deadline:
        left = [n for n in left if await api.get(f"/api/v1/namespaces/{namespace}/pods/{n}") is not None]
        if left:
            await asyncio.sleep(0.5)
    return not left


# -- kubelet metrics --------------------------------------------------------------------------


async def kubelet_histograms(api: KubeApi, node: str) -> dict[str, tuple[float, float]]:
    """(sum, count) of the kubelet's pod-start histograms, read through the apiserver's node proxy."""
    text = await api.text(f"/api/v1/nodes/{node}/proxy/metrics")
    if text is None:
        # The apiserver refuses to proxy to a node whose address is loopback ("address not
        # allowed"), which is what the local real node has: read its kubelet directly instead.
        text = await asyncio.to_thread(_local_kubelet_metrics)
    out: dict[str, tuple[float, float]] = {}
    if text is None:
        return out
    for family in text_string_to_metric_families(text):
        if family.name not in KUBELET_HISTOGRAMS:
            continue
        label = KUBELET_HISTOGRAMS[family.name]
        for sample in family.samples:
            if not sample.name.endswith(("_sum", "_count")):
                continue
            tag = sample.labels.get(label, "") if label else ""
            if label == "operation_type" and tag not in WANTED_OPERATIONS:
                continue
            key = f"{family.name}{{{tag}}}" if label else family.name
            total, count = out.get(key, (0.0, 0.0))
            if sample.name.endswith("_sum"):
                total += sample.value
            else:
                count += sample.value
            out[key] = (total, count)
    return out


def _local_kubelet_metrics() -> str | None:
    """The local real node's kubelet /metrics on 127.0.0.1:10250, as the apiserver would read
    it: with the client certificate the apiserver uses for kubelets (the cluster's admin)."""
    import ssl
    import urllib.request

    paths = NodePaths.from_env()
    port = KUBELET_PORT
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the kubelet's serving cert is self-signed for its own name
    try:
        context.load_cert_chain(paths.cluster_pki / "admin.crt", paths.cluster_pki / "admin.key")
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/metrics", timeout=10, context=context) as response:
            return str(response.read().decode())
    except (OSError, ssl.SSLError):
        return None


def histogram_delta(before: dict[str, tuple[float, float]],
                    after: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Milliseconds per observation of what was observed between two reads (one pod: its values)."""
    out = {}
    for key, (total, count) in after.items():
        b_total, b_count = before.get(key, (0.0, 0.0))
        if count > b_count:
            short = key.replace("kubelet_", "").replace("_duration_seconds", "").replace("runtime_operations", "op")
            out[short + "_ms"] = round(1000 * (total - b_total) / (count - b_count), 1)
    return out


# -- the session ------------------------------------------------------------------------------


@dataclasses.dataclass
class NodeSession:
    """The real node as the data-plane rows use it: checked once, images pushed once."""

    ctx: BenchContext
    node: str = ""
    images: dict[str, str] = dataclasses.field(default_factory=dict)  # kind -> image@digest (cached runs)
    problem: str | None = None
    runtime_class_created: bool = False
    opened: bool = False

    async def open(self) -> str | None:
        """None when Wasm HTTP pods can be measured, else why not (every data-plane row then skips)."""
        if self.opened:
            return self.problem
        self.opened = True
        self.problem = await self._open()
        return self.problem

    async def _open(self) -> str | None:
        self.node = NODE_NAME
        node = await self.ctx.admin.get(f"/api/v1/nodes/{self.node}")
        if node is None:
            return f"node {self.node} is not registered (start it with `make real-node`)"
        if not any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in (node.get("status") or {}).get("conditions") or []):
            return f"node {self.node} is not Ready"
        try:
            for kind in KINDS:
                say(f"data plane: building/pushing the {LABELS[kind]} image")
                self.images[kind] = await asyncio.to_thread(push_kind, kind)
            self.runtime_class_created = await asyncio.to_thread(workloads.ensure_runtime_class,
                                                                 self.ctx.cluster.kubectl)
        except Exception as exc:
            return f"images not available: {type(exc).__name__}: {str(exc)[:400]}"
        return await self._probe()

    async def _probe(self) -> str | None:
        """One C greeter pod must answer HTTP, or the shim does not serve components (yet)."""
        namespace = self.ctx.namespace("nodeprobe", 1)
        await make_namespace(self.ctx, namespace)
        watch = PodWatch(self.ctx.admin, namespace)
        try:
            await watch.start()
            await create_pod(self.ctx.admin, namespace, http_pod("probe", "wasm-c", self.images["wasm-c"]))
            ip = await watch.ip_of("probe", within=90)
            answered = None
            if ip:
                answered = await asyncio.to_thread(first_response, ip, time.monotonic() + 90)
            if answered is None:
                obj = watch.objects.get("probe") or {}
                events = kubectl(self.ctx.cluster, "get", "events", "-n", namespace, "-o",
                                 "custom-columns=REASON:.reason,MESSAGE:.message", check=False)
                why = stuck_reason(obj) or f"pod IP {ip or 'never assigned'}, no 200 from / within 90s"
                return f"the shim does not serve the C greeter component: {why}; events: {events[-600:]}"
            return None
        finally:
            await watch.stop()
            await delete_namespace(self.ctx.admin, namespace, within=120)

    async def close(self) -> None:
        if self.runtime_class_created:
            await asyncio.to_thread(workloads.delete_runtime_class, self.ctx.cluster.kubectl)


async def make_namespace(ctx: BenchContext, namespace: str) -> None:
    """A namespace whose `default` ServiceAccount exists (pod admission refuses pods before it)."""
    await create_namespace(ctx.admin, namespace)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if await ctx.admin.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/default") is not None:
            return
        await asyncio.sleep(0.2)


def pod_timestamps(obj: dict[str, Any]) -> dict[str, str]:
    """What the pod's status says (one-second resolution): created, scheduled, started, Ready."""
    status = obj.get("status") or {}
    out = {"created": (obj.get("metadata") or {}).get("creationTimestamp", "")}
    for condition in status.get("conditions") or []:
        out[condition.get("type", "?")] = condition.get("lastTransitionTime", "")
    for container in status.get("containerStatuses") or []:
        running = (container.get("state") or {}).get("running") or {}
        if running.get("startedAt"):
            out["containerStarted"] = running["startedAt"]
    return out


def dump(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
