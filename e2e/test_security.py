"""What the operator may do, what its pods may do, and which registries it may talk to.

- RBAC: the chart's ServiceAccount, ClusterRole and Roles, applied as rendered, evaluated by the
  API server (`kubectl auth can-i --as system:serviceaccount:...`): what it needs is allowed, what
  would let it read or run anything else is denied, and nothing beyond a documented list of
  harmless extras is granted.
- Pod Security: generated pods, and the chart's own operator pod, are admitted in a namespace
  that enforces the `restricted` profile.
- Registry allow-list: an image from any other registry is refused before it is fetched.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

from e2e.registry import artifacts
from e2e.registry.pusher import Pusher
from e2e.registry.server import RegistryServer
from e2e.support import REGISTRY, Cluster, binary, wait_for
from e2e.support.apps import condition, get, wait_condition, wait_ready, wasmapp
from e2e.support.operator_fixtures import ExampleImages
from e2e.support.reliability import items
from e2e.support.reliability_fixtures import DedicatedOperators
from e2e.support.state import REPO_ROOT

CHART = REPO_ROOT / "charts" / "wasmkube"
RBAC_TEMPLATES = ["templates/serviceaccount.yaml", "templates/rbac.yaml"]


def helm_template(release: str, namespace: str, *values: str, show_only: list[str]) -> str:
    shown = [arg for path in show_only for arg in ("--show-only", path)]
    result = subprocess.run(
        [str(binary("helm")), "template", release, str(CHART), "--namespace", namespace,
         "--set", "crds.install=false", "--set", f"fullnameOverride={release}",
         "--set", "runtimes.wasmtime.enabled=false", "--set", "runtimes.spin.enabled=false", *values, *shown],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@dataclass
class ChartRbac:
    cluster: Cluster
    release: str
    namespace: str
    documents: list[dict[str, Any]]

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.release}"

    def can(self, verb: str, resource: str, namespace: str | None, subresource: str = "") -> bool:
        scope = ["-n", namespace] if namespace else ["--all-namespaces"]
        extra = [f"--subresource={subresource}"] if subresource else []
        result = self.cluster.kubectl("auth", "can-i", verb, resource, f"--as={self.user}", *scope, *extra,
                                      check=False)  # fmt: skip
        answer = result.stdout.strip()
        assert answer in ("yes", "no"), result.stderr
        return answer == "yes"

    def granted(self) -> set[tuple[str, str, str]]:
        """(apiGroup, resource, verb) for every rule of the rendered (Cluster)Roles."""
        triples = set()
        for doc in self.documents:
            if doc["kind"] not in ("ClusterRole", "Role"):
                continue
            for rule in doc.get("rules") or []:
                for group in rule.get("apiGroups") or []:
                    for resource in rule.get("resources") or []:
                        for verb in rule.get("verbs") or []:
                            triples.add((group, resource, verb))
        return triples


def install_rbac(cluster: Cluster, release: str, namespace: str, *values: str) -> tuple[ChartRbac, str]:
    rendered = helm_template(release, namespace, *values, show_only=RBAC_TEMPLATES)
    cluster.kubectl("apply", "-f", "-", input=rendered)
    documents = [d for d in yaml.safe_load_all(rendered) if d]
    return ChartRbac(cluster, release, namespace, documents), rendered


@pytest.fixture
def chart_rbac(cluster: Cluster, namespace: str, crds: None) -> Iterator[list[ChartRbac]]:
    """The chart's RBAC twice: cluster-wide with HA (Lease Role), and for one watched namespace.
    Cluster-scoped objects and the Role in `default` are deleted afterwards."""
    suffix = uuid.uuid4().hex[:6]
    installed: list[str] = []
    try:
        wide, text = install_rbac(cluster, f"wk-sec-{suffix}", namespace, "--set", "ha.enabled=true")
        installed.append(text)
        scoped, text = install_rbac(cluster, f"wk-sec-ns-{suffix}", namespace, "--set",
                                    f"watchNamespaces={{{namespace}}}")
        installed.append(text)
        yield [wide, scoped]
    finally:
        for text in installed:
            cluster.kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=text, check=False)


# What the operator's code calls (controller/, clients/kube.py, Kopf's watches and events):
# server-side apply is a PATCH and needs `create` for a new object; status is a merge PATCH.
NEEDED = {
    ("wasmkube.dev", "wasmapps", v) for v in ("get", "list", "watch")
} | {
    ("wasmkube.dev", "wasmruntimes", v) for v in ("get", "list", "watch")
} | {
    ("wasmkube.dev", "wasmapps/status", "patch"), ("wasmkube.dev", "wasmruntimes/status", "patch"),
    ("apps", "deployments", "get"), ("apps", "deployments", "list"), ("apps", "deployments", "watch"),
    ("apps", "deployments", "create"), ("apps", "deployments", "patch"),
} | {
    (group, resource, verb)
    for group, resource in (("", "services"), ("autoscaling", "horizontalpodautoscalers"),
                            ("node.k8s.io", "runtimeclasses"), ("discovery.k8s.io", "endpointslices"))
    for verb in ("get", "list", "watch", "create", "patch", "delete")
} | {
    ("", "nodes", "get"), ("", "nodes", "list"), ("", "nodes", "watch"),
    ("", "secrets", "get"),  # pull secrets named by a WasmApp, read by name only
    ("", "events", "create"),
    # Why a stuck rollout's pods fail: its pods listed by selector, a pod's Unhealthy Events.
    ("", "pods", "list"), ("", "events", "list"),
    ("apps", "deployments/scale", "patch"),  # scale to zero: spec.replicas followed while awake
    ("coordination.k8s.io", "leases", "get"), ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
}


def test_chart_rbac_is_least_privilege(cluster: Cluster, namespace: str, chart_rbac: list[ChartRbac]) -> None:
    wide, scoped = chart_rbac
    other = "default"  # any namespace the operator does not run in
    # (verb, resource, namespace or None for all namespaces, subresource, expected)
    matrix = [
        ("list", "wasmapps.wasmkube.dev", None, "", True),
        ("watch", "wasmapps.wasmkube.dev", None, "", True),
        ("patch", "wasmapps.wasmkube.dev", other, "status", True),
        ("watch", "wasmruntimes.wasmkube.dev", None, "", True),
        ("patch", "wasmruntimes.wasmkube.dev", None, "status", True),
        ("create", "deployments.apps", other, "", True),
        ("patch", "deployments.apps", other, "", True),
        ("delete", "services", other, "", True),
        ("create", "horizontalpodautoscalers.autoscaling", other, "", True),
        ("create", "runtimeclasses.node.k8s.io", None, "", True),
        ("delete", "runtimeclasses.node.k8s.io", None, "", True),
        ("get", "secrets", other, "", True),
        ("create", "events", other, "", True),
        ("list", "nodes", None, "", True),
        ("watch", "nodes", None, "", True),
        ("create", "leases.coordination.k8s.io", namespace, "", True),
        ("update", "leases.coordination.k8s.io", namespace, "", True),
        # denied: reading what it does not need, running code, or changing who may do what
        ("list", "secrets", None, "", False),
        ("watch", "secrets", None, "", False),
        ("list", "secrets", other, "", False),
        ("create", "secrets", other, "", False),
        ("get", "configmaps", other, "", False),
        ("create", "pods", other, "", False),
        ("create", "pods", other, "exec", False),
        ("list", "pods", other, "", True),  # read only, by an app's selector, while its rollout is stuck
        ("list", "events", other, "", True),
        ("watch", "pods", None, "", False),  # nothing watches pods
        ("get", "pods", other, "log", False),
        ("watch", "events", None, "", False),
        ("create", "serviceaccounts", other, "token", False),
        ("create", "deployments.extensions", other, "", False),
        ("create", "replicasets.apps", other, "", False),
        ("create", "statefulsets.apps", other, "", False),
        ("create", "daemonsets.apps", other, "", False),
        ("create", "jobs.batch", other, "", False),
        ("create", "clusterroles.rbac.authorization.k8s.io", None, "", False),
        ("bind", "clusterroles.rbac.authorization.k8s.io", None, "", False),
        ("escalate", "clusterroles.rbac.authorization.k8s.io", None, "", False),
        ("create", "rolebindings.rbac.authorization.k8s.io", other, "", False),
        ("impersonate", "serviceaccounts", other, "", False),
        ("create", "customresourcedefinitions.apiextensions.k8s.io", None, "", False),
        ("create", "namespaces", None, "", False),
        ("delete", "namespaces", None, "", False),
        ("patch", "nodes", None, "", False),
        ("update", "deployments.apps", other, "", False),  # every write is a PATCH
        ("delete", "deployments.apps", other, "", False),  # the garbage collector deletes them
        ("patch", "events", other, "", False),
        ("create", "events.events.k8s.io", other, "", False),
        ("update", "wasmapps.wasmkube.dev", other, "", False),
        ("patch", "wasmapps.wasmkube.dev", other, "", False),
        ("create", "wasmapps.wasmkube.dev", other, "", False),
        ("delete", "wasmapps.wasmkube.dev", other, "", False),
        ("create", "wasmruntimes.wasmkube.dev", None, "", False),
        ("delete", "wasmruntimes.wasmkube.dev", None, "", False),
        ("create", "leases.coordination.k8s.io", "kube-node-lease", "", False),  # no faking node heartbeats
        ("update", "leases.coordination.k8s.io", "kube-system", "", False),
        ("create", "leases.coordination.k8s.io", other, "", False),
    ]
    # With watchNamespaces: the namespaced kinds only there; cluster-scoped kinds as before.
    scoped_matrix = [
        ("list", "wasmapps.wasmkube.dev", namespace, "", True),
        ("create", "deployments.apps", namespace, "", True),
        ("get", "secrets", namespace, "", True),
        ("get", "secrets", "kube-system", "", False),
        ("get", "secrets", other, "", False),
        ("list", "pods", namespace, "", True),
        ("list", "pods", other, "", False),
        ("list", "pods", None, "", False),
        ("list", "wasmapps.wasmkube.dev", None, "", False),
        ("create", "deployments.apps", other, "", False),
        ("watch", "wasmruntimes.wasmkube.dev", None, "", True),
        ("create", "runtimeclasses.node.k8s.io", None, "", True),
        ("create", "events", other, "", True),  # Events about cluster-scoped WasmRuntimes go to default
        ("create", "leases.coordination.k8s.io", namespace, "", False),  # HA off in this release
    ]
    checks = [(wide, row) for row in matrix] + [(scoped, row) for row in scoped_matrix]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda c: c[0].can(*c[1][:4]), checks))
    wrong = [f"{rbac.release}: {verb} {resource}{'/' + sub if sub else ''} in {ns or 'all namespaces'}: "
             f"{'allowed' if got else 'denied'}, expected {'allowed' if want else 'denied'}"
             for (rbac, (verb, resource, ns, sub, want)), got in zip(checks, answers, strict=True) if got != want]
    assert not wrong, "\n".join(wrong)

    for rbac in chart_rbac:
        unused = sorted(rbac.granted() - NEEDED)
        assert not unused, f"{rbac.release} grants permissions the operator never uses: {unused}"
    missing = NEEDED - wide.granted()
    assert not missing, f"the chart does not grant what the operator uses: {sorted(missing)}"


def _restricted(cluster: Cluster, namespace: str) -> None:
    for mode in ("enforce", "warn", "audit"):
        cluster.kubectl("label", "namespace", namespace, f"pod-security.kubernetes.io/{mode}=restricted",
                        f"pod-security.kubernetes.io/{mode}-version=latest", "--overwrite")


def running_pods(cluster: Cluster, namespace: str, selector: str, count: int) -> list[dict[str, Any]]:
    def check() -> list[dict[str, Any]] | None:
        pods = [p for p in items(cluster, "pods", namespace, selector) if p["status"].get("phase") == "Running"]
        return pods if len(pods) >= count else None
    return wait_for(check, timeout=90, interval=0.5, message=f"{count} running pods ({selector})")


def test_pods_are_admitted_under_restricted_pod_security(cluster: Cluster, namespace: str,
                                                         exclusive_operators: DedicatedOperators,
                                                         example_images: ExampleImages) -> None:
    _restricted(cluster, namespace)
    exclusive_operators.start(namespace, name="restricted")
    cluster.apply(wasmapp("locked-down", example_images.component.reference, replicas=2,
                          ports=[{"name": "http", "containerPort": 8080}], service={"port": 80},
                          volumes=[{"name": "scratch", "emptyDir": {}}],
                          volumeMounts=[{"name": "scratch", "mountPath": "/scratch"}]), namespace)
    wait_ready(cluster, "locked-down", namespace)
    running_pods(cluster, namespace, "wasmkube.dev/app=locked-down", 2)
    # The pod template as a Pod, through admission again: not even a warning.
    template = get(cluster, "deployment", "locked-down", namespace)["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "template-check", **{
        k: v for k, v in template["metadata"].items() if k == "labels"}}, "spec": template["spec"]}
    dry = cluster.kubectl("create", "-n", namespace, "--dry-run=server", "-f", "-", input=json.dumps(pod))
    assert "PodSecurity" not in dry.stderr, dry.stderr

    # The chart's operator Deployment (one replica) in the same namespace: KWOK "runs" its pod.
    release = f"wk-psa-{uuid.uuid4().hex[:6]}"
    rendered = helm_template(release, namespace, "--set", "replicas=1",
                             show_only=["templates/serviceaccount.yaml", "templates/deployment.yaml"])
    dry = cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert "violate PodSecurity" not in dry.stderr, dry.stderr
    applied = cluster.kubectl("apply", "-f", "-", input=rendered)
    assert "violate PodSecurity" not in applied.stderr, applied.stderr
    pods = running_pods(cluster, namespace, f"app.kubernetes.io/instance={release}", 1)
    spec = pods[0]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["containers"][0]["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_allow_list_refuses_other_registries_before_fetching(cluster: Cluster, namespace: str,
                                                             exclusive_operators: DedicatedOperators,
                                                             example_images: ExampleImages,
                                                             flaky_registry: RegistryServer) -> None:
    push = Pusher(flaky_registry.host)
    try:
        elsewhere = artifacts.cncf_module(push, f"e2e/allow-{uuid.uuid4().hex[:8]}", "v1")
    finally:
        push.close()
    exclusive_operators.start(namespace, "--allowed-registry", REGISTRY, "--insecure-registry", flaky_registry.host,
                              name="allow-list")
    refused = {
        "other-registry": elsewhere.reference,  # reachable, and it holds a valid module
        "docker-hub": "busybox:latest",  # would be docker.io; nothing may be fetched from there
        "alias": f"localhost:{REGISTRY.rsplit(':', 1)[1]}/examples/hello-wasi:v1",  # same server, other name
    }
    cluster.apply([wasmapp("allowed", example_images.module.reference)]
                  + [wasmapp(name, image) for name, image in refused.items()], namespace)
    wait_ready(cluster, "allowed", namespace)
    for name, image in refused.items():
        app = wait_condition(cluster, "wasmapp", name, namespace, "Stalled", reason="RegistryNotAllowed")
        message = condition(app, "Stalled")["message"]
        assert "not in the allowed registries" in message and REGISTRY in message, message
        assert condition(app, "Ready")["status"] == "False"
        assert get(cluster, "deployment", name, namespace) is None, f"{name} ({image}) was rolled out"
