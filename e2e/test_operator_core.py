"""The operator against a real API server, real controllers, real scheduler and KWOK nodes.

Each test applies WasmApps with kubectl (as a user would) and asserts on what the cluster holds.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.support import Cluster, KubectlError, wait_for
from e2e.support.apps import condition, events_for, get, wait_condition, wait_ready, wasmapp
from e2e.support.operator import OperatorProcess
from e2e.support.operator_fixtures import ExampleImages

SHIM_NODES = {"wasm-node-1", "wasm-node-2", "spin-node-1"}
WASMTIME_NODES = {"wasm-node-1", "wasm-node-2"}  # spin-node-1 is tainted wasm-only; no toleration


def pods_of(cluster: Cluster, namespace: str, app: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "pods", "-n", namespace, "-l", f"wasmkube.dev/app={app}", "-o", "json").stdout
    return list(json.loads(out)["items"])


def running_nodes(cluster: Cluster, namespace: str, app: str, count: int) -> set[str]:
    def check() -> set[str] | None:
        pods = pods_of(cluster, namespace, app)
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        return {p["spec"]["nodeName"] for p in running} if len(running) >= count else None

    return wait_for(check, timeout=90, interval=0.5, message=f"{count} running pods of {app}")


@pytest.fixture
def images(operator: OperatorProcess, example_images: ExampleImages) -> ExampleImages:
    return example_images


def test_wasmapp_becomes_ready_on_a_wasm_runtime_class(cluster: Cluster, namespace: str,
                                                       images: ExampleImages) -> None:
    cluster.apply(wasmapp("hello", images.module.reference, replicas=2), namespace)
    app = wait_ready(cluster, "hello", namespace)

    status = app["status"]
    assert status["observedGeneration"] == app["metadata"]["generation"]
    assert status["readyReplicas"] == 2 and status["replicas"] == 2
    assert status["runtime"] == "wasmtime" and status["runtimeClassName"] == "wasmtime"
    assert status["selector"] == "wasmkube.dev/app=hello"
    assert status["deploymentName"] == "hello"
    assert status["artifact"]["kind"] == "Module"
    assert status["artifact"]["digest"] == images.module.digest
    for kind in ("Ready", "Reconciling", "Stalled"):
        cond = condition(app, kind)
        assert cond is not None and cond["observedGeneration"] == app["metadata"]["generation"], kind
    assert condition(app, "Stalled")["status"] == "False"
    assert condition(app, "Reconciling")["status"] == "False"

    deployment = get(cluster, "deployment", "hello", namespace)
    assert deployment is not None
    pod_spec = deployment["spec"]["template"]["spec"]
    assert pod_spec["runtimeClassName"] == "wasmtime"
    image = pod_spec["containers"][0]["image"]
    assert image == f"{images.module.reference.rsplit(':', 1)[0]}@{images.module.digest}", "digest-pinned image"
    owner = deployment["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "WasmApp" and owner["uid"] == app["metadata"]["uid"] and owner["controller"] is True
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "wasmkube"
    managers = {m["manager"] for m in deployment["metadata"]["managedFields"] if m["operation"] == "Apply"}
    assert managers == {"wasmkube"}

    # The RuntimeClass admission plugin merged the runtime's nodeSelector: pods only on shim nodes.
    assert running_nodes(cluster, namespace, "hello", 2) <= WASMTIME_NODES

    reasons = {e["reason"] for e in events_for(cluster, "hello", namespace)}
    assert "Available" in reasons
    assert any(e["source"].get("component") == "wasmkube" for e in events_for(cluster, "hello", namespace))

    assert not app["metadata"].get("finalizers"), "WasmApps must carry no finalizer"
    annotations = app["metadata"].get("annotations") or {}
    assert not [k for k in annotations if k.startswith("kopf.") or k.startswith("wasmkube.dev/")]


def test_kubectl_get_shows_useful_columns(cluster: Cluster, namespace: str, images: ExampleImages) -> None:
    cluster.apply(wasmapp("columns", images.module.reference), namespace)
    wait_ready(cluster, "columns", namespace)
    table = cluster.kubectl("get", "wapp", "-n", namespace).stdout
    header = table.splitlines()[0].split()
    assert header[:7] == ["NAME", "RUNTIME", "READY", "REASON", "REPLICAS", "IMAGE", "AGE"]
    assert "wasmtime" in table and "True" in table and "Available" in table
    wide = cluster.kubectl("get", "wasmapps", "-n", namespace, "-o", "wide").stdout
    assert "KIND" in wide.splitlines()[0] and "Module" in wide and "Available" in wide
    assert "columns" in cluster.kubectl("get", "wasm", "-n", namespace).stdout  # the category


def test_http_app_gets_service_and_default_probes(cluster: Cluster, namespace: str, images: ExampleImages) -> None:
    cluster.apply(wasmapp("web", images.component.reference, ports=[{"name": "http", "containerPort": 8080}],
                          service={"port": 80}, env=[{"name": "GREETING", "value": "hi"}]), namespace)
    app = wait_ready(cluster, "web", namespace)
    assert app["status"]["serviceName"] == "web"
    assert app["status"]["artifact"]["exports"] == ["wasi:http/incoming-handler@0.2.0"]
    service = get(cluster, "service", "web", namespace)
    assert service["spec"]["selector"] == {"wasmkube.dev/app": "web"}
    assert service["spec"]["ports"][0]["port"] == 80 and service["spec"]["ports"][0]["targetPort"] == "http"
    container = get(cluster, "deployment", "web", namespace)["spec"]["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] == "http", probe
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env == {"WASMTIME_HTTP_PROXY_SOCKET_ADDR": "0.0.0.0:8080", "GREETING": "hi"}

    # Dropping the service block removes the Service (and only ours).
    cluster.kubectl("patch", "wasmapp", "web", "-n", namespace, "--type=json",
                    "-p", '[{"op": "remove", "path": "/spec/service"}]')
    wait_for(lambda: get(cluster, "service", "web", namespace) is None, timeout=30, message="Service removed")


def test_autoscaling_creates_an_hpa_and_leaves_replicas_to_it(cluster: Cluster, namespace: str,
                                                              images: ExampleImages) -> None:
    cluster.apply(wasmapp("scaled", images.module.reference,
                          autoscaling={"minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 60},
                          resources={"requests": {"cpu": "50m"}}), namespace)
    hpa = wait_for(lambda: get(cluster, "hpa", "scaled", namespace), timeout=60, message="HPA created")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    # The real HPA controller raises the Deployment to minReplicas; we never fight it over replicas.
    wait_for(lambda: (get(cluster, "deployment", "scaled", namespace) or {}).get("spec", {}).get("replicas") == 2,
             timeout=60, message="HPA controller scales the Deployment to minReplicas")
    deployment = get(cluster, "deployment", "scaled", namespace)
    ours = [m for m in deployment["metadata"]["managedFields"] if m["manager"] == "wasmkube"]
    assert all("f:replicas" not in json.dumps(m.get("fieldsV1", {}).get("f:spec", {})) for m in ours)


def test_kubectl_scale_targets_the_wasmapp(cluster: Cluster, namespace: str, images: ExampleImages) -> None:
    cluster.apply(wasmapp("scalable", images.module.reference, replicas=1), namespace)
    wait_ready(cluster, "scalable", namespace)
    cluster.kubectl("scale", "wasmapp", "scalable", "-n", namespace, "--replicas=3")
    wait_for(lambda: (get(cluster, "deployment", "scalable", namespace) or {})["spec"]["replicas"] == 3,
             timeout=30, message="Deployment scaled to 3")
    app = wait_for(lambda: (lambda a: a if a["status"].get("readyReplicas") == 3 and condition(a, "Ready")["status"]
                            == "True" else None)(get(cluster, "wasmapp", "scalable", namespace)),
                   timeout=60, message="WasmApp reports 3 ready replicas")
    scale = json.loads(cluster.kubectl("get", "--raw",
                                       f"/apis/wasmkube.dev/v1alpha1/namespaces/{namespace}/wasmapps/scalable/scale")
                       .stdout)
    assert scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 3
    assert scale["status"]["selector"] == "wasmkube.dev/app=scalable"
    assert app["spec"]["replicas"] == 3


def test_drift_is_repaired(cluster: Cluster, namespace: str, images: ExampleImages) -> None:
    cluster.apply(wasmapp("steady", images.module.reference, replicas=2), namespace)
    wait_ready(cluster, "steady", namespace)
    cluster.kubectl("scale", "deployment", "steady", "-n", namespace, "--replicas=5")
    cluster.kubectl("patch", "deployment", "steady", "-n", namespace, "--type=json",
                    "-p", '[{"op": "replace", "path": "/spec/template/spec/runtimeClassName", "value": "runc"}]',
                    check=False)  # may be refused if no such RuntimeClass; replicas drift suffices
    wait_for(lambda: get(cluster, "deployment", "steady", namespace)["spec"]["replicas"] == 2,
             timeout=30, message="replicas drift repaired")
    uid = get(cluster, "deployment", "steady", namespace)["metadata"]["uid"]
    cluster.kubectl("delete", "deployment", "steady", "-n", namespace, "--wait=true")
    recreated = wait_for(lambda: get(cluster, "deployment", "steady", namespace), timeout=30,
                         message="deleted Deployment recreated")
    assert recreated["metadata"]["uid"] != uid
    assert recreated["spec"]["template"]["spec"]["runtimeClassName"] == "wasmtime"
    wait_ready(cluster, "steady", namespace)


def test_deleting_a_wasmapp_collects_its_children(cluster: Cluster, namespace: str, images: ExampleImages) -> None:
    cluster.apply(wasmapp("doomed", images.module.reference, service={}), namespace)
    wait_ready(cluster, "doomed", namespace)
    assert get(cluster, "service", "doomed", namespace) is not None
    cluster.kubectl("delete", "wasmapp", "doomed", "-n", namespace, "--timeout=30s")
    wait_for(lambda: get(cluster, "deployment", "doomed", namespace) is None
             and get(cluster, "service", "doomed", namespace) is None,
             timeout=60, message="garbage collector removed Deployment and Service")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"image": "Not A Valid Ref"}, "image must be an OCI reference"),
        ({"image": "127.0.0.1:5001/a:v1", "replicas": 2,
          "autoscaling": {"maxReplicas": 3}, "resources": {"requests": {"cpu": "10m"}}},
         "replicas and autoscaling are mutually exclusive"),
        ({"image": "127.0.0.1:5001/a:v1", "ports": [{"containerPort": 70000}]},
         "should be less than or equal to 65535"),
        ({"image": "127.0.0.1:5001/a:v1", "volumeMounts": [{"name": "x", "mountPath": "/x"}]},
         "every volumeMounts[].name must name an entry of volumes"),
        ({"image": "127.0.0.1:5001/a@sha256:" + "a" * 64, "updatePolicy": "Track"},
         "an image pinned by digest cannot be tracked"),
        ({"image": "127.0.0.1:5001/a:v1", "autoscaling": {"maxReplicas": 3}},
         "autoscaling on CPU utilization needs resources.requests.cpu"),
        ({"image": "127.0.0.1:5001/a:v1", "replicas": -1}, "should be greater than or equal to 0"),
    ],
    ids=["image", "replicas-vs-autoscaling", "port-range", "mount-without-volume", "track-digest", "hpa-no-cpu",
         "negative-replicas"],
)
def test_bad_manifests_are_refused_at_apply(cluster: Cluster, namespace: str, crds: None, spec: dict[str, Any],
                                            message: str) -> None:
    manifest = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp", "metadata": {"name": "bad"}, "spec": spec}
    with pytest.raises(KubectlError) as refused:
        cluster.apply(manifest, namespace)
    assert message in refused.value.stderr
    assert get(cluster, "wasmapp", "bad", namespace) is None


def test_unknown_runtime_stalls_without_disturbing_other_apps(cluster: Cluster, namespace: str,
                                                               images: ExampleImages) -> None:
    cluster.apply([wasmapp("lost", images.module.reference, runtime="no-such-runtime"),
                   wasmapp("fine", images.module.reference)], namespace)
    lost = wait_condition(cluster, "wasmapp", "lost", namespace, "Stalled", "True", reason="RuntimeNotFound")
    assert condition(lost, "Ready")["status"] == "False"
    assert "no-such-runtime" in condition(lost, "Stalled")["message"]
    assert get(cluster, "deployment", "lost", namespace) is None
    wait_ready(cluster, "fine", namespace)
    warnings = [e for e in events_for(cluster, "lost", namespace) if e["type"] == "Warning"]
    assert any(e["reason"] == "RuntimeNotFound" for e in warnings)


def test_runtime_that_cannot_run_the_artifact_is_refused(cluster: Cluster, namespace: str,
                                                          images: ExampleImages) -> None:
    cluster.apply(wasmapp("wrong-shim", images.spin.reference, runtime="wasmtime"), namespace)
    stalled = wait_condition(cluster, "wasmapp", "wrong-shim", namespace, "Stalled", reason="IncompatibleArtifact")
    assert "SpinApp" in condition(stalled, "Stalled")["message"]
    assert get(cluster, "deployment", "wrong-shim", namespace) is None


def test_missing_pull_secret_stalls(cluster: Cluster, namespace: str, images: ExampleImages) -> None:
    cluster.apply(wasmapp("secretive", images.module.reference, imagePullSecrets=[{"name": "nope"}]), namespace)
    stalled = wait_condition(cluster, "wasmapp", "secretive", namespace, "Stalled", reason="PullSecretNotFound")
    assert "'nope'" in condition(stalled, "Stalled")["message"]


def test_spin_app_goes_to_the_spin_runtime_on_the_tainted_node(cluster: Cluster, namespace: str,
                                                                images: ExampleImages) -> None:
    cluster.apply(wasmapp("spinner", images.spin.reference, service={}), namespace)
    app = wait_ready(cluster, "spinner", namespace)
    assert app["status"]["runtime"] == "spin" and app["status"]["runtimeClassName"] == "wasmtime-spin-v2"
    assert app["status"]["artifact"]["kind"] == "SpinApp"
    assert running_nodes(cluster, namespace, "spinner", 1) == {"spin-node-1"}
    container = get(cluster, "deployment", "spinner", namespace)["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "SPIN_HTTP_LISTEN_ADDR", "value": "0.0.0.0:80"} in container["env"]


def test_container_image_is_not_run_as_wasm(cluster: Cluster, namespace: str, images: ExampleImages) -> None:
    cluster.apply(wasmapp("not-wasm", images.container.reference), namespace)
    stalled = wait_condition(cluster, "wasmapp", "not-wasm", namespace, "Stalled", reason="IncompatibleArtifact")
    assert stalled["status"]["observedGeneration"] == stalled["metadata"]["generation"]
    assert get(cluster, "deployment", "not-wasm", namespace) is None


def test_wasm_pods_run_beside_container_pods_in_a_restricted_namespace(cluster: Cluster, namespace: str,
                                                                       images: ExampleImages) -> None:
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    cluster.apply(wasmapp("wasm-side", images.module.reference, replicas=2,
                          volumes=[{"name": "data", "emptyDir": {}}],
                          volumeMounts=[{"name": "data", "mountPath": "/data"}]), namespace)
    container_deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "container-side"},
        "spec": {
            "replicas": 1, "selector": {"matchLabels": {"app": "container-side"}},
            "template": {
                "metadata": {"labels": {"app": "container-side"}},
                "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": "container-node-1"},
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65532,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [{"name": "busybox", "image": images.container.reference,
                                    "securityContext": {"allowPrivilegeEscalation": False,
                                                        "capabilities": {"drop": ["ALL"]}}}],
                },
            },
        },
    }
    cluster.apply(container_deployment, namespace)
    wait_ready(cluster, "wasm-side", namespace)
    assert running_nodes(cluster, namespace, "wasm-side", 2) <= WASMTIME_NODES
    container_pods = wait_for(
        lambda: [p for p in json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", "app=container-side",
                                                       "-o", "json").stdout)["items"]
                 if p["status"].get("phase") == "Running"],
        timeout=60, message="container pod running")
    assert container_pods[0]["spec"]["nodeName"] == "container-node-1"
    assert "runtimeClassName" not in container_pods[0]["spec"]


def test_runtime_owns_its_runtime_class_and_counts_nodes(cluster: Cluster, operator: OperatorProcess) -> None:
    runtime = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmRuntime", "metadata": {"name": "e2e-edge"},
               "spec": {"handler": "edge", "runtimeClassName": "e2e-edge", "artifactKinds": ["Module"],
                        "nodeSelector": {"wasmkube.dev/shim-wasmtime": "ready"},
                        "overhead": {"podFixed": {"cpu": "5m", "memory": "8Mi"}}}}
    try:
        cluster.apply(runtime)
        status = wait_condition(cluster, "wasmruntime", "e2e-edge", None, "Ready")["status"]
        assert status["readyNodes"] == 2 and status["eligibleNodes"] == 2  # spin-node-1 is tainted
        rc = get(cluster, "runtimeclass", "e2e-edge")
        assert rc["handler"] == "edge"
        assert rc["scheduling"]["nodeSelector"] == {"wasmkube.dev/shim-wasmtime": "ready"}
        assert rc["overhead"]["podFixed"] == {"cpu": "5m", "memory": "8Mi"}
        assert rc["metadata"]["ownerReferences"][0]["kind"] == "WasmRuntime"

        # The handler is immutable in a RuntimeClass: changing it replaces the object.
        old_uid = rc["metadata"]["uid"]
        cluster.kubectl("patch", "wasmruntime", "e2e-edge", "--type=merge", "-p", '{"spec":{"handler":"edge2"}}')
        wait_for(lambda: (get(cluster, "runtimeclass", "e2e-edge") or {}).get("handler") == "edge2",
                 timeout=30, message="RuntimeClass handler updated")
        assert get(cluster, "runtimeclass", "e2e-edge")["metadata"]["uid"] != old_uid

        # Drift on the RuntimeClass is repaired too.
        cluster.kubectl("delete", "runtimeclass", "e2e-edge")
        wait_for(lambda: get(cluster, "runtimeclass", "e2e-edge"), timeout=30, message="RuntimeClass recreated")
    finally:
        cluster.kubectl("delete", "wasmruntime", "e2e-edge", "--ignore-not-found")
    wait_for(lambda: get(cluster, "runtimeclass", "e2e-edge") is None, timeout=60,
             message="RuntimeClass garbage-collected with its WasmRuntime")


def test_an_app_on_a_runtime_whose_runtime_class_is_taken_names_the_cause(
    cluster: Cluster, namespace: str, images: ExampleImages
) -> None:
    """Someone else's RuntimeClass holds the runtime's name (it once cost a whole benchmark run
    of pods the scheduler could not place): the runtime is Stalled with NameConflict, the app is
    Stalled naming the runtime, and once the name is free the app goes Ready by itself."""
    theirs = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "e2e-taken"},
              "handler": "theirs", "scheduling": {"nodeSelector": {"kubernetes.io/hostname": "nowhere"}}}
    runtime = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmRuntime", "metadata": {"name": "e2e-taken"},
               "spec": {"handler": "wasmtime", "artifactKinds": ["Module"],
                        "nodeSelector": {"wasmkube.dev/shim-wasmtime": "ready"}}}
    try:
        cluster.apply(theirs)
        cluster.apply(runtime)
        wait_condition(cluster, "wasmruntime", "e2e-taken", None, "Stalled", reason="NameConflict")
        cluster.apply(wasmapp("taken", images.module.reference, runtime="e2e-taken"), namespace)
        app = wait_condition(cluster, "wasmapp", "taken", namespace, "Stalled", reason="RuntimeStalled")
        message = condition(app, "Stalled")["message"]
        print(f"\ntaken: {message}")
        assert "WasmRuntime 'e2e-taken' is Stalled (NameConflict)" in message and "RuntimeClass e2e-taken" in message

        cluster.kubectl("delete", "runtimeclass", "e2e-taken")
        wait_ready(cluster, "taken", namespace)
        assert get(cluster, "runtimeclass", "e2e-taken")["handler"] == "wasmtime"
    finally:
        cluster.kubectl("delete", "wasmruntime", "e2e-taken", "--ignore-not-found")
        cluster.kubectl("delete", "runtimeclass", "e2e-taken", "--ignore-not-found")


def test_no_eligible_nodes_when_the_runtime_nodes_go_away(cluster: Cluster, namespace: str,
                                                          images: ExampleImages) -> None:
    node = {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": "e2e-lonely-node", "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"wasmkube.dev/shim-lonely": "ready", "type": "kwok",
                                    "kubernetes.io/hostname": "e2e-lonely-node"}},
            "status": {"allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                       "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"}}}
    runtime = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmRuntime", "metadata": {"name": "e2e-lonely"},
               "spec": {"handler": "lonely", "artifactKinds": ["Module"],
                        "nodeSelector": {"wasmkube.dev/shim-lonely": "ready"}}}
    try:
        cluster.apply([node, runtime])
        cluster.apply(wasmapp("lonely", images.module.reference, runtime="e2e-lonely"), namespace)
        wait_ready(cluster, "lonely", namespace)
        cluster.kubectl("delete", "node", "e2e-lonely-node")
        stalled = wait_condition(cluster, "wasmapp", "lonely", namespace, "Stalled", reason="NoEligibleNodes")
        assert "shim-lonely=ready" in condition(stalled, "Stalled")["message"]
        wait_condition(cluster, "wasmruntime", "e2e-lonely", None, "Stalled", reason="NoEligibleNodes")
    finally:
        cluster.kubectl("delete", "node", "e2e-lonely-node", "--ignore-not-found")
        cluster.kubectl("delete", "wasmruntime", "e2e-lonely", "--ignore-not-found")


def test_operator_exposes_metrics(operator: OperatorProcess) -> None:
    text = operator.metrics()
    assert "wasmkube_reconciles_total" in text
    assert "wasmkube_reconcile_duration_seconds_bucket" in text
