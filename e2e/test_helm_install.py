"""The Helm chart installed into the local cluster with Helm 3 and Helm 4: lint, objects,
permissions, upgrade and uninstall, Helm 4's `--wait`, and the operator as the chart configures it
bringing a WasmApp to Ready.

KWOK runs no containers, so the operator pod the chart creates only looks Running: KWOK marks it
Ready, and that is all a Deployment's readiness (Helm 3's and Helm 4's `--wait` alike) can say
here. What the operator really does is shown by the WasmRuntimes: they become Current (kstatus,
which Helm 4's `--wait` reads) only once an operator has reconciled them. To reconcile for real,
the operator runs as a local process with the arguments of the chart's Deployment and a token of
the chart's ServiceAccount (`support/chart.py`), as `make demo` runs it.

The CRDs are shared with the other e2e tests (the `crds` fixture applies them with kubectl), so
the chart is installed with crds.install=false, under a release name of its own, and without the
default runtimes `wasmtime`/`spin`, which other tests create.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from e2e.support import REGISTRY, Cluster, wait_for
from e2e.support.apps import get, wait_condition, wait_ready, wasmapp
from e2e.support.chart import CHART, HELM_VERSIONS, Release, helm_binary
from e2e.support.judges import argocd_health, kstatus
from e2e.support.operator import OperatorProcess
from e2e.support.operator_fixtures import ExampleImages, pause_session_operator

CRDS = ("wasmapps.wasmkube.dev", "wasmruntimes.wasmkube.dev")


@pytest.fixture
def release(cluster: Cluster, crds: None, namespace: str, request: pytest.FixtureRequest) -> Iterator[Release]:
    """A release of its own; Helm 3 unless parametrized indirectly with "helm4"."""
    release = Release(cluster, f"wk-{uuid.uuid4().hex[:6]}", namespace, getattr(request, "param", "helm3"))
    yield release
    release.helm("uninstall", release.name, "--wait", check=False)


def base_values(release: Release, **runtime_fields: Any) -> list[str]:
    runtime = {
        "enabled": True,
        "handler": f"{release.name}-handler",
        "runtimeClassName": f"{release.name}-rc",
        "artifactKinds": ["Module"],
        "default": False,
        **runtime_fields,
    }
    return [
        "--set", "crds.install=false",
        "--set", f"fullnameOverride={release.name}",
        "--set", "runtimes.wasmtime.enabled=false",
        "--set", "runtimes.spin.enabled=false",
        "--set-json", f"runtimes.{release.name}={json.dumps(runtime)}",
    ]  # fmt: skip


@pytest.mark.parametrize("version", HELM_VERSIONS)
def test_chart_lints_strict(version: str) -> None:
    result = subprocess.run([str(helm_binary(version)), "lint", "--strict", str(CHART)],
                            capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("release", HELM_VERSIONS, indirect=True)
def test_install_upgrade_uninstall(cluster: Cluster, release: Release, operator: OperatorProcess) -> None:
    # The session operator reconciles the release's WasmRuntime, which Helm 4's --wait waits for.
    release.install(*base_values(release))

    deployment = cluster.get_json("deployment", release.name, "-n", release.namespace)
    assert deployment["status"].get("availableReplicas") == 1
    runtime = cluster.get_json("wasmruntime", release.name)
    assert runtime["spec"]["handler"] == f"{release.name}-handler"
    assert runtime["metadata"]["annotations"]["meta.helm.sh/release-name"] == release.name

    # Permissions as the API server evaluates them for the operator's ServiceAccount.
    assert release.can("list", "wasmapps.wasmkube.dev", "default")
    assert release.can("patch", "wasmapps.wasmkube.dev", "default", subresource="status")
    assert not release.can("patch", "wasmapps.wasmkube.dev", "default")
    assert release.can("create", "runtimeclasses.node.k8s.io")
    assert release.can("get", "secrets", "default")
    assert not release.can("list", "secrets", "default")
    assert not release.can("create", "pods/exec", "default")

    release.install(*base_values(release), "--set", f"runtimes.{release.name}.defaultPort=9000")
    assert cluster.get_json("wasmruntime", release.name)["spec"]["defaultPort"] == 9000

    release.helm("uninstall", release.name, "--wait")
    assert cluster.kubectl("get", "wasmruntime", release.name, check=False).returncode != 0
    assert cluster.kubectl("get", "clusterrole", release.name, check=False).returncode != 0
    # crds.install=false: the release never owned the CRDs, so they stay.
    assert cluster.kubectl("get", "crd", "wasmapps.wasmkube.dev", check=False).returncode == 0


@pytest.mark.parametrize("release", HELM_VERSIONS, indirect=True)
def test_uninstall_keeps_the_crds_the_release_installed(cluster: Cluster, release: Release) -> None:
    # The CRDs are shared with every other test, so the release takes them over (the same bytes)
    # instead of creating them; from then on it owns them exactly as after a first install.
    before = {name: cluster.get_json("crd", name)["metadata"]["uid"] for name in CRDS}
    release.install("--take-ownership", "--set", f"fullnameOverride={release.name}", "--set", "replicas=0",
                    "--set", "runtimes.wasmtime.enabled=false", "--set", "runtimes.spin.enabled=false")
    for name in CRDS:
        annotations = cluster.get_json("crd", name)["metadata"]["annotations"]
        assert annotations["meta.helm.sh/release-name"] == release.name
        assert annotations["helm.sh/resource-policy"] == "keep"

    uninstalled = release.helm("uninstall", release.name, "--wait")
    assert "kept due to the resource policy" in uninstalled.stdout + uninstalled.stderr
    # Not deleted and recreated: the same objects, so no WasmApp anywhere went with them.
    assert {name: cluster.get_json("crd", name)["metadata"]["uid"] for name in CRDS} == before


def test_helm4_wait_returns_once_the_operator_has_made_the_runtimes_current(
    cluster: Cluster, operator: OperatorProcess, namespace: str, tmp_path: Path
) -> None:
    release = Release(cluster, f"wk-{uuid.uuid4().hex[:6]}", namespace, "helm4")
    try:
        wait_for_runtimes_with_helm4(cluster, operator, release, tmp_path)
    finally:
        release.helm("uninstall", release.name, "--wait", check=False)


def wait_for_runtimes_with_helm4(cluster: Cluster, operator: OperatorProcess, release: Release,
                                 tmp_path: Path) -> None:
    namespace = release.namespace
    log_path = tmp_path / "helm.log"
    # The chart's operator, started only once Helm is seen waiting, is what makes the runtime
    # Current. (On a cluster shared with other test sessions their operators may do it first.)
    with pause_session_operator(operator), log_path.open("w") as log:
        helm = subprocess.Popen(release.helm_command(*release.install_args(*base_values(release))),
                                stdout=log, stderr=subprocess.STDOUT, text=True)  # fmt: skip
        chart_operator = None
        try:
            # The Deployments' pods are Ready (KWOK says so), yet Helm goes on waiting ...
            wait_for(lambda: cluster.kubectl("get", "serviceaccount", release.name, "-n", namespace,
                                             check=False).returncode == 0, timeout=60, message="ServiceAccount")
            cluster.kubectl("wait", "--for=condition=Available", "deployment", "-n", namespace,
                            "-l", f"app.kubernetes.io/instance={release.name}", "--timeout=120s")
            time.sleep(2)  # Helm's watcher sees the Deployments Current
            helm_running = helm.poll() is None
            runtime = get(cluster, "wasmruntime", release.name)
            assert runtime is not None
            if runtime["status"].get("observedGeneration") != runtime["metadata"]["generation"]:
                # ... because no operator has reported on the WasmRuntime, which kstatus reads as
                # InProgress (the CRD's observedGeneration 0 behind generation 1).
                assert helm_running, "helm --wait returned before any operator saw the WasmRuntime"
                assert kstatus([runtime])[0]["status"] == "InProgress"

            chart_operator = release.operator_process(tmp_path / "chart-operator.log")
            chart_operator.start()
            code = helm.wait(timeout=120)
            finished = time.time()
        finally:
            if helm.poll() is None:
                helm.kill()
            if chart_operator is not None:
                chart_operator.stop()
    output = log_path.read_text()
    assert code == 0, output
    ready = wait_condition(cluster, "wasmruntime", release.name, None, "Ready")
    assert ready["status"]["observedGeneration"] == ready["metadata"]["generation"]
    assert kstatus([ready])[0]["status"] == "Current"
    ready_since = next(c["lastTransitionTime"] for c in ready["status"]["conditions"] if c["type"] == "Ready")
    assert datetime.fromisoformat(ready_since).timestamp() <= finished + 1, "helm returned before Ready"


def test_helm4_wait_fails_with_the_reason_when_a_runtime_is_stalled(
    cluster: Cluster, operator: OperatorProcess, namespace: str
) -> None:
    release = Release(cluster, f"wk-{uuid.uuid4().hex[:6]}", namespace, "helm4")
    # No node carries this label: the operator reports the runtime Stalled with NoEligibleNodes.
    values = base_values(release, nodeSelector={"wasmkube.dev/shim-nowhere": "ready"})
    try:
        started = time.monotonic()
        result = release.helm(*release.install_args(*values, timeout="600s"), check=False)
        elapsed = time.monotonic() - started
        stalled = wait_condition(cluster, "wasmruntime", release.name, None, "Stalled", reason="NoEligibleNodes")
    finally:
        release.helm("uninstall", release.name, "--wait", check=False)
    message = next(c["message"] for c in stalled["status"]["conditions"] if c["type"] == "Stalled")
    print(f"\nhelm 4 --wait on a stalled runtime ({elapsed:.1f} s): {result.stderr.strip()}")
    assert result.returncode != 0
    assert f"WasmRuntime//{release.name} not ready. status: Failed, message: {message}" in result.stderr
    # Failed is final for kstatus: Helm stops waiting instead of running into --timeout.
    assert elapsed < 300


def test_namespaced_mode_grants_only_the_watched_namespace(cluster: Cluster, release: Release) -> None:
    release.install(*base_values(release), "--set", f"watchNamespaces={{{release.namespace}}}")

    assert release.can("list", "wasmapps.wasmkube.dev", release.namespace)
    assert release.can("create", "deployments.apps", release.namespace)
    assert not release.can("list", "wasmapps.wasmkube.dev", "kube-system")
    assert not release.can("create", "deployments.apps", "kube-system")
    assert release.can("watch", "wasmruntimes.wasmkube.dev")
    assert release.can("create", "events", "default")


def test_chart_installed_operator_reconciles_a_wasmapp_to_ready(
    cluster: Cluster, release: Release, operator: OperatorProcess, example_images: ExampleImages,
    tmp_path: Path,
) -> None:
    release.install(*base_values(release), "--set", "replicas=0", "--set", f"registry.insecure={{{REGISTRY}}}")
    chart_operator = release.operator_process(tmp_path / "chart-operator.log")
    assert "--all-namespaces" in chart_operator.extra_args
    assert chart_operator.env == {"WASMKUBE_POD_NAMESPACE": release.namespace}

    # The session operator would do the work too; pause it so only the chart's identity acts.
    with pause_session_operator(operator):
        chart_operator.start()
        try:
            cluster.apply(wasmapp("hello", example_images.module.reference), release.namespace)
            app = wait_ready(cluster, "hello", release.namespace)
            cluster.apply(wasmapp("lost", example_images.module.reference, runtime="no-such-runtime"),
                          release.namespace)
            lost = wait_condition(cluster, "wasmapp", "lost", release.namespace, "Stalled",
                                  reason="RuntimeNotFound")
        finally:
            code = chart_operator.stop()
            print(f"\n--- chart operator log tail (exit {code}) ---\n{chart_operator.log_tail(20)}")

    deployment = cluster.get_json("deployment", "hello", "-n", release.namespace)
    assert deployment["spec"]["template"]["spec"]["runtimeClassName"] == "wasmtime"
    assert app["status"]["artifact"]["digest"] == example_images.module.digest
    assert [v["status"] for v in argocd_health([app, lost])] == ["Healthy", "Degraded"]
    # Nothing in the operator's log says it was refused anything by RBAC.
    assert "Forbidden" not in chart_operator.log_text() and " 403" not in chart_operator.log_text()
