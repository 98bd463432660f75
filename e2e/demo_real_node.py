"""The real-node part of `make demo`: a WasmApp that runs as real Wasm beside a container.

KWOK nodes only schedule. When this machine can run `real-node-1` (e2e/node/realnode.py: kubelet,
containerd and wasmkube's wasmtime shim) and its binaries are already built, the demo starts it
and runs there: the example `greeter` (examples/http-app.yaml, a real wasi:http component built
from examples/greeter), a WasmApp running a WASI module, and one ordinary container pod. It
shows them Running, prints the module's own output and the greeter's actual HTTP answer
(through `kubectl port-forward` on 127.0.0.1). Otherwise it says why it falls back to KWOK nodes
only, and that nothing was executed.

WASMKUBE_DEMO_REAL_NODE chooses: `auto` (default: only with a warm cache, since a cold build of
the shim takes about 35 minutes on two cores), `1` (build what is missing, then use it), `0` (never).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from e2e.node import NODE_NAME, NodeError, NodeUnsupported, binaries_cached, ensure_real_node, realnode
from e2e.node import workloads as wl
from e2e.registry import artifacts
from e2e.registry.pusher import Pusher
from e2e.support import REGISTRY, Cluster, wait_for
from e2e.support.activator import BRIDGE_GATEWAY, WASMAPP, ActivatorProcess, http_request, service_slice, slice_target
from e2e.support.traffic import forwarded_port

SETTING = "WASMKUBE_DEMO_REAL_NODE"
NAMESPACE = "real-node-demo"
APP = "hello-real"
HTTP_APP = "greeter"
HTTP_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "http-app.yaml"
ZERO_APP = "greeter-zero"
ZERO_EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "scale-to-zero.yaml"


def fallback_reason() -> str | None:
    """Why the demo will not use a real node, or None when it will."""
    setting = os.environ.get(SETTING, "auto")
    if setting == "0":
        return f"{SETTING}=0"
    problems = realnode.preflight(realnode.NodePaths.from_env())
    if problems:
        return "this machine cannot run one: " + "; ".join(problems)
    if setting != "1" and not binaries_cached():
        return (f"its binaries are not built yet (containerd ~6 min, the Wasm shim ~35 min on 2 cores); "
                f"`{SETTING}=1 make demo` builds them once, later runs reuse the cache")
    return None


def start(say: Callable[[str], None]) -> bool:
    """Bring real-node-1 up if the demo should use it; True when it is up."""
    reason = fallback_reason()
    if reason is None:
        say(f"starting {NODE_NAME}: a real kubelet + containerd + the wasmtime shim (Wasm runs for real)")
        try:
            ensure_real_node()
            return True
        except (NodeError, NodeUnsupported) as err:
            reason = f"it did not start: {err}"
    say(f"FALLING BACK to KWOK nodes only (pods are scheduled, not run): no real node, because {reason}")
    return False


def apply_workloads(cluster: Cluster, busybox: artifacts.PushedArtifact) -> None:
    """A WasmApp pinned to the real node, and a pod of the examples' busybox image beside it."""
    pusher = Pusher(REGISTRY)
    try:
        wl.push_sleeper_module(pusher, "examples/sleeper", "v1")
    finally:
        pusher.close()
    cluster.kubectl("create", "namespace", NAMESPACE, check=False)
    app = {
        "apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp",
        "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {"image": f"{REGISTRY}/examples/sleeper:v1", "runtime": "wasmtime",
                 "nodeSelector": dict(realnode.REAL_NODE_SELECTOR),
                 "tolerations": [dict(realnode.REAL_NODE_TOLERATION)],
                 "env": [{"name": "WASMKUBE_GREETING", "value": "hello from make demo"}]},
    }  # fmt: skip
    repository = busybox.reference.rsplit(":", 1)[0]
    container = wl.container_pod("busybox", f"{repository}@{busybox.digest}",
                                 "echo a container beside the Wasm pod; sleep 86400")
    container["metadata"]["namespace"] = NAMESPACE
    cluster.apply([app, container, greeter_on_real_node(), greeter_on_real_node(ZERO_EXAMPLE)])


def greeter_on_real_node(example: Path = HTTP_EXAMPLE) -> dict[str, Any]:
    """An example's greeter (examples/http-app.yaml by default) as it is, plus what puts it on the real node."""
    greeter: dict[str, Any] = yaml.safe_load(example.read_text())
    greeter["metadata"]["namespace"] = NAMESPACE
    greeter["spec"]["nodeSelector"] = dict(realnode.REAL_NODE_SELECTOR)
    greeter["spec"]["tolerations"] = [dict(realnode.REAL_NODE_TOLERATION)]
    return greeter


def show(cluster: Cluster, say: Callable[[str], None]) -> None:
    def running() -> bool:
        pods = json.loads(cluster.kubectl("get", "pods", "-n", NAMESPACE, "-o", "json").stdout)["items"]
        return len(pods) >= 3 and all(p.get("status", {}).get("phase") == "Running" for p in pods)

    wait_for(running, timeout=180, interval=1, message=f"the Wasm and container pods Running on {NODE_NAME}")
    say(f"on the real node {NODE_NAME}: a Wasm pod (runtimeClassName wasmtime) beside a container pod (runc)")
    print(cluster.kubectl("get", "pods", "-n", NAMESPACE, "-o",
                          "custom-columns=POD:.metadata.name,STATUS:.status.phase,NODE:.spec.nodeName,"
                          "RUNTIMECLASS:.spec.runtimeClassName").stdout)
    say(f"kubectl logs -n {NAMESPACE} -l wasmkube.dev/app={APP}  (the Wasm module's own output)")
    print(cluster.kubectl("logs", "-n", NAMESPACE, "-l", f"wasmkube.dev/app={APP}", "--tail=20").stdout)


def show_http_answer(cluster: Cluster, say: Callable[[str], None]) -> str:
    """`kubectl port-forward service/greeter` on 127.0.0.1 and one GET /: the component's answer."""
    command = [str(cluster.kubectl_path), f"--kubeconfig={cluster.kubeconfig}", "port-forward", "-n", NAMESPACE,
               "--address", "127.0.0.1", f"service/{HTTP_APP}", "0:80"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = forwarded_port(process)
        say(f"curl http://127.0.0.1:{port}/   (kubectl port-forward -n {NAMESPACE} service/{HTTP_APP} {port}:80)")
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            body = response.read().decode()
            print(f"HTTP {response.status}: {body}", end="" if body.endswith("\n") else "\n")
        return body
    finally:
        process.terminate()
        process.wait(timeout=10)


def start_activator(kubeconfig: Path, log_path: Path) -> ActivatorProcess:
    """The chart's activator, run as its ServiceAccount on the real node's bridge gateway.

    KWOK nodes execute nothing, so the chart's activator pods cannot hold a request; a host
    process on 10.222.0.1 can, and the real node's pods and this machine both reach it there."""
    activator = ActivatorProcess(kubeconfig, log_path, BRIDGE_GATEWAY, NAMESPACE,
                                 extra_args=["--log-format", "console"])  # fmt: skip
    activator.start()
    return activator


def show_scale_to_zero(cluster: Cluster, activator: ActivatorProcess, say: Callable[[str], None]) -> None:
    """examples/scale-to-zero.yaml: Ready, idle -> 0 replicas, then one curl wakes it."""

    def reason() -> str:
        app = json.loads(cluster.kubectl("get", WASMAPP, ZERO_APP, "-n", NAMESPACE, "-o", "json").stdout)
        ready = [c for c in (app.get("status") or {}).get("conditions", []) if c["type"] == "Ready"]
        return str(ready[0].get("reason")) if ready and ready[0]["status"] == "True" else ""

    columns = ("custom-columns=NAME:.metadata.name,READY:.status.conditions[?(@.type=='Ready')].status,"
               "REASON:.status.conditions[?(@.type=='Ready')].reason,REPLICAS:.status.replicas")
    say(f"scale to zero: {ZERO_APP} (examples/scale-to-zero.yaml, idleSeconds 10) waits for its first idle period")
    started = time.monotonic()
    wait_for(lambda: reason() == "ScaledToZero", timeout=120, interval=1, message=f"{ZERO_APP} ScaledToZero")
    print(f"idle -> 0 replicas after {time.monotonic() - started:.0f}s:")
    print(cluster.kubectl("get", WASMAPP, ZERO_APP, "-n", NAMESPACE, "-o", columns).stdout)
    target, endpoints = slice_target(service_slice(cluster, NAMESPACE, ZERO_APP))
    address, port = endpoints[0]
    say(f"curl -H 'Host: {ZERO_APP}.{NAMESPACE}' http://{address}:{port}/   (where the Service's EndpointSlice "
        f"points at zero: the {target}, as kube-proxy would send it)")
    answer = http_request(address, port, "/", host=f"{ZERO_APP}.{NAMESPACE}", timeout=30)
    print(f"HTTP {answer.status} after {answer.seconds:.2f}s (woken from zero): {answer.body.strip()}")
    wait_for(lambda: slice_target(service_slice(cluster, NAMESPACE, ZERO_APP))[0] == "pods", timeout=30,
             interval=0.5, message=f"{ZERO_APP}'s Service back on its pod")  # fmt: skip
    print(cluster.kubectl("get", WASMAPP, ZERO_APP, "-n", NAMESPACE, "-o", columns).stdout)
    print("awake again: the Service points at the pod; after idleSeconds (10) without a request it goes back to zero. "
          f"The activator: {activator.endpoint} (log {activator.log_path}).")
