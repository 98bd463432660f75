"""`make demo`: the local cluster, the operator installed with its Helm chart, the examples Ready.

KWOK nodes schedule pods but run nothing, so the operator Deployment the chart creates cannot
really run there. The demo therefore installs the chart with the operator scaled to zero (CRDs,
RBAC, ServiceAccount and default WasmRuntimes all come from the chart) and runs `wasmkube run`
as a local process with the chart's arguments, authenticated as the chart's ServiceAccount, so it
has exactly the chart's permissions (`support/chart.py`). `python -m e2e.demo down` stops it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import yaml

from e2e import demo_real_node
from e2e.cluster.api import ApiClient
from e2e.cluster.heal import replace_pods_left_not_ready
from e2e.cluster.paths import Paths
from e2e.support import REGISTRY, Cluster, binary, state, wait_for
from e2e.support.activator import BRIDGE_GATEWAY, ActivatorProcess
from e2e.support.chart import Release, service_account_kubeconfig
from e2e.support.operator_fixtures import ExampleImages, push_examples
from e2e.support.supervisor import terminate_groups

REPO = state.REPO_ROOT
STATE = state.state_root()
RELEASE, NAMESPACE = "wasmkube", "wasmkube-system"
PID_FILE = STATE / "demo-operator.pid"
LOG_FILE = STATE / "demo-operator.log"
ACTIVATOR_PID_FILE = STATE / "demo-activator.pid"
ACTIVATOR_LOG_FILE = STATE / "demo-activator.log"
EXAMPLES = ["minimal.yaml", "http-app.yaml", "autoscaled.yaml", "spin-app.yaml", "mixed-namespace.yaml"]


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def helm(cluster: Cluster, *args: str) -> None:
    subprocess.run([str(binary("helm")), f"--kubeconfig={cluster.kubeconfig}", *args], check=True)


def install_chart(cluster: Cluster) -> None:
    say("installing the operator with charts/wasmkube (operator scaled to 0: KWOK nodes run nothing)")
    args = ["upgrade", "--install", RELEASE, str(REPO / "charts" / "wasmkube"), "--namespace", NAMESPACE,
            "--create-namespace", "--set", "replicas=0", "--set", f"registry.insecure={{{REGISTRY}}}",
            "--take-ownership", "--wait"]
    helm(cluster, *args)
    # A first install creates the CRDs, and Helm cannot create WasmRuntimes in that same release
    # (it maps every object to an API before creating any): the upgrade adds them.
    helm(cluster, *args)


def stop_operator() -> None:
    for pid_file in (PID_FILE, ACTIVATOR_PID_FILE):
        stop_process(pid_file)


def stop_process(pid_file: Path) -> None:
    """SIGTERM the process group recorded in `pid_file` (SIGKILL after 10 s), then forget it."""
    if not pid_file.exists():
        return
    terminate_groups([int(pid_file.read_text())], 10)
    pid_file.unlink(missing_ok=True)


def start_operator(cluster: Cluster, activator_address: str | None = None) -> None:
    """The operator with the chart's arguments; told a fixed activator address when one runs here."""
    stop_process(PID_FILE)
    say(f"starting the operator as the chart's ServiceAccount (log: {LOG_FILE.relative_to(REPO)})")
    process = Release(cluster, RELEASE, NAMESPACE).operator_process(LOG_FILE)
    if activator_address:
        args = process.extra_args
        if "--activator-service" in args:
            at = args.index("--activator-service")
            del args[at:at + 2]  # the flag and its value
        args += ["--activator-address", activator_address]
    process.start()
    PID_FILE.write_text(str(process.pid))


def start_activator(cluster: Cluster) -> ActivatorProcess:
    stop_process(ACTIVATOR_PID_FILE)
    say(f"starting the activator as the chart's ServiceAccount on {BRIDGE_GATEWAY} "
        f"(log: {ACTIVATOR_LOG_FILE.relative_to(REPO)})")
    kubeconfig = service_account_kubeconfig(cluster, f"{RELEASE}-activator", NAMESPACE,
                                            STATE / "demo-activator-kubeconfig")  # fmt: skip
    activator = demo_real_node.start_activator(kubeconfig, ACTIVATOR_LOG_FILE)
    ACTIVATOR_PID_FILE.write_text(str(activator.pid))
    return activator


def example_apps() -> set[tuple[str, str]]:
    """(namespace, name) of every WasmApp in the examples the demo applies."""
    docs = (doc for name in EXAMPLES for doc in yaml.safe_load_all((REPO / "examples" / name).read_text()))
    return {(d["metadata"].get("namespace", "default"), d["metadata"]["name"])
            for d in docs if d and d.get("kind") == "WasmApp"}


def apply_examples(cluster: Cluster) -> ExampleImages:
    say(f"building the example greeter from examples/greeter (cached) and pushing the example artifacts to "
        f"the local registry {REGISTRY}")
    images = push_examples(REGISTRY)  # examples/greeter-http:v1 is the real wasi:http component
    print(f"{images.component.reference} ({images.component.digest[:19]}): examples/greeter/greeter.c "
          "as a wasi:http component", flush=True)
    say("applying examples/")
    for name in EXAMPLES:
        cluster.kubectl("apply", "-f", str(REPO / "examples" / name))
    return images


def wait_ready(cluster: Cluster, apps: set[tuple[str, str]]) -> None:
    """Wait for the demo's own WasmApps (a cluster shared with tests may hold others)."""
    say(f"waiting for the {len(apps)} WasmApps to be Ready")

    def not_ready() -> set[tuple[str, str]]:
        items = json.loads(cluster.kubectl("get", "wasmapps", "-A", "-o", "json").stdout)["items"]
        ready = {(a["metadata"]["namespace"], a["metadata"]["name"]) for a in items
                 if any(c["type"] == "Ready" and c["status"] == "True"
                        for c in (a.get("status") or {}).get("conditions", []))}
        return apps - ready

    api = ApiClient(Paths.from_env().pki)

    def healed_and_ready() -> bool:
        # A pause of the host while the demo waits (a laptop's sleep) leaves KWOK pods marked not
        # Ready for good; replace those as `make cluster` would, so the wait can still succeed.
        replace_pods_left_not_ready(api)
        return not not_ready()

    wait_for(healed_and_ready, timeout=120, interval=1, message="the demo's WasmApps Ready")


def up() -> None:
    cluster = Cluster.local()
    install_chart(cluster)
    real_node = demo_real_node.start(say)
    activator = start_activator(cluster) if real_node else None
    start_operator(cluster, activator.endpoint if activator else None)
    images = apply_examples(cluster)
    apps = example_apps()
    if real_node:
        demo_real_node.apply_workloads(cluster, images.container)
        apps |= {(demo_real_node.NAMESPACE, name)
                 for name in (demo_real_node.APP, demo_real_node.HTTP_APP, demo_real_node.ZERO_APP)}
    wait_ready(cluster, apps)
    say("kubectl get wasmruntimes")
    print(cluster.kubectl("get", "wasmruntimes").stdout)
    say("kubectl get wasmapps,deployments,pods -o wide -A")
    print(cluster.kubectl("get", "wasmapps,deployments,pods", "-o", "wide", "-A",
                          "-l", "app.kubernetes.io/managed-by=wasmkube").stdout)
    print(cluster.kubectl("get", "wasmapps", "-o", "wide", "-A").stdout)
    say("Wasm pods run only on the shim nodes (wasm-node-*, spin-node-1); the container pod runs on runc:")
    print(cluster.kubectl("get", "pods", "-n", "mixed", "-o", "wide").stdout)
    if real_node:
        demo_real_node.show(cluster, say)
        demo_real_node.show_http_answer(cluster, say)
        assert activator is not None
        demo_real_node.show_scale_to_zero(cluster, activator, say)
        print("The examples above run on KWOK nodes (scheduled, not executed); the real-node-demo namespace "
              "runs for real: that answer came from a Wasm component on real-node-1.")
    else:
        print("Every node is KWOK (simulated): pods are scheduled for real but not executed, so no Wasm ran "
              "and nothing answered HTTP.")
    print(f"Export KUBECONFIG={cluster.kubeconfig} to explore; `make demo-down` stops the operator, "
          "`make cluster-down` everything.")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["up", "down"])
    args = parser.parse_args()
    if args.action == "up":
        up()
    else:
        stop_operator()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
