"""Issue #6: a real node runs Wasm pods next to ordinary container pods.

`real-node-1` is a real kubelet + containerd (e2e/node/realnode.py) with wasmkube's wasmtime shim
(e2e/shim) behind the RuntimeClass handler `wasmtime`. These tests push real artifacts to the local
registry, run them there, and read their output through `kubectl logs`, i.e. through the
apiserver -> kubelet -> container log path.

The node and its fixtures (`real_node`, `wasmtime_runtime_class`, `pusher`) live in
e2e/support/realnode_fixtures.py, shared with the other files that execute Wasm.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable

import pytest

from e2e.node import realnode
from e2e.node import workloads as wl
from e2e.registry import artifacts
from e2e.registry.pusher import Pusher
from e2e.support import REGISTRY, Cluster
from e2e.support.waiting import TimedOut, wait_for


def _create(cluster: Cluster, namespace: str, pod: dict[str, object]) -> float:
    """Create a pod; returns time.monotonic() just before the request, for create-to-Running."""
    started = time.monotonic()
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    return started


def _logs(cluster: Cluster, namespace: str, name: str, expect: str, timeout: float = 30) -> str:
    """`kubectl logs` (apiserver -> kubelet on 127.0.0.1:10250) once it shows `expect`."""
    def showing() -> subprocess.CompletedProcess[str] | None:
        result = cluster.kubectl("logs", "-n", namespace, name, check=False)
        return result if expect in result.stdout else None

    try:
        result = wait_for(showing, timeout, 0.5, f"{expect!r} in the log of {name}")
    except TimedOut:  # hand back what the log says: the caller's assertion on it shows what is missing
        result = cluster.kubectl("logs", "-n", namespace, name, check=False)
    assert result.returncode == 0, f"kubectl logs {name} failed: {result.stderr}"
    return result.stdout


def test_wasm_pod_runs_next_to_container_pod(
    cluster: Cluster, namespace: str, real_node: str, wasmtime_runtime_class: str, pusher: Pusher
) -> None:
    module = wl.push_sleeper_module(pusher)
    busybox = artifacts.container_image(pusher, "realnode/busybox", "v1")
    busybox_image = f"{REGISTRY}/realnode/busybox@{busybox.digest}"

    wasm = wl.wasm_pod("wasm", module.image, command=["/"], args=["--from-args"],
                       env={"WASMKUBE_GREETING": "hi-from-env"})
    container = wl.container_pod("container", busybox_image, "echo container side; sleep 3600")
    wasm_started = _create(cluster, namespace, wasm)
    container_started = _create(cluster, namespace, container)
    wasm_seconds = wl.wait_running(cluster.kubectl, namespace, "wasm", wasm_started)
    container_seconds = wl.wait_running(cluster.kubectl, namespace, "container", container_started)
    print(f"\ncreate-to-Running on {real_node}: wasm pod {wasm_seconds:.1f}s, container pod {container_seconds:.1f}s")

    wasm_log = _logs(cluster, namespace, "wasm", wl.SLEEPER_GREETING)
    print(f"kubectl logs wasm:\n{wasm_log}")
    assert wl.SLEEPER_GREETING in wasm_log
    assert "argv[0]=/" in wasm_log and "argv[1]=--from-args" in wasm_log, wasm_log
    assert "env WASMKUBE_GREETING=hi-from-env" in wasm_log, wasm_log
    assert "hostname=wasm" in wasm_log, wasm_log  # /etc/hostname, read through the `/` preopen
    assert "container side" in _logs(cluster, namespace, "container", "container side")

    wide = cluster.kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout
    print(wide)
    rows = {line.split()[0]: line.split() for line in wide.splitlines()[1:]}
    for name in ("wasm", "container"):
        assert rows[name][2] == "Running", wide
        assert real_node in rows[name], wide


@pytest.mark.parametrize(
    ("push", "command"),
    [
        pytest.param(wl.push_cncf_module, ["/"], id="cncf-artifact"),
        # runwasi's layout names its module in the image config (Entrypoint), so no command.
        pytest.param(wl.push_wasm_layers_module, None, id="wasm-layers-image"),
    ],
)
def test_wasm_module_runs_to_completion(
    cluster: Cluster, namespace: str, real_node: str, wasmtime_runtime_class: str, pusher: Pusher,
    push: Callable[[Pusher], wl.PushedModule], command: list[str] | None,
) -> None:
    """The stock hello module (prints one line, exits 0) in both Wasm OCI layouts."""
    module = push(pusher)
    pod = wl.wasm_pod("hello", module.image, command=command, restart_policy="Never")
    started = _create(cluster, namespace, pod)
    done = wl.wait_phase(cluster.kubectl, namespace, "hello", {"Succeeded", "Failed"})
    print(f"\n{push.__name__}: create-to-{done['status']['phase']} {time.monotonic() - started:.1f}s")
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (done["status"]["phase"], terminated["exitCode"]) == ("Succeeded", 0), terminated
    assert wl.SLEEPER_GREETING in _logs(cluster, namespace, "hello", wl.SLEEPER_GREETING)


def test_wasmapp_runs_as_real_wasm_beside_a_container(
    cluster: Cluster, namespace: str, real_node: str, operator: object, pusher: Pusher
) -> None:
    """The whole product path: a WasmApp, reconciled by the operator into a Deployment on the
    `wasmtime` RuntimeClass (restricted security context and all), runs as real Wasm on the real
    node, beside an ordinary container pod."""
    from e2e.support.apps import wait_ready, wasmapp

    module = wl.push_sleeper_module(pusher, "realnode/operator-sleeper", "v1")
    tag_reference = f"{REGISTRY}/realnode/operator-sleeper:v1"
    busybox = artifacts.container_image(pusher, "realnode/busybox", "v1")

    started = time.monotonic()
    cluster.apply(wasmapp("real-wasm", tag_reference, runtime="wasmtime",
                          nodeSelector=dict(realnode.REAL_NODE_SELECTOR),
                          tolerations=[dict(realnode.REAL_NODE_TOLERATION)],
                          env=[{"name": "WASMKUBE_GREETING", "value": "from-a-wasmapp"}]), namespace)
    container_started = _create(cluster, namespace, wl.container_pod(
        "container", f"{REGISTRY}/realnode/busybox@{busybox.digest}", "echo container side; sleep 3600"))
    app = wait_ready(cluster, "real-wasm", namespace, timeout=180)
    wasm_seconds = time.monotonic() - started
    container_seconds = wl.wait_running(cluster.kubectl, namespace, "container", container_started)
    print(f"\nWasmApp create-to-Ready on {real_node}: {wasm_seconds:.1f}s; container pod create-to-Running: "
          f"{container_seconds:.1f}s")
    assert app["status"]["artifact"]["digest"] == module.digest

    pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", "wasmkube.dev/app=real-wasm",
                                      "-o", "json").stdout)["items"]
    assert len(pods) == 1 and pods[0]["spec"]["nodeName"] == real_node
    assert pods[0]["spec"]["runtimeClassName"] == "wasmtime"
    assert pods[0]["status"]["phase"] == "Running"
    log = _logs(cluster, namespace, pods[0]["metadata"]["name"], wl.SLEEPER_GREETING)
    print(f"kubectl logs (WasmApp pod):\n{log}")
    assert wl.SLEEPER_GREETING in log and "env WASMKUBE_GREETING=from-a-wasmapp" in log, log
    print(cluster.kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout)
