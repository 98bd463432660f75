"""The chart's activator: least-privilege RBAC, restricted pod, HA (replicas, PDB, Lease), and the
operator pointed at its Service. Rendered by the real Helm, as in test_chart.py."""

from __future__ import annotations

from typing import Any

from test_chart import NAMESPACE, Helm, expand, helm, of_kind, one, render, rules_of

__all__ = ["helm"]  # the fixture

ACTIVATOR = "wasmkube-activator"
RULES = expand(
    {
        ("wasmkube.dev", "wasmapps"): "list watch",
        ("discovery.k8s.io", "endpointslices"): "list watch",
        ("apps", "deployments/scale"): "get patch",
    }
)


def activator_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["metadata"]["labels"].get("app.kubernetes.io/component") == "activator"]


def test_activator_rbac_is_exactly_what_it_calls(helm: Helm) -> None:
    docs = activator_docs(render(helm))
    assert rules_of(one(docs, "ClusterRole", ACTIVATOR)) == RULES
    leases = one(docs, "Role", f"{ACTIVATOR}-leases")
    assert leases["metadata"]["namespace"] == NAMESPACE
    assert rules_of(leases) == expand({("coordination.k8s.io", "leases"): "get create update"})
    for binding in of_kind(docs, "ClusterRoleBinding") + of_kind(docs, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": ACTIVATOR, "namespace": NAMESPACE}]


def test_activator_rbac_is_namespaced_with_watch_namespaces(helm: Helm) -> None:
    docs = activator_docs(render(helm, "--set", "watchNamespaces={team-a,team-b}"))
    assert of_kind(docs, "ClusterRole") == []
    roles = {(r["metadata"]["namespace"], r["metadata"]["name"]): r for r in of_kind(docs, "Role")}
    assert rules_of(roles[("team-a", ACTIVATOR)]) == RULES
    assert rules_of(roles[("team-b", ACTIVATOR)]) == RULES
    args = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:4] == ["--namespace", "team-a", "--namespace", "team-b"]


def test_activator_is_ha_and_restricted(helm: Helm) -> None:
    docs = activator_docs(render(helm))
    deployment = one(docs, "Deployment", ACTIVATOR)
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == ACTIVATOR
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    [container] = pod["containers"]
    assert container["command"] == ["wasmkube", "activator"]
    assert "--leader-elect" in container["args"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert pod["terminationGracePeriodSeconds"] == 5 + 120 + 5
    pdb = one(docs, "PodDisruptionBudget", ACTIVATOR)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_operator_points_apps_at_the_activator_service_by_its_http_port(helm: Helm) -> None:
    docs = render(helm)
    service = one(docs, "Service", ACTIVATOR)
    assert {"name": "http", "port": 8012, "targetPort": "http", "protocol": "TCP"} in service["spec"]["ports"]
    args = one(docs, "Deployment", "wasmkube")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--activator-service") + 1] == f"{NAMESPACE}/{ACTIVATOR}"


def test_activator_can_be_turned_off(helm: Helm) -> None:
    docs = render(helm, "--set", "activator.enabled=false")
    assert activator_docs(docs) == []
    args = one(docs, "Deployment", "wasmkube")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--activator-service" not in args
