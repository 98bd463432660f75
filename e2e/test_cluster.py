"""Tests of the local cluster itself: the behaviour wasmkube's own tests rely on.

Each test exercises one real component (apiserver admission, controller-manager controllers,
scheduler, KWOK's fake kubelets, the registry), so a broken cluster fails here with a pointed
message instead of as a confusing operator test failure.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from e2e.support import Cluster, KubectlError, wait_for

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
WASM_NODES = {"wasm-node-1", "wasm-node-2", "spin-node-1"}
WASM_ONLY_TOLERATION = {"key": "wasmkube.dev/wasm-only", "operator": "Equal", "value": "true",
                        "effect": "NoSchedule"}


def deployment(name: str, replicas: int, **pod_spec: Any) -> dict[str, Any]:
    """A Deployment of pause containers; KWOK marks its pods Running without pulling anything."""
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "main", "image": PAUSE_IMAGE}], **pod_spec},
            },
        },
    }


def pod(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": PAUSE_IMAGE}], **spec}}


def running_pods(cluster: Cluster, namespace: str, app: str, count: int) -> list[dict[str, Any]]:
    """The app's pods once exactly `count` of them are Running (empty list until then)."""
    pods = cluster.get_json("pods", "-n", namespace, "-l", f"app={app}")["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    return running if len(running) == count == len(pods) else []


def test_version_is_pinned_release(cluster: Cluster) -> None:
    version = json.loads(cluster.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == "v1.34.4"


def test_nodes_exist_with_labels_and_are_ready(cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.get_json("nodes")["items"]}
    assert set(nodes) >= {"wasm-node-1", "wasm-node-2", "spin-node-1", "container-node-1"}
    for name in ("wasm-node-1", "wasm-node-2", "spin-node-1", "container-node-1"):
        node = nodes[name]
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == name
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["type"] == "kwok"
        assert (labels.get("wasmkube.dev/shim-wasmtime") == "ready") == (name in WASM_NODES)
        assert (labels.get("wasmkube.dev/shim-spin") == "ready") == (name == "spin-node-1")
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", f"{name} not Ready"
        assert node["status"]["allocatable"]["pods"] in ("1000", "1k")  # KWOK re-serialises it
        assert node["status"]["allocatable"]["cpu"] == "32"
    taints = [(t["key"], t["value"], t["effect"]) for t in nodes["spin-node-1"]["spec"].get("taints", [])]
    assert ("wasmkube.dev/wasm-only", "true", "NoSchedule") in taints


def test_deployment_gets_replicaset_and_running_pods(cluster: Cluster, namespace: str) -> None:
    """controller-manager (deployment + replicaset controllers), scheduler and KWOK together."""
    cluster.apply(deployment("pause", 3), namespace)
    wait_for(lambda: running_pods(cluster, namespace, "pause", 3), timeout=60,
             message="3 Running pods of deployment pause")
    replicasets = cluster.get_json("replicasets", "-n", namespace, "-l", "app=pause")["items"]
    assert len(replicasets) == 1
    assert replicasets[0]["metadata"]["ownerReferences"][0]["name"] == "pause"
    status = wait_for(
        lambda: (d := cluster.get_json("deployment", "pause", "-n", namespace)["status"])
        .get("readyReplicas") == 3 and d, timeout=60, message="deployment pause readyReplicas=3")
    assert status["availableReplicas"] == 3


@pytest.fixture
def wasm_runtimeclass(cluster: Cluster, namespace: str) -> Any:
    """A RuntimeClass (cluster-scoped, so named after the test namespace) that schedules onto the
    nodes labelled as having the wasmtime shim."""
    name = f"wasmtime-{namespace}"[:63]
    cluster.apply({
        "apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
        "metadata": {"name": name},
        "handler": "wasmtime",
        "scheduling": {"nodeSelector": {"wasmkube.dev/shim-wasmtime": "ready"}},
    })
    yield name
    cluster.kubectl("delete", "runtimeclass", name, "--ignore-not-found", "--wait=false", check=False)


def test_runtimeclass_schedules_only_onto_wasm_nodes(
        cluster: Cluster, namespace: str, wasm_runtimeclass: str) -> None:
    cluster.apply(deployment("wasm", 8, runtimeClassName=wasm_runtimeclass), namespace)
    pods = wait_for(lambda: running_pods(cluster, namespace, "wasm", 8), timeout=60,
                    message="8 Running pods of deployment wasm")
    nodes = {p["spec"]["nodeName"] for p in pods}
    # The spin node carries the wasm-only taint and these pods have no toleration.
    assert nodes <= {"wasm-node-1", "wasm-node-2"}, nodes
    assert pods[0]["spec"]["nodeSelector"]["wasmkube.dev/shim-wasmtime"] == "ready"  # merged by admission


def test_spin_node_takes_only_pods_that_tolerate_its_taint(
        cluster: Cluster, namespace: str, wasm_runtimeclass: str) -> None:
    on_spin = {"kubernetes.io/hostname": "spin-node-1"}
    cluster.apply([
        pod("tolerates", runtimeClassName=wasm_runtimeclass, nodeSelector=on_spin,
            tolerations=[WASM_ONLY_TOLERATION]),
        pod("intolerant", runtimeClassName=wasm_runtimeclass, nodeSelector=on_spin),
    ], namespace)

    def get_pod(name: str) -> Any:
        return cluster.get_json("pod", name, "-n", namespace)

    running = wait_for(lambda: (p := get_pod("tolerates"))["status"].get("phase") == "Running" and p,
                       timeout=60, message="pod tolerates Running")
    assert running["spec"]["nodeName"] == "spin-node-1"

    def unschedulable() -> bool:
        conditions = get_pod("intolerant")["status"].get("conditions", [])
        return any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable" for c in conditions)

    wait_for(unschedulable, timeout=30, message="pod intolerant reported Unschedulable")
    assert not get_pod("intolerant")["spec"].get("nodeName")


def test_node_selector_places_containers_on_the_ordinary_node(cluster: Cluster, namespace: str) -> None:
    on_container_node = {"kubernetes.io/hostname": "container-node-1"}
    cluster.apply(deployment("plain", 3, nodeSelector=on_container_node), namespace)
    pods = wait_for(lambda: running_pods(cluster, namespace, "plain", 3), timeout=60,
                    message="3 Running pods of deployment plain")
    assert {p["spec"]["nodeName"] for p in pods} == {"container-node-1"}


def test_garbage_collector_deletes_dependents(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "owner", "-n", namespace)
    owner = cluster.get_json("configmap", "owner", "-n", namespace)
    cluster.apply({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "child", "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}]},
        "data": {"k": "v"},
    }, namespace)
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)

    def child_gone() -> bool:
        return cluster.kubectl("get", "configmap", "child", "-n", namespace, check=False).returncode != 0

    wait_for(child_gone, timeout=60, message="garbage collection of configmap child")


def test_pod_security_admission_enforces_restricted(cluster: Cluster, namespace: str) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    with pytest.raises(KubectlError) as refused:
        cluster.apply(pod("too-privileged", containers=[{
            "name": "main", "image": PAUSE_IMAGE, "securityContext": {"privileged": True}}]), namespace)
    assert 'violates PodSecurity "restricted:latest"' in refused.value.stderr

    cluster.apply(pod("compliant", securityContext={"runAsNonRoot": True, "runAsUser": 65535,
                                                    "seccompProfile": {"type": "RuntimeDefault"}},
                      containers=[{"name": "main", "image": PAUSE_IMAGE, "securityContext": {
                          "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}]), namespace)


def test_service_account_tokens_are_issued(cluster: Cluster, namespace: str) -> None:
    """TokenRequest works: the apiserver has its signing key (the operator's SA relies on it)."""
    token = cluster.kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    assert token.count(".") == 2


def test_namespace_deletion_completes(cluster: Cluster) -> None:
    """The namespace controller finalizes deletions, so test namespaces do not pile up."""
    name = "e2e-ns-deletion-check"
    cluster.kubectl("delete", "namespace", name, "--ignore-not-found", "--wait=true")
    cluster.kubectl("create", "namespace", name)
    cluster.kubectl("create", "configmap", "x", "-n", name)
    cluster.kubectl("delete", "namespace", name, "--wait=false")
    wait_for(lambda: cluster.kubectl("get", "namespace", name, check=False).returncode != 0,
             timeout=60, message=f"namespace {name} to be deleted")


def test_registry_serves_v2(registry: str) -> None:
    with urllib.request.urlopen(f"http://{registry}/v2/", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
