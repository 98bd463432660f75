"""Issue #12: Wasm that really serves. Components answer HTTP on the real node, end to end.

Every test here executes Wasm on `real-node-1` (kubelet + containerd + wasmkube's shim, see
e2e/shim) through the operator: a WasmApp is applied, the operator renders a Deployment and a
Service on the `wasmtime` RuntimeClass, the kubelet runs the pods, their readiness probes hit
the component, and the test talks HTTP to it, either through `kubectl port-forward` on
127.0.0.1 or to the pod IPs on the node's bridge, following the Service's EndpointSlices as
kube-proxy would (e2e/support/traffic.py). No other address is ever sent to.

The components are real and built from source during the run (e2e/registry/components.py):
the C greeter of examples/greeter (wasi:http, no SDK), a Python one built with componentize-py,
a component that imports Spin's host interface, and a `wasi:cli/run` command.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from e2e.node import realnode
from e2e.node import workloads as wl
from e2e.registry import artifacts, components
from e2e.registry.pusher import Pusher
from e2e.support import REGISTRY, Cluster, wait_for
from e2e.support.apps import condition, get, wait_ready, wasmapp
from e2e.support.traffic import (
    EndpointFollower,
    forwarded_port,
    pod_ips,
    ready_endpoints,
    request,
    settled_endpoints,
)

GREETING = "hello from wasm"
PORT = 8080


def http_app(name: str, image: str, replicas: int = 1, **extra: Any) -> dict[str, Any]:
    """A WasmApp serving HTTP on the real node, behind a Service, readiness on /healthz."""
    spec: dict[str, Any] = {
        "runtime": "wasmtime",
        "replicas": replicas,
        "ports": [{"name": "http", "containerPort": PORT}],
        "service": {"port": 80},
        "env": [{"name": "GREETING", "value": GREETING}],
        "probes": {"readiness": {"path": "/healthz"}},
        "nodeSelector": dict(realnode.REAL_NODE_SELECTOR),
        "tolerations": [dict(realnode.REAL_NODE_TOLERATION)],
        **extra,
    }
    return wasmapp(name, image, **spec)


def app_pods(cluster: Cluster, namespace: str, app: str) -> list[dict[str, Any]]:
    return list(cluster.get_json("pods", "-n", namespace, "-l", f"wasmkube.dev/app={app}")["items"])


def pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


@pytest.fixture
def serving(cluster: Cluster, real_node: str, operator: object, pusher: Pusher) -> Iterator[Pusher]:
    """Everything an HTTP test on the real node needs: the node, the operator, a pusher."""
    yield pusher


@pytest.fixture
def port_forward(cluster: Cluster) -> Iterator[Any]:
    """`kubectl port-forward` to a Service on a free 127.0.0.1 port; stopped afterwards."""
    processes: list[subprocess.Popen[str]] = []

    def start(namespace: str, target: str, remote_port: int) -> int:
        cmd = [str(cluster.kubectl_path), f"--kubeconfig={cluster.kubeconfig}", "port-forward", "-n", namespace,
               "--address", "127.0.0.1", target, f"0:{remote_port}"]
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        processes.append(process)
        return forwarded_port(process)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


def test_greeter_ready_after_probe_and_answers_through_port_forward(
    cluster: Cluster, namespace: str, serving: Pusher, port_forward: Any
) -> None:
    """The example's greeter: Ready only once its readiness probe passed; port-forward to the
    Service returns the greeting; the EndpointSlice holds exactly the ready pods."""
    image = artifacts.greeter_http(serving, "http/greeter", "v1").reference
    started = time.monotonic()
    cluster.apply(http_app("greeter", image, replicas=2), namespace)
    app = wait_ready(cluster, "greeter", namespace, timeout=180)
    ready_seconds = time.monotonic() - started
    print(f"\ngreeter (C component) create-to-Ready, 2 replicas: {ready_seconds:.2f}s")

    pods = app_pods(cluster, namespace, "greeter")
    assert len(pods) == 2 and all(pod_ready(p) for p in pods), [p["status"] for p in pods]
    for pod in pods:
        container = pod["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert pod["spec"]["runtimeClassName"] == "wasmtime" and pod["spec"]["nodeName"] == realnode.NODE_NAME
        # The Ready condition can only have come from the kubelet's probe of the component.
        assert pod["status"]["containerStatuses"][0]["ready"] is True
    assert app["status"]["readyReplicas"] == 2

    endpoints = settled_endpoints(cluster, namespace, "greeter")
    assert sorted(ip for ip, _ in endpoints) == sorted(p["status"]["podIP"] for p in pods), endpoints
    assert {port for _, port in endpoints} == {PORT}

    local_port = port_forward(namespace, "service/greeter", 80)
    answer = request("127.0.0.1", local_port, "/")
    print(f"curl via port-forward service/greeter: {answer.status} {answer.body!r}")
    assert (answer.status, answer.body) == (200, f"{GREETING} (v1)\n")
    for ip, port in endpoints:
        assert request(ip, port, "/").body == f"{GREETING} (v1)\n"


def test_trap_answers_500_and_pod_keeps_serving(cluster: Cluster, namespace: str, serving: Pusher) -> None:
    image = artifacts.greeter_http(serving, "http/greeter", "v1").reference
    cluster.apply(http_app("trapper", image), namespace)
    wait_ready(cluster, "trapper", namespace, timeout=180)
    (ip, port), = settled_endpoints(cluster, namespace, "trapper")
    restarts_before = app_pods(cluster, namespace, "trapper")[0]["status"]["containerStatuses"][0]["restartCount"]
    for _ in range(3):
        trapped = request(ip, port, "/trap")
        assert trapped.status == 500, trapped
        assert request(ip, port, "/").status == 200
    pod = app_pods(cluster, namespace, "trapper")[0]
    assert pod["status"]["containerStatuses"][0]["restartCount"] == restarts_before
    assert pod_ready(pod)


def test_c_and_python_components_serve_and_cached_start_is_not_slower(
    cluster: Cluster, namespace: str, serving: Pusher
) -> None:
    """Both real components serve; the second pod of a digest starts from the node's compile
    cache (the shim's precompile hook) and is no slower than the first."""
    timings: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    for name, plain, body in (
        ("c-greeter", components.greeter_component("v1"), f"{GREETING} (v1)\n"),
        ("py-greeter", components.python_http_component(), None),
    ):
        data = components.with_custom_section(plain, namespace)
        sizes[name] = len(data)
        image = artifacts.component(serving, f"http/{name}", namespace[-6:], data).reference
        for round_ in ("first", "cached"):
            app = f"{name}-{round_}"
            started = time.monotonic()
            cluster.apply(http_app(app, image), namespace)
            wait_ready(cluster, app, namespace, timeout=240)
            seconds = time.monotonic() - started
            timings.setdefault(name, []).append(seconds)
            (ip, port), = settled_endpoints(cluster, namespace, app)
            answer = request(ip, port, "/")
            assert answer.status == 200, answer
            if body is not None:
                assert answer.body == body
            else:
                assert GREETING in answer.body and "python" in answer.body, answer
    for name, (first, cached) in timings.items():
        print(f"\n{name} ({sizes[name] / 1e6:.2f} MB): create-to-Ready first {first:.2f}s, cached {cached:.2f}s")
    first, cached = timings["py-greeter"]
    # The large component is where compiling shows: the cached start must not be slower.
    assert cached <= first, timings


def test_zero_downtime_rollout_image_change_and_track_tag(
    cluster: Cluster, namespace: str, serving: Pusher
) -> None:
    """Requests without pause to the ready endpoints while the app rolls v1 -> v2 (image change)
    and then v2 -> v3 (a Track tag moving): no failed request, and the answers switch."""
    repo = f"http/rollout-{namespace[-6:]}"
    v1 = artifacts.greeter_http(serving, repo, "v1").reference
    v2 = artifacts.greeter_http(serving, repo, "v2", version="v2").reference
    cluster.apply(http_app("roller", v1, replicas=2), namespace)
    wait_ready(cluster, "roller", namespace, timeout=180)

    def rolled_to(version: str) -> bool:
        pods = [p for p in app_pods(cluster, namespace, "roller") if not p["metadata"].get("deletionTimestamp")]
        targets = ready_endpoints(cluster, namespace, "roller")
        if len(pods) != 2 or len(targets) != 2:
            return False
        return all(request(ip, port, "/").body == f"{GREETING} ({version})\n" for ip, port in targets)

    with EndpointFollower(cluster, namespace, "roller", max_requests=150_000, max_seconds=240) as traffic:
        time.sleep(1)
        cluster.apply(http_app("roller", v2, replicas=2), namespace)
        wait_for(lambda: rolled_to("v2"), timeout=120, interval=0.5, message="all endpoints answering v2")
        # Track: follow the tag `stable`; moving it to new bytes rolls out the new digest.
        artifacts.greeter_http(serving, repo, "stable", version="v2")
        cluster.apply(http_app("roller", f"{REGISTRY}/{repo}:stable", replicas=2,
                               updatePolicy="Track", trackIntervalSeconds=30), namespace)
        time.sleep(2)
        artifacts.greeter_http(serving, repo, "stable", version="v3")
        wait_for(lambda: rolled_to("v3"), timeout=120, interval=0.5, message="all endpoints answering v3")
        time.sleep(1)
    tally = traffic.tally
    print(f"\nrollout traffic: {tally.sent} requests, bodies {dict(tally.bodies)}, {len(tally.failures)} failed")
    assert tally.failures == [], tally.failures[:20]
    assert {f"{GREETING} (v1)\n", f"{GREETING} (v2)\n", f"{GREETING} (v3)\n"} <= set(tally.bodies)
    assert tally.first_seen[f"{GREETING} (v1)\n"] < tally.first_seen[f"{GREETING} (v2)\n"] < \
        tally.first_seen[f"{GREETING} (v3)\n"]
    assert tally.sent > 200, "the client must really have sent without pause"


def test_in_flight_requests_finish_when_a_pod_stops(cluster: Cluster, namespace: str, serving: Pusher) -> None:
    """Graceful drain: a request in flight when its pod is deleted still gets its answer."""
    image = artifacts.greeter_http(serving, "http/greeter", "v1").reference
    cluster.apply(http_app("drainer", image), namespace)
    wait_ready(cluster, "drainer", namespace, timeout=180)
    (ip, port), = settled_endpoints(cluster, namespace, "drainer")
    pod = app_pods(cluster, namespace, "drainer")[0]["metadata"]["name"]
    import threading

    answers: list[Any] = []
    slow = threading.Thread(target=lambda: answers.append(request(ip, port, "/slow?ms=4000", timeout=30)))
    slow.start()
    time.sleep(0.5)
    cluster.kubectl("delete", "pod", "-n", namespace, pod, "--wait=false")
    slow.join(timeout=40)
    assert answers and answers[0].status == 200, answers


def test_unhealthy_and_uninstantiable_components_report_clearly(
    cluster: Cluster, namespace: str, serving: Pusher
) -> None:
    """/healthz answering 500 keeps the app not Ready with the probe's message; a component
    importing Spin's interfaces is Stalled naming the import; a healthy app beside them serves."""
    healthy = artifacts.greeter_http(serving, "http/greeter", "v1").reference
    sick = artifacts.greeter_http(serving, "http/sick", "v1", healthz_status=500).reference
    spin = artifacts.spin_import_http(serving, "http/spin-import", "v1").reference
    cluster.apply([http_app("healthy", healthy), http_app("sick", sick), http_app("spinny", spin)], namespace)
    wait_ready(cluster, "healthy", namespace, timeout=180)

    def stalled_naming_import() -> Any:
        app = get(cluster, "wasmapp", "spinny", namespace)
        stalled = condition(app, "Stalled")
        if stalled and stalled.get("status") == "True" and "fermyon:spin" in stalled.get("message", ""):
            return stalled
        return None

    stalled = wait_for(stalled_naming_import, timeout=180, interval=1, message="spinny Stalled naming fermyon:spin")
    print(f"\nspinny Stalled: {stalled['reason']}: {stalled['message'][:300]}")

    def sick_reason() -> Any:
        ready = condition(get(cluster, "wasmapp", "sick", namespace), "Ready")
        if ready and ready["status"] == "False" and "500" in ready.get("message", ""):
            return ready
        return None

    ready = wait_for(sick_reason, timeout=120, interval=1, message="sick not Ready with the probe's status 500")
    print(f"sick not Ready: {ready['reason']}: {ready['message'][:300]}")
    assert ready_endpoints(cluster, namespace, "sick") == []
    (ip, port), = settled_endpoints(cluster, namespace, "healthy")
    assert request(ip, port, "/").status == 200
    assert condition(get(cluster, "wasmapp", "healthy", namespace), "Ready")["status"] == "True"


def test_wasm_http_pod_and_container_pod_answer_on_one_node(
    cluster: Cluster, namespace: str, serving: Pusher
) -> None:
    image = artifacts.greeter_http(serving, "http/greeter", "v1").reference
    cluster.apply(http_app("side-wasm", image), namespace)
    busybox = artifacts.container_image(serving, "realnode/busybox", "v1")
    container = wl.container_pod("side-container", f"{REGISTRY}/realnode/busybox@{busybox.digest}",
                                 "mkdir -p /tmp/www && echo container answer > /tmp/www/index.html && "
                                 "exec httpd -f -p 8080 -h /tmp/www")
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(container))
    wait_ready(cluster, "side-wasm", namespace, timeout=180)
    wl.wait_running(cluster.kubectl, namespace, "side-container", time.monotonic())
    container_ip = wait_for(lambda: cluster.get_json("pod", "-n", namespace, "side-container")["status"].get("podIP"),
                            timeout=30, message="container pod IP")
    (wasm_ip, wasm_port), = settled_endpoints(cluster, namespace, "side-wasm")
    wasm_answer = request(wasm_ip, wasm_port, "/")
    container_answer = wait_for(lambda: (a := request(container_ip, 8080, "/")).status == 200 and a,
                                timeout=30, message="busybox httpd answering")
    print(f"\nwasm pod {wasm_ip}: {wasm_answer.body!r}; container pod {container_ip}: {container_answer.body!r}")
    assert wasm_answer.body == f"{GREETING} (v1)\n"
    assert container_answer.body == "container answer\n"
    assert wasm_ip in pod_ips(cluster, namespace, "wasmkube.dev/app=side-wasm")


def test_command_component_exit_code(cluster: Cluster, namespace: str, real_node: str,
                                     wasmtime_runtime_class: str, pusher: Pusher) -> None:
    """A `wasi:cli/run` component runs to completion; its result is the pod's exit code
    (`wasi:cli/exit@0.2` carries only success or failure, so any failure is exit 1)."""
    image = artifacts.cli_command(pusher, "cli/command", "v1").reference
    for name, code in (("ok", "0"), ("fails", "3")):
        pod = wl.wasm_pod(name, image, command=["/"], args=["--flag"], restart_policy="Never",
                          env={"WASMKUBE_GREETING": "from-env", "EXIT_CODE": code})
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
    for name, exit_code in (("ok", 0), ("fails", 1)):
        done = wl.wait_phase(cluster.kubectl, namespace, name, {"Succeeded", "Failed"})
        terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
        assert terminated["exitCode"] == exit_code, terminated
        log = cluster.kubectl("logs", "-n", namespace, name).stdout
        assert "from-env" in log and "--flag" in log, log
