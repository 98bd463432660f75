"""The pure builders: names, labels, Deployment, Service, HPA, RuntimeClass, runtime choice."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wasmkube.api.artifact import ArtifactKind
from wasmkube.api.wasmapp import WasmApp
from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.applied import APPLIED_HASH_ANNOTATION, applied_hash
from wasmkube.builders.identity import (
    APP_LABEL,
    RUNTIME_LABEL,
    child_name,
    curated_labels,
    selector_labels,
    selector_string,
)
from wasmkube.builders.pod import DEFAULT_COMMAND, DEFAULT_DRAIN_SECONDS, POD_USER_ID
from wasmkube.builders.runtime_choice import select_runtime
from wasmkube.builders.runtimeclass import build_runtime_class
from wasmkube.builders.scheduling import merge_node_selectors
from wasmkube.builders.workload import (
    build_autoscaler,
    build_children,
    build_deployment,
    build_service,
)
from wasmkube.errors import SpecError

MakeApp = Callable[..., WasmApp]
MakeRuntime = Callable[..., WasmRuntime]

PINNED = "registry.example.com/team/hello@sha256:" + "0" * 64
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
HTTP_PORT = {"name": "http", "containerPort": 8080}


def is_dns_1035_label(name: str) -> bool:
    return len(name) <= 63 and bool(DNS_1035_LABEL.match(name))


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    only: dict[str, Any]
    (only,) = pod_spec(deployment)["containers"]
    return only


@pytest.fixture
def runtime(make_runtime: MakeRuntime) -> WasmRuntime:
    return make_runtime()


# --- child names ----------------------------------------------------------------------------------


def test_ordinary_name_is_used_as_it_is() -> None:
    assert child_name("hello") == "hello"
    assert child_name("my-app-2") == "my-app-2"


def test_sixty_three_character_name_is_kept() -> None:
    assert child_name("a" * 63) == "a" * 63


@pytest.mark.parametrize(
    "name",
    [
        "a" * 64,
        "x" * 253,
        "my.app",
        "my.app.example.com",
        "1app",
        "123",
        "0.0.0",
        "a." + "b" * 250,
        "9" * 253,
        "a-" * 100 + "z",
    ],
)
def test_hostile_names_become_valid_dns_1035_labels(name: str) -> None:
    result = child_name(name)
    assert is_dns_1035_label(result), result


def test_dotted_name_is_shortened_readably_with_a_hash() -> None:
    assert re.fullmatch(r"my-app-[0-9a-f]{8}", child_name("my.app"))


def test_name_starting_with_a_digit_gets_a_letter_prefix() -> None:
    assert child_name("1app").startswith("w-1app-")


def test_names_sharing_a_long_prefix_stay_distinct() -> None:
    base = "a" * 80
    assert child_name(base + "x") != child_name(base + "y")


def test_dotted_and_dashed_spellings_do_not_collide() -> None:
    assert child_name("my.app") != child_name("my-app")


_LABEL = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
DNS_SUBDOMAINS = st.lists(_LABEL, min_size=1, max_size=5).map(".".join).filter(lambda s: len(s) <= 253)


@given(DNS_SUBDOMAINS)
def test_any_subdomain_name_gives_a_valid_child_name(name: str) -> None:
    assert is_dns_1035_label(child_name(name))


@given(DNS_SUBDOMAINS)
def test_child_name_is_deterministic(name: str) -> None:
    assert child_name(name) == child_name(name)


@given(DNS_SUBDOMAINS, DNS_SUBDOMAINS)
def test_distinct_names_give_distinct_child_names(first: str, second: str) -> None:
    if first != second:
        assert child_name(first) != child_name(second)


@given(DNS_SUBDOMAINS)
def test_child_name_is_a_valid_label_value_for_selectors(name: str) -> None:
    (value,) = selector_labels(name).values()
    assert re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]", value) and len(value) <= 63


def test_child_name_is_stable_across_processes() -> None:
    name = "some.very-long.name." + "z" * 100
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    code = f"from wasmkube.builders.identity import child_name; print(child_name({name!r}))"
    other = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert other.stdout.strip() == child_name(name)


# --- labels ---------------------------------------------------------------------------------------


def test_selector_is_the_app_label_only() -> None:
    assert selector_labels("hello") == {APP_LABEL: "hello"}
    assert selector_string("hello") == "wasmkube.dev/app=hello"


def test_curated_labels_are_the_recommended_set() -> None:
    assert curated_labels("hello", {}, "spin") == {
        "app.kubernetes.io/name": "hello",
        "app.kubernetes.io/instance": "hello",
        "app.kubernetes.io/managed-by": "wasmkube",
        "app.kubernetes.io/component": "wasm-app",
        APP_LABEL: "hello",
        RUNTIME_LABEL: "spin",
    }


def test_parent_tracking_labels_never_reach_children() -> None:
    parent = {
        "argocd.argoproj.io/instance": "argo-app",
        "app.kubernetes.io/instance": "argo-app",
        "team": "payments",
    }
    labels = curated_labels("hello", parent)
    assert "argocd.argoproj.io/instance" not in labels
    assert "team" not in labels
    assert labels["app.kubernetes.io/instance"] == "hello"


def test_part_of_label_is_carried_from_the_parent() -> None:
    assert curated_labels("hello", {"app.kubernetes.io/part-of": "shop"})["app.kubernetes.io/part-of"] == "shop"


def test_runtime_label_is_omitted_without_a_runtime() -> None:
    assert RUNTIME_LABEL not in curated_labels("hello", {})


def test_no_child_carries_gitops_labels_of_the_parent(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(
        labels={"argocd.argoproj.io/instance": "argo-app", "app.kubernetes.io/instance": "argo-app"},
        autoscaling={"maxReplicas": 3},
        resources={"requests": {"cpu": "100m"}},
        service={},
    )
    children = build_children(app, runtime, PINNED)
    for obj in (children.deployment, children.service, children.autoscaler):
        assert obj is not None
        assert "argocd.argoproj.io/instance" not in obj["metadata"]["labels"], obj["kind"]
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "hello", obj["kind"]
    template_labels = children.deployment["spec"]["template"]["metadata"]["labels"]
    assert "argocd.argoproj.io/instance" not in template_labels
    assert template_labels["app.kubernetes.io/instance"] == "hello"


def test_pod_labels_are_added_but_cannot_override_curated_ones(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(podLabels={"team": "a", APP_LABEL: "hijack"})
    labels = build_deployment(app, runtime, PINNED)["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "a"
    assert labels[APP_LABEL] == "hello"


def test_hostile_app_name_gives_valid_child_names_everywhere(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(name="1." + "x" * 251, service={}, autoscaling={"maxReplicas": 2})
    children = build_children(app, runtime, PINNED)
    for obj in (children.deployment, children.service, children.autoscaler):
        assert obj is not None
        assert is_dns_1035_label(obj["metadata"]["name"])
        assert all(len(v) <= 63 for v in obj["metadata"]["labels"].values())
    assert children.autoscaler is not None
    assert children.autoscaler["spec"]["scaleTargetRef"]["name"] == children.deployment["metadata"]["name"]


# --- Deployment -----------------------------------------------------------------------------------


def test_deployment_identity(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(), runtime, PINNED)
    assert (deployment["apiVersion"], deployment["kind"]) == ("apps/v1", "Deployment")
    assert deployment["metadata"]["name"] == "hello"
    assert deployment["metadata"]["namespace"] == "apps"


def test_deployment_runs_on_the_runtime_class(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(name="spin", runtimeClassName="wasm-spin")
    assert pod_spec(build_deployment(make_app(), runtime, PINNED))["runtimeClassName"] == "wasm-spin"


def test_deployment_runtime_class_defaults_to_runtime_name(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert pod_spec(build_deployment(make_app(), runtime, PINNED))["runtimeClassName"] == "spin"


def test_deployment_runs_the_pinned_image(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(), runtime, PINNED)
    assert container(deployment)["image"] == PINNED
    assert container(deployment)["imagePullPolicy"] == "IfNotPresent"


def test_deployment_replicas_default_to_one(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert build_deployment(make_app(), runtime, PINNED)["spec"]["replicas"] == 1


@pytest.mark.parametrize("replicas", [0, 3])
def test_deployment_replicas_as_declared(make_app: MakeApp, runtime: WasmRuntime, replicas: int) -> None:
    assert build_deployment(make_app(replicas=replicas), runtime, PINNED)["spec"]["replicas"] == replicas


def test_deployment_leaves_replicas_to_the_autoscaler(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(autoscaling={"maxReplicas": 5}, resources={"requests": {"cpu": "100m"}})
    assert "replicas" not in build_deployment(app, runtime, PINNED)["spec"]


def test_deployment_has_no_strategy_unless_declared(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert "strategy" not in build_deployment(make_app(), runtime, PINNED)["spec"]


def test_deployment_rolling_update_strategy(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(strategy={"rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"}})
    assert build_deployment(app, runtime, PINNED)["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": "25%"},
    }


def test_deployment_recreate_strategy(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(strategy={"type": "Recreate"})
    assert build_deployment(app, runtime, PINNED)["spec"]["strategy"] == {"type": "Recreate"}


def test_deployment_selector_matches_its_template(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(), runtime, PINNED)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector == {APP_LABEL: "hello"}
    assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_deployment_is_controlled_by_the_app(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(uid="u-123"), runtime, PINNED)
    assert deployment["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "wasmkube.dev/v1alpha1",
            "kind": "WasmApp",
            "name": "hello",
            "uid": "u-123",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_deployment_pod_security_is_restricted(make_app: MakeApp, runtime: WasmRuntime) -> None:
    security = pod_spec(build_deployment(make_app(), runtime, PINNED))["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == POD_USER_ID == 65532
    assert security["runAsGroup"] == 65532
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}


def test_deployment_container_security_is_restricted(make_app: MakeApp, runtime: WasmRuntime) -> None:
    security = container(build_deployment(make_app(), runtime, PINNED))["securityContext"]
    assert security == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_deployment_does_not_mount_service_account_token(make_app: MakeApp, runtime: WasmRuntime) -> None:
    spec = pod_spec(build_deployment(make_app(), runtime, PINNED))
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False


def test_deployment_default_command_is_slash(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert DEFAULT_COMMAND == ["/"]
    assert container(build_deployment(make_app(), runtime, PINNED))["command"] == ["/"]
    assert "args" not in container(build_deployment(make_app(), runtime, PINNED))


def test_deployment_explicit_command_and_args(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app_container = container(build_deployment(make_app(command=["app.wasm"], args=["--x", "1"]), runtime, PINNED))
    assert app_container["command"] == ["app.wasm"]
    assert app_container["args"] == ["--x", "1"]


def test_env_starts_with_listen_address_then_user_env(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(listenAddressEnv="SPIN_HTTP_LISTEN_ADDR")
    app = make_app(ports=[HTTP_PORT], env=[{"name": "A", "value": "1"}])
    assert container(build_deployment(app, runtime, PINNED))["env"] == [
        {"name": "SPIN_HTTP_LISTEN_ADDR", "value": "0.0.0.0:8080"},
        {"name": "A", "value": "1"},
    ]


def test_listen_address_follows_the_declared_http_port(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(listenAddressEnv="WASMTIME_HTTP_PROXY_SOCKET_ADDR", defaultPort=8080)
    app = make_app(ports=[{"name": "metrics", "containerPort": 9090}, {"name": "http-api", "containerPort": 3000}])
    (entry,) = container(build_deployment(app, runtime, PINNED))["env"]
    assert entry == {"name": "WASMTIME_HTTP_PROXY_SOCKET_ADDR", "value": "0.0.0.0:3000"}


def test_listen_address_follows_the_runtime_default_port_of_a_service(
    make_app: MakeApp, make_runtime: MakeRuntime
) -> None:
    runtime = make_runtime(listenAddressEnv="LISTEN", defaultPort=3000)
    (entry,) = container(build_deployment(make_app(service={}), runtime, PINNED))["env"]
    assert entry == {"name": "LISTEN", "value": "0.0.0.0:3000"}


def test_explicit_env_wins_over_the_listen_address_and_is_listed_once(
    make_app: MakeApp, make_runtime: MakeRuntime
) -> None:
    """env is a map keyed by name under server-side apply: a second entry of a name would make the
    whole Deployment apply fail, so the generated one is dropped rather than shadowed."""
    runtime = make_runtime(listenAddressEnv="SPIN_HTTP_LISTEN_ADDR")
    user_env = [{"name": "A", "value": "1"}, {"name": "SPIN_HTTP_LISTEN_ADDR", "value": "127.0.0.1:9000"}]
    app = make_app(ports=[HTTP_PORT], env=user_env)
    assert container(build_deployment(app, runtime, PINNED))["env"] == user_env


def test_no_listen_address_without_an_http_port(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(listenAddressEnv="LISTEN")
    app = make_app(ports=[{"name": "grpc", "containerPort": 9000}])
    assert "env" not in container(build_deployment(app, runtime, PINNED))


def test_no_listen_address_when_runtime_names_none(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[HTTP_PORT], env=[{"name": "A", "value": "1"}])
    assert container(build_deployment(app, runtime, PINNED))["env"] == [{"name": "A", "value": "1"}]


def test_env_value_from_is_passed_through(make_app: MakeApp, runtime: WasmRuntime) -> None:
    value_from = {"secretKeyRef": {"name": "s", "key": "k"}}
    app = make_app(env=[{"name": "TOKEN", "valueFrom": value_from}], envFrom=[{"secretRef": {"name": "all"}}])
    app_container = container(build_deployment(app, runtime, PINNED))
    assert app_container["env"] == [{"name": "TOKEN", "valueFrom": value_from}]
    assert app_container["envFrom"] == [{"secretRef": {"name": "all"}}]


def test_ports_are_declared_on_the_container(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[HTTP_PORT, {"containerPort": 5353, "protocol": "UDP"}])
    assert container(build_deployment(app, runtime, PINNED))["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"containerPort": 5353, "protocol": "UDP"},
    ]


def test_no_ports_and_no_service_means_no_container_ports(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert "ports" not in container(build_deployment(make_app(), runtime, PINNED))


# --- probes ---------------------------------------------------------------------------------------


def test_http_port_gets_default_probes(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app_container = container(build_deployment(make_app(ports=[HTTP_PORT]), runtime, PINNED))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert app_container[probe]["httpGet"] == {"path": "/", "port": "http"}, probe
    assert app_container["startupProbe"]["periodSeconds"] == 1


def test_http_dash_port_gets_default_probes(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[{"name": "grpc", "containerPort": 9000}, {"name": "http-api", "containerPort": 8000}])
    assert container(build_deployment(app, runtime, PINNED))["readinessProbe"]["httpGet"]["port"] == "http-api"


@pytest.mark.parametrize(
    "ports",
    [
        [{"name": "grpc", "containerPort": 9000}],
        [{"containerPort": 8080}],
        [{"name": "http", "containerPort": 8080, "protocol": "UDP"}],
        [{"name": "httpx", "containerPort": 8080}],
    ],
    ids=["grpc", "unnamed", "udp", "httpx"],
)
def test_no_default_probes_without_an_http_port(
    make_app: MakeApp, runtime: WasmRuntime, ports: list[dict[str, Any]]
) -> None:
    app_container = container(build_deployment(make_app(ports=ports), runtime, PINNED))
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & app_container.keys()


def test_no_default_probes_when_use_defaults_is_false(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[HTTP_PORT], probes={"useDefaults": False})
    app_container = container(build_deployment(app, runtime, PINNED))
    assert not {"startupProbe", "readinessProbe", "livenessProbe"} & app_container.keys()


def test_explicit_probe_is_honoured(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[HTTP_PORT], probes={"readiness": {"path": "/ready", "periodSeconds": 2, "timeoutSeconds": 3}})
    app_container = container(build_deployment(app, runtime, PINNED))
    assert app_container["readinessProbe"] == {
        "httpGet": {"path": "/ready", "port": "http"},
        "periodSeconds": 2,
        "timeoutSeconds": 3,
    }
    # The others are still defaulted, on the path the user said means "ready".
    assert app_container["livenessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert app_container["startupProbe"]["httpGet"] == {"path": "/ready", "port": "http"}


def test_explicit_probe_alone_when_defaults_are_off(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[HTTP_PORT], probes={"useDefaults": False, "liveness": {"path": "/live"}})
    app_container = container(build_deployment(app, runtime, PINNED))
    assert app_container["livenessProbe"] == {"httpGet": {"path": "/live", "port": "http"}}
    assert "readinessProbe" not in app_container
    assert "startupProbe" not in app_container


def test_explicit_probe_port_wins(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[HTTP_PORT], probes={"startup": {"port": 9999}})
    assert container(build_deployment(app, runtime, PINNED))["startupProbe"]["httpGet"]["port"] == 9999


def test_explicit_probe_with_its_own_port_needs_no_http_port(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(probes={"liveness": {"port": 7000}})
    app_container = container(build_deployment(app, runtime, PINNED))
    assert app_container["livenessProbe"] == {"httpGet": {"path": "/", "port": 7000}}
    assert "readinessProbe" not in app_container


def test_explicit_probe_without_any_port_is_a_spec_error(make_app: MakeApp, runtime: WasmRuntime) -> None:
    with pytest.raises(SpecError) as caught:
        build_deployment(make_app(probes={"liveness": {}}), runtime, PINNED)
    assert caught.value.reason == "InvalidProbe"


def test_probes_follow_the_default_port_of_a_service(make_app: MakeApp, runtime: WasmRuntime) -> None:
    """A Service with no declared ports gets port `http` from the runtime, and probes follow it."""
    app = make_app(service={})
    assert container(build_deployment(app, runtime, PINNED))["readinessProbe"]["httpGet"]["port"] == "http"


# --- the rest of the pod --------------------------------------------------------------------------


def test_volumes_and_mounts(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(
        volumes=[
            {"name": "cfg", "configMap": {"name": "app-config"}},
            {"name": "tmp", "emptyDir": {"medium": "Memory"}},
        ],
        volumeMounts=[
            {"name": "cfg", "mountPath": "/etc/app", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    )
    deployment = build_deployment(app, runtime, PINNED)
    assert pod_spec(deployment)["volumes"] == [
        {"name": "cfg", "configMap": {"name": "app-config"}},
        {"name": "tmp", "emptyDir": {"medium": "Memory"}},
    ]
    assert container(deployment)["volumeMounts"] == [
        {"name": "cfg", "mountPath": "/etc/app", "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]


def test_no_volumes_unless_declared(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(), runtime, PINNED)
    assert "volumes" not in pod_spec(deployment)
    assert "volumeMounts" not in container(deployment)


def test_resources_are_passed_through(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(resources={"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": 128}})
    assert container(build_deployment(app, runtime, PINNED))["resources"] == {
        "requests": {"cpu": "100m", "memory": "64Mi"},
        "limits": {"memory": 128},
    }


def test_empty_resources_are_left_out(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert "resources" not in container(build_deployment(make_app(resources={}), runtime, PINNED))


def test_pod_level_settings_are_passed_through(make_app: MakeApp, runtime: WasmRuntime) -> None:
    affinity: dict[str, Any] = {
        "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}
    }
    app = make_app(
        serviceAccountName="runner",
        imagePullSecrets=[{"name": "pull"}],
        nodeSelector={"zone": "a"},
        tolerations=[{"key": "wasm", "operator": "Exists", "effect": "NoSchedule"}],
        affinity=affinity,
        topologySpreadConstraints=[{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}],
        priorityClassName="high",
        podAnnotations={"prometheus.io/scrape": "true"},
    )
    deployment = build_deployment(app, runtime, PINNED)
    spec = pod_spec(deployment)
    assert spec["serviceAccountName"] == "runner"
    assert spec["imagePullSecrets"] == [{"name": "pull"}]
    assert spec["nodeSelector"] == {"zone": "a"}
    assert spec["tolerations"] == [{"key": "wasm", "operator": "Exists", "effect": "NoSchedule"}]
    assert spec["affinity"] == affinity
    assert spec["topologySpreadConstraints"][0]["topologyKey"] == "zone"
    assert spec["priorityClassName"] == "high"
    assert deployment["spec"]["template"]["metadata"]["annotations"] == {"prometheus.io/scrape": "true"}


def test_runtime_scheduling_is_left_to_the_runtime_class(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(nodeSelector={"wasm": "yes"}, tolerations=[{"key": "wasm", "operator": "Exists"}])
    spec = pod_spec(build_deployment(make_app(), runtime, PINNED))
    assert "nodeSelector" not in spec
    assert "tolerations" not in spec


def test_contradicting_node_selector_is_a_scheduling_conflict(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(nodeSelector={"wasm": "spin"})
    with pytest.raises(SpecError) as caught:
        build_deployment(make_app(nodeSelector={"wasm": "wasmtime"}), runtime, PINNED)
    assert caught.value.reason == "SchedulingConflict"


# --- the applied-hash annotation ------------------------------------------------------------------


def test_hash_annotation_is_stamped(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(), runtime, PINNED)
    value = applied_hash(deployment)
    assert value is not None and re.fullmatch(r"[0-9a-f]{16}", value)
    assert deployment["metadata"]["annotations"][APPLIED_HASH_ANNOTATION] == value


def test_hash_is_stable_for_the_same_spec(make_app: MakeApp, runtime: WasmRuntime) -> None:
    first = build_deployment(make_app(env=[{"name": "A", "value": "1"}]), runtime, PINNED)
    second = build_deployment(make_app(env=[{"name": "A", "value": "1"}]), runtime, PINNED)
    assert applied_hash(first) == applied_hash(second)


def test_hash_is_stable_across_processes(tmp_path: Path) -> None:
    code = (
        "from wasmkube.api.wasmapp import WasmApp\n"
        "from wasmkube.api.wasmruntime import WasmRuntime\n"
        "from wasmkube.builders.applied import applied_hash\n"
        "from wasmkube.builders.workload import build_deployment\n"
        "app = WasmApp.model_validate({'metadata': {'name': 'a', 'namespace': 'n', 'uid': 'u'},"
        " 'spec': {'image': 'r/a:1', 'podLabels': {'x': '1', 'y': '2', 'z': '3'}, 'ports': [{'name': 'http',"
        " 'containerPort': 80}]}})\n"
        "rt = WasmRuntime.model_validate({'metadata': {'name': 'spin'}, 'spec': {'handler': 'spin'}})\n"
        "print(applied_hash(build_deployment(app, rt, 'r/a:1')))\n"
    )
    hashes = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(hashes) == 1


@pytest.mark.parametrize(
    "change",
    [
        {"replicas": 2},
        {"image": "registry.example.com/team/hello:2.0"},
        {"env": [{"name": "A", "value": "2"}]},
        {"ports": [HTTP_PORT]},
        {"podAnnotations": {"a": "b"}},
    ],
)
def test_hash_changes_when_the_spec_changes(make_app: MakeApp, runtime: WasmRuntime, change: dict[str, Any]) -> None:
    base = build_deployment(make_app(env=[{"name": "A", "value": "1"}]), runtime, PINNED)
    changed_spec = {"env": [{"name": "A", "value": "1"}], **change}
    changed = build_deployment(make_app(**changed_spec), runtime, PINNED)
    if "image" in change:  # the spec's tag is not in the Deployment; the pinned image is
        changed = build_deployment(make_app(**changed_spec), runtime, PINNED.replace("0" * 64, "1" * 64))
    assert applied_hash(base) != applied_hash(changed)


def test_hash_changes_with_the_runtime_class(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    first = build_deployment(make_app(), make_runtime(), PINNED)
    second = build_deployment(make_app(), make_runtime(runtimeClassName="other"), PINNED)
    assert applied_hash(first) != applied_hash(second)


def test_applied_hash_of_nothing_is_none() -> None:
    assert applied_hash(None) is None
    assert applied_hash({"metadata": {}}) is None
    assert applied_hash({"metadata": {"annotations": {"other": "x"}}}) is None


def test_build_is_pure(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[HTTP_PORT], service={}, env=[{"name": "A", "value": "1"}])
    before = app.model_dump()
    first = build_children(app, runtime, PINNED)
    second = build_children(app, runtime, PINNED)
    assert app.model_dump() == before
    assert json.dumps(first.deployment, sort_keys=True) == json.dumps(second.deployment, sort_keys=True)


# --- Service --------------------------------------------------------------------------------------


def test_no_service_unless_asked(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert build_service(make_app(ports=[HTTP_PORT]), runtime) is None


def test_no_service_when_disabled(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert build_service(make_app(ports=[HTTP_PORT], service={"enabled": False}), runtime) is None


def test_service_targets_the_first_port_by_name(make_app: MakeApp, runtime: WasmRuntime) -> None:
    service = build_service(make_app(ports=[HTTP_PORT], service={}), runtime)
    assert service is not None
    assert (service["apiVersion"], service["kind"]) == ("v1", "Service")
    assert service["metadata"]["name"] == "hello"
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["selector"] == {APP_LABEL: "hello"}
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]


def test_service_targets_an_unnamed_port_by_number(make_app: MakeApp, runtime: WasmRuntime) -> None:
    service = build_service(make_app(ports=[{"containerPort": 3000}], service={"port": 8000}), runtime)
    assert service is not None
    assert service["spec"]["ports"][0]["port"] == 8000
    assert service["spec"]["ports"][0]["targetPort"] == 3000


def test_service_target_port_override(make_app: MakeApp, runtime: WasmRuntime) -> None:
    service = build_service(make_app(ports=[HTTP_PORT], service={"targetPort": "admin"}), runtime)
    assert service is not None and service["spec"]["ports"][0]["targetPort"] == "admin"


def test_service_without_ports_uses_the_runtime_default_port(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(defaultPort=3000)
    app = make_app(service={})
    service = build_service(app, runtime)
    assert service is not None and service["spec"]["ports"][0]["targetPort"] == "http"
    assert container(build_deployment(app, runtime, PINNED))["ports"] == [
        {"name": "http", "containerPort": 3000, "protocol": "TCP"}
    ]


def test_service_type_and_annotations(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(service={"type": "NodePort", "annotations": {"lb": "x"}})
    service = build_service(app, runtime)
    assert service is not None
    assert service["spec"]["type"] == "NodePort"
    assert service["metadata"]["annotations"]["lb"] == "x"
    assert APPLIED_HASH_ANNOTATION in service["metadata"]["annotations"]


def test_service_is_controlled_by_the_app(make_app: MakeApp, runtime: WasmRuntime) -> None:
    service = build_service(make_app(uid="u-9", service={}), runtime)
    assert service is not None
    (ref,) = service["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("WasmApp", "u-9", True)


# --- HorizontalPodAutoscaler ----------------------------------------------------------------------


def test_no_autoscaler_without_autoscaling(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert build_autoscaler(make_app(), runtime) is None


def test_autoscaler_scales_the_deployment_on_cpu(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(autoscaling={"minReplicas": 2, "maxReplicas": 7}, resources={"requests": {"cpu": "100m"}})
    hpa = build_autoscaler(app, runtime)
    assert hpa is not None
    assert (hpa["apiVersion"], hpa["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert hpa["metadata"]["name"] == "hello"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "hello"}
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 7)
    assert hpa["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}
    ]


def test_autoscaler_adds_memory_when_asked(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(
        autoscaling={"maxReplicas": 3, "targetCPUUtilizationPercentage": 50, "targetMemoryUtilizationPercentage": 70}
    )
    hpa = build_autoscaler(app, runtime)
    assert hpa is not None
    targets = {m["resource"]["name"]: m["resource"]["target"]["averageUtilization"] for m in hpa["spec"]["metrics"]}
    assert targets == {"cpu": 50, "memory": 70}


def test_build_children_bundles_all_three(make_app: MakeApp, runtime: WasmRuntime) -> None:
    children = build_children(make_app(service={}, autoscaling={"maxReplicas": 2}), runtime, PINNED)
    assert children.deployment["kind"] == "Deployment"
    assert children.service is not None and children.service["kind"] == "Service"
    assert children.autoscaler is not None and children.autoscaler["kind"] == "HorizontalPodAutoscaler"


def test_build_children_without_optional_children(make_app: MakeApp, runtime: WasmRuntime) -> None:
    children = build_children(make_app(), runtime, PINNED)
    assert children.service is None
    assert children.autoscaler is None


# --- RuntimeClass ---------------------------------------------------------------------------------


def test_runtime_class_identity_and_handler(make_runtime: MakeRuntime) -> None:
    rc = build_runtime_class(make_runtime(name="spin", handler="spin-v2", uid="r-1"))
    assert (rc["apiVersion"], rc["kind"]) == ("node.k8s.io/v1", "RuntimeClass")
    assert rc["metadata"]["name"] == "spin"
    assert rc["handler"] == "spin-v2"
    assert rc["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "wasmkube"
    assert rc["metadata"]["labels"]["wasmkube.dev/runtime"] == "spin"


def test_runtime_class_named_in_the_spec(make_runtime: MakeRuntime) -> None:
    assert build_runtime_class(make_runtime(runtimeClassName="wasm-spin"))["metadata"]["name"] == "wasm-spin"


def test_runtime_class_is_controlled_by_the_runtime(make_runtime: MakeRuntime) -> None:
    rc = build_runtime_class(make_runtime(name="spin", uid="r-1"))
    assert rc["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "wasmkube.dev/v1alpha1",
            "kind": "WasmRuntime",
            "name": "spin",
            "uid": "r-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_runtime_class_scheduling(make_runtime: MakeRuntime) -> None:
    rc = build_runtime_class(
        make_runtime(
            nodeSelector={"wasmkube.dev/spin": "true"},
            tolerations=[{"key": "wasm", "operator": "Equal", "value": "spin", "effect": "NoSchedule"}],
        )
    )
    assert rc["scheduling"] == {
        "nodeSelector": {"wasmkube.dev/spin": "true"},
        "tolerations": [{"key": "wasm", "operator": "Equal", "value": "spin", "effect": "NoSchedule"}],
    }


def test_runtime_class_without_scheduling(make_runtime: MakeRuntime) -> None:
    rc = build_runtime_class(make_runtime())
    assert "scheduling" not in rc
    assert "overhead" not in rc


def test_runtime_class_overhead(make_runtime: MakeRuntime) -> None:
    rc = build_runtime_class(make_runtime(overhead={"podFixed": {"cpu": "10m", "memory": "20Mi"}}))
    assert rc["overhead"] == {"podFixed": {"cpu": "10m", "memory": "20Mi"}}


# --- choosing the runtime -------------------------------------------------------------------------


def test_named_runtime_is_chosen(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtimes = [make_runtime(name="spin", default=True), make_runtime(name="wasmtime", handler="wasmtime")]
    assert select_runtime(make_app(runtime="wasmtime"), runtimes, ArtifactKind.MODULE).name == "wasmtime"


def test_named_runtime_missing(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    with pytest.raises(SpecError) as caught:
        select_runtime(make_app(runtime="nope"), [make_runtime()], ArtifactKind.MODULE)
    assert caught.value.reason == "RuntimeNotFound"
    assert "nope" in caught.value.message


def test_named_runtime_cannot_run_the_artifact(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtimes = [make_runtime(name="wasmtime", artifactKinds=["Module"])]
    with pytest.raises(SpecError) as caught:
        select_runtime(make_app(runtime="wasmtime"), runtimes, ArtifactKind.SPIN_APP)
    assert caught.value.reason == "IncompatibleArtifact"
    assert "SpinApp" in caught.value.message


def test_container_images_are_refused(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    with pytest.raises(SpecError) as caught:
        select_runtime(make_app(), [make_runtime(default=True)], ArtifactKind.CONTAINER)
    assert caught.value.reason == "IncompatibleArtifact"


def test_container_images_are_refused_even_for_a_named_runtime(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    with pytest.raises(SpecError) as caught:
        select_runtime(make_app(runtime="spin"), [make_runtime()], ArtifactKind.CONTAINER)
    assert caught.value.reason == "IncompatibleArtifact"


def test_default_runtime_is_chosen_per_kind(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtimes = [
        make_runtime(name="spin", default=True, artifactKinds=["SpinApp"]),
        make_runtime(name="wasmtime", handler="wasmtime", default=True, artifactKinds=["Module", "Component"]),
        make_runtime(name="other", handler="other"),
    ]
    assert select_runtime(make_app(), runtimes, ArtifactKind.SPIN_APP).name == "spin"
    assert select_runtime(make_app(), runtimes, ArtifactKind.COMPONENT).name == "wasmtime"


def test_no_default_runtime(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtimes = [make_runtime(name="spin"), make_runtime(name="wasmtime", default=True, artifactKinds=["Module"])]
    with pytest.raises(SpecError) as caught:
        select_runtime(make_app(), runtimes, ArtifactKind.COMPONENT)
    assert caught.value.reason == "NoDefaultRuntime"


def test_no_runtimes_at_all(make_app: MakeApp) -> None:
    with pytest.raises(SpecError) as caught:
        select_runtime(make_app(), [], ArtifactKind.MODULE)
    assert caught.value.reason == "NoDefaultRuntime"


def test_two_defaults_are_ambiguous(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtimes = [make_runtime(name="b", default=True), make_runtime(name="a", default=True)]
    with pytest.raises(SpecError) as caught:
        select_runtime(make_app(), runtimes, ArtifactKind.MODULE)
    assert caught.value.reason == "AmbiguousDefaultRuntime"
    assert "a, b" in caught.value.message


def test_runtimes_may_be_any_iterable(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtimes = (r for r in [make_runtime(name="spin", default=True)])
    assert select_runtime(make_app(), runtimes, ArtifactKind.MODULE).name == "spin"


# --- node selectors -------------------------------------------------------------------------------


def test_compatible_node_selectors_merge() -> None:
    assert merge_node_selectors({"wasm": "yes", "zone": "a"}, {"zone": "a", "disk": "ssd"}) == {
        "wasm": "yes",
        "zone": "a",
        "disk": "ssd",
    }


def test_conflicting_node_selectors_are_a_scheduling_conflict() -> None:
    with pytest.raises(SpecError) as caught:
        merge_node_selectors({"wasm": "spin"}, {"wasm": "wasmtime"})
    assert caught.value.reason == "SchedulingConflict"
    assert "wasm='wasmtime'" in caught.value.message
    assert "'spin'" in caught.value.message


# --- HTTP apps: probe defaults, draining, rollout, termination message -----------------------------


def test_default_probe_timings_suit_wasm_start_times(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app_container = container(build_deployment(make_app(ports=[HTTP_PORT]), runtime, PINNED))
    startup, readiness, liveness = (app_container[p] for p in ("startupProbe", "readinessProbe", "livenessProbe"))
    # Fast modules are seen Ready within a second; a big component may compile for up to two minutes.
    assert startup["periodSeconds"] == 1
    assert startup["periodSeconds"] * startup["failureThreshold"] == 120
    assert readiness == {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 5, "timeoutSeconds": 2,
                         "failureThreshold": 3}  # fmt: skip
    assert liveness["timeoutSeconds"] >= readiness["timeoutSeconds"]  # the most patient: it restarts the pod
    assert liveness["periodSeconds"] * liveness["failureThreshold"] == 30


def test_defaulted_probes_use_the_startup_path_without_a_readiness_probe(
    make_app: MakeApp, runtime: WasmRuntime
) -> None:
    app = make_app(ports=[HTTP_PORT], probes={"startup": {"path": "/started"}, "liveness": {"path": "/live"}})
    app_container = container(build_deployment(app, runtime, PINNED))
    assert app_container["readinessProbe"]["httpGet"] == {"path": "/started", "port": "http"}
    assert app_container["livenessProbe"] == {"httpGet": {"path": "/live", "port": "http"}}


def test_defaulted_probes_use_the_liveness_path_when_only_it_is_given(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[HTTP_PORT], probes={"liveness": {"path": "/healthz", "port": 9000}})
    app_container = container(build_deployment(app, runtime, PINNED))
    assert app_container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": 9000}
    assert app_container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": 9000}
    assert app_container["startupProbe"]["failureThreshold"] == 120


def test_every_container_reports_its_last_log_lines_when_it_fails(make_app: MakeApp, runtime: WasmRuntime) -> None:
    for app in (make_app(), make_app(ports=[HTTP_PORT])):
        assert container(build_deployment(app, runtime, PINNED))["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_http_app_drains_with_a_pre_stop_sleep(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(ports=[HTTP_PORT]), runtime, PINNED)
    assert container(deployment)["lifecycle"] == {"preStop": {"sleep": {"seconds": DEFAULT_DRAIN_SECONDS}}}
    assert "terminationGracePeriodSeconds" not in pod_spec(deployment)  # Kubernetes' 30 s outlast 5 s


def test_app_without_http_port_has_no_pre_stop_hook(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(ports=[{"name": "grpc", "containerPort": 9000}]), runtime, PINNED)
    assert "lifecycle" not in container(deployment)
    assert "terminationGracePeriodSeconds" not in pod_spec(deployment)


def test_drain_seconds_zero_turns_the_hook_off(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert "lifecycle" not in container(build_deployment(make_app(ports=[HTTP_PORT], drainSeconds=0), runtime, PINNED))


def test_drain_seconds_can_be_asked_for_without_an_http_port(make_app: MakeApp, runtime: WasmRuntime) -> None:
    lifecycle = container(build_deployment(make_app(drainSeconds=3), runtime, PINNED))["lifecycle"]
    assert lifecycle == {"preStop": {"sleep": {"seconds": 3}}}


@pytest.mark.parametrize(("drain", "grace"), [(20, None), (25, 35), (60, 70), (300, 310)])
def test_grace_period_always_outlasts_the_drain(
    make_app: MakeApp, runtime: WasmRuntime, drain: int, grace: int | None
) -> None:
    spec = pod_spec(build_deployment(make_app(ports=[HTTP_PORT], drainSeconds=drain), runtime, PINNED))
    assert spec.get("terminationGracePeriodSeconds") == grace
    assert (grace or 30) >= drain + 10


def test_explicit_grace_period_is_used_and_shortens_the_default_drain(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(ports=[HTTP_PORT], terminationGracePeriodSeconds=3), runtime, PINNED)
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] == 3
    assert container(deployment)["lifecycle"]["preStop"]["sleep"]["seconds"] == 2


def test_explicit_grace_period_of_one_second_leaves_no_time_to_drain(make_app: MakeApp, runtime: WasmRuntime) -> None:
    deployment = build_deployment(make_app(ports=[HTTP_PORT], terminationGracePeriodSeconds=1), runtime, PINNED)
    assert "lifecycle" not in container(deployment)


def test_http_app_rolls_out_without_losing_a_serving_pod(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert build_deployment(make_app(ports=[HTTP_PORT]), runtime, PINNED)["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
    }
    assert "strategy" in build_deployment(make_app(service={}), runtime, PINNED)["spec"]  # the runtime's port


def test_declared_strategy_wins_over_the_http_default(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(ports=[HTTP_PORT], strategy={"type": "Recreate"})
    assert build_deployment(app, runtime, PINNED)["spec"]["strategy"] == {"type": "Recreate"}


# --- Spin variables -------------------------------------------------------------------------------


def test_spin_variables_become_spin_variable_env(make_app: MakeApp, runtime: WasmRuntime) -> None:
    app = make_app(
        variables=[
            {"name": "greeting", "value": "hi"},
            {"name": "api_token_2", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "mode", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode", "optional": True}}},
            {"name": "empty", "value": ""},
        ]
    )
    assert container(build_deployment(app, runtime, PINNED, ArtifactKind.SPIN_APP))["env"] == [
        {"name": "SPIN_VARIABLE_GREETING", "value": "hi"},
        {"name": "SPIN_VARIABLE_API_TOKEN_2", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "SPIN_VARIABLE_MODE",
         "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode", "optional": True}}},
        {"name": "SPIN_VARIABLE_EMPTY", "value": ""},
    ]  # fmt: skip


def test_spin_variables_come_after_the_listen_address_and_before_env(
    make_app: MakeApp, make_runtime: MakeRuntime
) -> None:
    runtime = make_runtime(listenAddressEnv="SPIN_HTTP_LISTEN_ADDR")
    app = make_app(ports=[HTTP_PORT], variables=[{"name": "a", "value": "1"}, {"name": "b", "value": "2"}],
                   env=[{"name": "SPIN_VARIABLE_B", "value": "explicit"}])  # fmt: skip
    assert container(build_deployment(app, runtime, PINNED, ArtifactKind.SPIN_APP))["env"] == [
        {"name": "SPIN_HTTP_LISTEN_ADDR", "value": "0.0.0.0:8080"},
        {"name": "SPIN_VARIABLE_A", "value": "1"},
        {"name": "SPIN_VARIABLE_B", "value": "explicit"},
    ]


@pytest.mark.parametrize("kind", [ArtifactKind.MODULE, ArtifactKind.COMPONENT, None])
def test_spin_variables_are_refused_for_other_apps(
    make_app: MakeApp, runtime: WasmRuntime, kind: ArtifactKind | None
) -> None:
    with pytest.raises(SpecError) as caught:
        build_children(make_app(variables=[{"name": "a", "value": "1"}]), runtime, PINNED, kind)
    assert caught.value.reason == "VariablesNeedSpinApp"
    assert "spec.variables" in caught.value.message and "use env" in caught.value.message


def test_no_variables_is_fine_for_any_kind(make_app: MakeApp, runtime: WasmRuntime) -> None:
    assert "env" not in container(build_deployment(make_app(), runtime, PINNED, ArtifactKind.MODULE))


# --- OpenTelemetry --------------------------------------------------------------------------------

OTEL_RUNTIME = {
    "endpoint": "http://otel-collector.observability:4318",
    "tracesEndpoint": "http://tempo.observability:4318/v1/traces",
    "protocol": "http/protobuf",
}


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(deployment).get("env", [])}


def test_runtime_otel_becomes_the_standard_variables(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(otel={**OTEL_RUNTIME, "metricsEndpoint": "https://m:4318", "logsEndpoint": "https://l"})
    assert env_of(build_deployment(make_app(), runtime, PINNED)) == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel-collector.observability:4318",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo.observability:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "https://m:4318",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://l",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }


def test_app_otel_overrides_the_runtime_field_by_field(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    runtime = make_runtime(otel=OTEL_RUNTIME)
    app = make_app(otel={"endpoint": "http://team-collector:4317", "protocol": "grpc"})
    assert env_of(build_deployment(app, runtime, PINNED)) == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://team-collector:4317",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://tempo.observability:4318/v1/traces",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
    }


def test_app_otel_without_a_runtime_setting(make_app: MakeApp, runtime: WasmRuntime) -> None:
    env = env_of(build_deployment(make_app(otel={"logsEndpoint": "http://logs:4318/v1/logs"}), runtime, PINNED))
    assert env == {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:4318/v1/logs"}


def test_explicit_env_wins_over_otel(make_app: MakeApp, make_runtime: MakeRuntime) -> None:
    app = make_app(env=[{"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/json"}])
    env = container(build_deployment(app, make_runtime(otel=OTEL_RUNTIME), PINNED))["env"]
    assert [e["name"] for e in env].count("OTEL_EXPORTER_OTLP_PROTOCOL") == 1
    assert env[-1] == {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/json"}
