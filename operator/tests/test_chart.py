"""charts/wasmkube, rendered by the real Helm (no cluster): lint, RBAC, Pod Security, labels, CRDs.

Helm is the pinned one that e2e/cluster/build-binaries.sh builds. With CI=true a missing Helm fails
these tests (CI must not pass without them); elsewhere they are skipped until `make cluster` (or
the build script) has built it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.support import state

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "wasmkube"
BUILD_BINARIES = REPO / "e2e" / "cluster" / "build-binaries.sh"
RELEASE, NAMESPACE = "wasmkube", "wasmkube-system"

WASMRUNTIME_API = "wasmkube.dev/v1alpha1/WasmRuntime"
SERVICEMONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"

Rule = tuple[str, str, str]  # (apiGroup, resource, verb)


def _pinned_bin_dir() -> Path:
    """The directory build-binaries.sh builds into, from its pins in versions.env.

    Computed rather than asked of the script because the script builds whatever is missing, which
    on a cold machine takes many minutes: too much for a unit test run outside CI.
    """
    pins: dict[str, str] = {}
    for line in (BUILD_BINARIES.parent / "versions.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and not key.startswith("#"):
            pins[key.strip()] = value.strip()
    cache_dir = state.cache_dir()
    name = "k8s-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}-kwok-{KWOK_VERSION}-helm-{HELM_VERSION}".format(**pins)
    return cache_dir / "bin" / name


@cache
def helm_binary() -> str | None:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    if os.environ.get("CI") == "true":
        # CI builds what is missing (instant when cached), so a broken build fails here, visibly.
        bin_dir = subprocess.run(
            ["bash", str(BUILD_BINARIES)], capture_output=True, text=True, check=True, timeout=3600
        ).stdout.strip()
        return str(Path(bin_dir) / "helm")
    helm = _pinned_bin_dir() / "helm"
    return str(helm) if helm.exists() else None


@dataclass(frozen=True)
class Helm:
    binary: str
    # Private Helm home directories, so a developer's repositories or plugins cannot change results.
    env: dict[str, str]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    binary = helm_binary()
    if binary is None or not shutil.which(binary):
        message = "helm is not built yet: run `make cluster` (or bash e2e/cluster/build-binaries.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    home = tmp_path_factory.mktemp("helm-home")
    env = {**os.environ, **{f"HELM_{kind}_HOME": str(home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}}
    return Helm(binary, env)


def run_helm(helm: Helm, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm.binary, *args], capture_output=True, text=True, env=helm.env, timeout=120, check=False)


def render(helm: Helm, *args: str) -> list[dict[str, Any]]:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, *args)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def of_kind(docs: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    [doc] = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    return doc


def rules_of(role: dict[str, Any]) -> set[Rule]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def expand(groups: dict[tuple[str, str], str]) -> set[Rule]:
    return {(group, resource, verb) for (group, resource), verbs in groups.items() for verb in verbs.split()}


OWNED = "get list watch create patch delete"
NAMESPACED_RULES = expand(
    {
        ("wasmkube.dev", "wasmapps"): "get list watch",
        ("wasmkube.dev", "wasmapps/status"): "patch",
        ("apps", "deployments"): "get list watch create patch",
        ("", "services"): OWNED,
        ("autoscaling", "horizontalpodautoscalers"): OWNED,
        ("discovery.k8s.io", "endpointslices"): OWNED,
        ("apps", "deployments/scale"): "patch",
        ("", "secrets"): "get",
        ("", "pods"): "list",
        ("", "events"): "create list",
    }
)
CLUSTER_RULES = expand(
    {
        ("wasmkube.dev", "wasmruntimes"): "get list watch",
        ("wasmkube.dev", "wasmruntimes/status"): "patch",
        ("node.k8s.io", "runtimeclasses"): OWNED,
        ("", "nodes"): "get list watch",
    }
)


def operator_roles(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        doc
        for doc in docs
        if doc["kind"] in ("Role", "ClusterRole")
        and doc["metadata"]["labels"]["app.kubernetes.io/component"] == "operator"
    ]


# --- lint and schema ---------------------------------------------------------------------------


def test_lint_strict(helm: Helm) -> None:
    result = run_helm(helm, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        ("foo=bar", "additional properties 'foo' not allowed"),
        ("image.tagg=v1", "additional properties 'tagg' not allowed"),
        ("metrics.serviceMonitor.intervall=1m", "additional properties 'intervall' not allowed"),
        ("runtimes.wasmtime.handlr=x", "additional properties 'handlr' not allowed"),
        ("logLevel=LOUD", "logLevel"),
    ],
)
def test_values_schema_rejects_unknown_or_invalid_values(helm: Helm, setting: str, complaint: str) -> None:
    result = run_helm(helm, "template", RELEASE, str(CHART), "--set", setting)

    assert result.returncode != 0
    assert complaint in result.stderr


# --- CRDs ----------------------------------------------------------------------------------------


def test_chart_crds_are_exact_copies_of_the_generated_ones() -> None:
    generated = sorted((REPO / "crds").glob("*.yaml"))
    if not generated and os.environ.get("CI") != "true":
        pytest.skip("crds/ is empty: run `make crds`")
    copies = sorted((CHART / "files" / "crds").glob("*.yaml"))
    assert [p.name for p in copies] == [p.name for p in generated]
    for source, copy in zip(generated, copies, strict=True):
        assert copy.read_bytes() == source.read_bytes(), f"{copy} is stale: run charts/wasmkube/sync-crds.sh"


def test_rendered_crds_are_the_generated_ones_plus_helm_metadata(helm: Helm) -> None:
    rendered = {crd["metadata"]["name"]: crd for crd in of_kind(render(helm), "CustomResourceDefinition")}
    for path in sorted((CHART / "files" / "crds").glob("*.yaml")):
        source = yaml.safe_load(path.read_text())
        crd = rendered.pop(source["metadata"]["name"])
        metadata = crd["metadata"]
        assert metadata.pop("annotations") == {"helm.sh/resource-policy": "keep"}
        assert source["metadata"]["labels"].items() <= metadata["labels"].items()
        assert metadata.pop("labels")["app.kubernetes.io/managed-by"] == "Helm"
        source["metadata"].pop("labels")
        assert crd == source
    assert rendered == {}, "a CRD rendered without a source file"


def test_crds_can_be_left_out_or_left_unprotected(helm: Helm) -> None:
    assert of_kind(render(helm, "--set", "crds.install=false"), "CustomResourceDefinition") == []
    for crd in of_kind(render(helm, "--set", "crds.keep=false"), "CustomResourceDefinition"):
        assert "helm.sh/resource-policy" not in crd["metadata"].get("annotations", {})


def test_sync_script_reports_the_copies_up_to_date() -> None:
    result = subprocess.run(
        ["bash", str(CHART / "sync-crds.sh"), "--check"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


# --- default WasmRuntimes -----------------------------------------------------------------------


def test_runtimes_wait_for_the_upgrade_after_the_install_that_creates_their_crd(helm: Helm) -> None:
    # Without the API in the cluster (first install, crds.install on), WasmRuntimes cannot be sent.
    first_install = render(helm)
    assert of_kind(first_install, "WasmRuntime") == []

    upgrade = render(helm, "--api-versions", WASMRUNTIME_API)
    assert sorted(r["metadata"]["name"] for r in of_kind(upgrade, "WasmRuntime")) == ["spin", "wasmtime"]
    kinds = [doc["kind"] for doc in upgrade]
    assert max(i for i, k in enumerate(kinds) if k == "CustomResourceDefinition") < kinds.index("WasmRuntime")

    crds_elsewhere = render(helm, "--set", "crds.install=false")
    assert len(of_kind(crds_elsewhere, "WasmRuntime")) == 2


def test_default_runtimes(helm: Helm) -> None:
    runtimes = {
        r["metadata"]["name"]: r["spec"] for r in of_kind(render(helm, "--set", "crds.install=false"), "WasmRuntime")
    }

    assert runtimes["wasmtime"] == {
        "runtimeClassName": "wasmtime",
        "handler": "wasmtime",
        "artifactKinds": ["Module", "Component"],
        "default": True,
        "defaultPort": 8080,
        "listenAddressEnv": "WASMTIME_HTTP_PROXY_SOCKET_ADDR",
        "nodeSelector": {"wasmkube.dev/shim-wasmtime": "ready"},
        "overhead": {"podFixed": {"cpu": "10m", "memory": "16Mi"}},
    }
    assert runtimes["spin"] == {
        "runtimeClassName": "wasmtime-spin-v2",
        "handler": "spin",
        "artifactKinds": ["SpinApp"],
        "default": True,
        "defaultPort": 80,
        "listenAddressEnv": "SPIN_HTTP_LISTEN_ADDR",
        "nodeSelector": {"wasmkube.dev/shim-spin": "ready"},
        "tolerations": [{"key": "wasmkube.dev/wasm-only", "operator": "Exists", "effect": "NoSchedule"}],
    }
    disabled = render(helm, "--set", "crds.install=false", "--set", "runtimes.spin.enabled=false")
    assert [r["metadata"]["name"] for r in of_kind(disabled, "WasmRuntime")] == ["wasmtime"]


def test_default_runtimes_agree_with_the_examples_and_the_runtimeclass_manifests(helm: Helm) -> None:
    from wasmkube.api.artifact import ArtifactKind
    from wasmkube.cli import render_documents

    chart_runtimes = of_kind(render(helm, "--set", "crds.install=false"), "WasmRuntime")
    examples = of_kind(yaml.safe_load_all((REPO / "examples" / "wasmruntimes.yaml").read_text()), "WasmRuntime")
    assert {r["metadata"]["name"]: r["spec"] for r in chart_runtimes} == {
        r["metadata"]["name"]: r["spec"] for r in examples
    }

    # The RuntimeClasses the operator builds for them are the ones shim-config documents.
    built = {rc["metadata"]["name"]: rc for rc in render_documents(chart_runtimes, ArtifactKind.MODULE)}
    documented = yaml.safe_load_all((REPO / "shim-config" / "runtimeclasses.yaml").read_text())
    for runtime_class in documented:
        operator_made = built.pop(runtime_class["metadata"]["name"])
        for field in ("handler", "scheduling", "overhead"):
            assert operator_made.get(field) == runtime_class.get(field), field
    assert built == {}


# --- the operator's pod --------------------------------------------------------------------------


def operator_deployment(helm: Helm, *args: str) -> dict[str, Any]:
    return one(render(helm, *args), "Deployment", "wasmkube")


def test_operator_pod_meets_the_restricted_pod_security_standard(helm: Helm) -> None:
    pod = operator_deployment(helm)["spec"]["template"]["spec"]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    [container] = pod["containers"]
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert not security.get("privileged")
    # A read-only root needs somewhere to write temporary files.
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert {"name": "tmp", "emptyDir": {}} in pod["volumes"]
    for volume in pod["volumes"]:
        assert "hostPath" not in volume


def test_operator_deployment_defaults(helm: Helm) -> None:
    deployment = operator_deployment(helm)
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]

    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert container["image"] == "ghcr.io/wasmkube/wasmkube:0.1.0"
    assert container["command"] == ["wasmkube", "run"]
    assert container["args"] == [
        "--all-namespaces",
        "--liveness-port", "8080",
        "--metrics-port", "9090",
        "--log-format", "json",
        "--log-level", "INFO",
        "--registry-ttl-seconds", "300",
        "--activator-service", "wasmkube-system/wasmkube-activator",
    ]  # fmt: skip
    assert container["env"] == [
        {"name": "WASMKUBE_POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}
    ]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert {"name": "healthz", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    assert container["resources"] == {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["serviceAccountName"] == "wasmkube"


def test_operator_arguments_follow_the_values(helm: Helm) -> None:
    deployment = operator_deployment(
        helm,
        "--set", "watchNamespaces={team-a,team-b}",
        "--set", "registry.insecure={127.0.0.1:5001}",
        "--set", "registry.allowed={ghcr.io,127.0.0.1:5001}",
        "--set", "registry.cacheTTLSeconds=60",
        "--set", "extraArgs={--workers,4}",
        "--set", "image.tag=dev",
        "--set", "priorityClassName=system-cluster-critical",
        "--set", "podLabels.team=wasm",
        "--set", "nodeSelector.pool=system",
    )  # fmt: skip
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]

    assert container["args"] == [
        "--namespace", "team-a",
        "--namespace", "team-b",
        "--liveness-port", "8080",
        "--metrics-port", "9090",
        "--log-format", "json",
        "--log-level", "INFO",
        "--insecure-registry", "127.0.0.1:5001",
        "--allowed-registry", "ghcr.io",
        "--allowed-registry", "127.0.0.1:5001",
        "--registry-ttl-seconds", "60",
        "--activator-service", "wasmkube-system/wasmkube-activator",
        "--workers", "4",
    ]  # fmt: skip
    assert container["image"] == "ghcr.io/wasmkube/wasmkube:dev"
    assert pod["spec"]["priorityClassName"] == "system-cluster-critical"
    assert pod["spec"]["nodeSelector"] == {"pool": "system"}
    assert pod["metadata"]["labels"]["team"] == "wasm"


# --- RBAC ----------------------------------------------------------------------------------------


def test_cluster_wide_rbac_is_exactly_what_the_operator_uses(helm: Helm) -> None:
    docs = render(helm)

    [cluster_role] = operator_roles(docs)
    assert cluster_role["kind"] == "ClusterRole"
    assert rules_of(cluster_role) == CLUSTER_RULES | NAMESPACED_RULES
    binding = one(docs, "ClusterRoleBinding", "wasmkube")
    assert binding["roleRef"]["name"] == cluster_role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "wasmkube", "namespace": NAMESPACE}]


def test_namespaced_rbac_has_a_role_per_watched_namespace(helm: Helm) -> None:
    docs = render(helm, "--set", "watchNamespaces={team-a,team-b}")

    cluster_role = one(operator_roles(docs), "ClusterRole")
    assert rules_of(cluster_role) == CLUSTER_RULES, "namespaced kinds must not be granted cluster-wide"
    roles = {
        (r["metadata"]["namespace"], r["metadata"]["name"]): r for r in operator_roles(docs) if r["kind"] == "Role"
    }
    for namespace in ("team-a", "team-b"):
        assert rules_of(roles.pop((namespace, "wasmkube"))) == NAMESPACED_RULES
        binding = one(
            (b for b in of_kind(docs, "RoleBinding") if b["metadata"]["namespace"] == namespace), "RoleBinding",
            "wasmkube",
        )
        assert binding["subjects"][0]["namespace"] == NAMESPACE
    # Events about cluster-scoped WasmRuntimes are posted in `default`.
    events_role = roles.pop(("default", "wasmkube-events"))
    assert {resource for _, resource, _ in rules_of(events_role)} == {"events"}
    # The activator Service's EndpointSlices, in the release namespace.
    activator_endpoints = roles.pop((NAMESPACE, "wasmkube-activator-endpoints"))
    assert rules_of(activator_endpoints) == expand({("discovery.k8s.io", "endpointslices"): "list watch"})
    assert roles == {}


def test_ha_mode_adds_leader_election_and_leases_only(helm: Helm) -> None:
    docs = render(helm, "--set", "ha.enabled=true")

    cluster_role = one(operator_roles(docs), "ClusterRole")
    assert rules_of(cluster_role) == CLUSTER_RULES | NAMESPACED_RULES
    leases = one(operator_roles(docs), "Role", "wasmkube-leases")
    assert leases["metadata"]["namespace"] == NAMESPACE
    assert rules_of(leases) == expand({("coordination.k8s.io", "leases"): "get create update"})
    deployment = one(docs, "Deployment", "wasmkube")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" in args
    assert args[args.index("--lease-seconds") + 1] == "15"


@pytest.mark.parametrize(
    "values",
    [[], ["--set", "watchNamespaces={a,b}"], ["--set", "ha.enabled=true"]],
    ids=["cluster-wide", "namespaced", "ha"],
)
def test_no_role_grants_broad_or_dangerous_access(helm: Helm, values: list[str]) -> None:
    for role in (d for d in render(helm, *values) if d["kind"] in ("Role", "ClusterRole")):
        for group, resource, verb in rules_of(role):
            where = f"{role['kind']} {role['metadata']['name']}: {group}/{resource} {verb}"
            assert "*" not in (group, resource, verb), where
            assert verb not in ("escalate", "bind", "impersonate"), where
            assert resource not in ("pods/exec", "pods/attach", "pods/portforward", "nodes/proxy"), where
            if resource == "secrets":
                assert verb == "get", where


def test_user_roles_aggregate_into_the_builtin_roles(helm: Helm) -> None:
    docs = render(helm)

    editor = one(docs, "ClusterRole", "wasmkube-editor")
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert editor["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert {(g, r) for g, r, _ in rules_of(editor)} == {("wasmkube.dev", "wasmapps")}
    viewer = one(docs, "ClusterRole", "wasmkube-viewer")
    assert viewer["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert rules_of(viewer) == expand(
        {("wasmkube.dev", "wasmapps"): "get list watch", ("wasmkube.dev", "wasmruntimes"): "get list watch"}
    )


def test_rbac_and_service_account_can_be_brought_by_the_user(helm: Helm) -> None:
    docs = render(helm, "--set", "rbac.create=false", "--set", "serviceAccount.create=false",
                  "--set", "serviceAccount.name=platform-sa",
                  "--set", "activator.serviceAccountName=platform-activator")  # fmt: skip

    assert {d["kind"] for d in docs} & {
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ServiceAccount",
    } == set()
    assert one(docs, "Deployment", "wasmkube")["spec"]["template"]["spec"]["serviceAccountName"] == "platform-sa"


# --- labels, Service, ServiceMonitor -------------------------------------------------------------


def test_every_object_carries_the_standard_labels(helm: Helm) -> None:
    docs = render(
        helm,
        "--api-versions", WASMRUNTIME_API,
        "--set", "ha.enabled=true",
        "--set", "metrics.serviceMonitor.enabled=true",
        "--set", "metrics.serviceMonitor.force=true",
    )  # fmt: skip
    for doc in docs:
        labels = doc["metadata"]["labels"]
        activator = labels["app.kubernetes.io/component"] == "activator"
        assert labels["app.kubernetes.io/name"] == ("wasmkube-activator" if activator else "wasmkube"), doc["kind"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/version"] == "0.1.0"
        assert labels["app.kubernetes.io/component"]
        assert labels["app.kubernetes.io/part-of"] == "wasmkube"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "wasmkube-0.1.0"


def test_selectors_use_only_the_stable_labels(helm: Helm) -> None:
    docs = render(helm)
    stable = {"app.kubernetes.io/name": "wasmkube", "app.kubernetes.io/instance": RELEASE}

    deployment = one(docs, "Deployment", "wasmkube")
    assert deployment["spec"]["selector"]["matchLabels"] == stable
    assert stable.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
    # Nothing of the operator's selects the activator's pods (and the other way round).
    activator_pods = one(docs, "Deployment", "wasmkube-activator")["spec"]["template"]["metadata"]["labels"]
    assert not stable.items() <= activator_pods.items()
    service = one(docs, "Service", "wasmkube-metrics")
    assert service["spec"]["selector"] == stable
    assert service["metadata"]["name"] == "wasmkube-metrics"
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]


def test_service_monitor_only_where_prometheus_operator_is(helm: Helm) -> None:
    enabled = ("--set", "metrics.serviceMonitor.enabled=true")

    assert of_kind(render(helm, *enabled), "ServiceMonitor") == []
    monitor = one(render(helm, *enabled, "--api-versions", SERVICEMONITOR_API), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "metrics"
    assert len(of_kind(render(helm, *enabled, "--set", "metrics.serviceMonitor.force=true"), "ServiceMonitor")) == 1
    assert of_kind(render(helm, "--api-versions", SERVICEMONITOR_API), "ServiceMonitor") == []


def test_metrics_can_be_turned_off(helm: Helm) -> None:
    docs = render(helm, "--set", "metrics.enabled=false")

    assert [s["metadata"]["name"] for s in of_kind(docs, "Service")] == ["wasmkube-activator"]
    args = one(docs, "Deployment", "wasmkube")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--metrics-port") + 1] == "0"
