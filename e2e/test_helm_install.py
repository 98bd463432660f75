"""The Helm chart installed into the local cluster: objects, permissions, upgrade and uninstall,
and the operator as the chart configures it bringing a WasmApp to Ready.

KWOK runs no containers, so the operator pod the chart creates only looks Running. To reconcile
for real, the operator runs as a local process with the arguments of the chart's Deployment and a
token of the chart's ServiceAccount (`support/chart.py`), as `make demo` runs it.

The CRDs are shared with the other e2e tests (the `crds` fixture applies them with kubectl), so
the chart is installed with crds.install=false, under a release name of its own, and without the
default runtimes `wasmtime`/`spin`, which other tests create.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import REGISTRY, Cluster
from support.apps import wait_condition, wait_ready, wasmapp
from support.argocd import wasmkube_health
from support.chart import Release
from support.operator import OperatorProcess
from support.operator_fixtures import ExampleImages, pause_session_operator


@pytest.fixture
def release(cluster: Cluster, crds: None, namespace: str) -> Iterator[Release]:
    release = Release(cluster, f"wk-{uuid.uuid4().hex[:6]}", namespace)
    yield release
    release.helm("uninstall", release.name, "--wait", check=False)


def base_values(release: Release) -> list[str]:
    runtime = {
        "enabled": True,
        "handler": f"{release.name}-handler",
        "runtimeClassName": f"{release.name}-rc",
        "artifactKinds": ["Module"],
        "default": False,
    }
    return [
        "--set", "crds.install=false",
        "--set", f"fullnameOverride={release.name}",
        "--set", "runtimes.wasmtime.enabled=false",
        "--set", "runtimes.spin.enabled=false",
        "--set-json", f"runtimes.{release.name}={json.dumps(runtime)}",
    ]  # fmt: skip


def test_install_upgrade_uninstall(cluster: Cluster, release: Release) -> None:
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
    assert wasmkube_health(app)["status"] == "Healthy"
    assert wasmkube_health(lost)["status"] == "Degraded"
    # Nothing in the operator's log says it was refused anything by RBAC.
    assert "Forbidden" not in chart_operator.log_text() and " 403" not in chart_operator.log_text()
