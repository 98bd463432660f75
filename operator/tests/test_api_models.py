"""The pydantic API models: wire format, defaults, bounds; and the CEL rules the CRDs carry.

Pydantic enforces the per-field constraints; the cross-field rules live in CEL
(`x-kubernetes-validations`) and are enforced by the API server. Those are evaluated here with
cel-python against the schema nodes of the generated CRD, the way the API server walks an object.
cel-python's `matches` uses RE2, as Kubernetes does; if cel-python is not installed the CEL tests
skip, and the image pattern is still checked with Python's `re`.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
from pydantic import ValidationError

from wasmkube.api.artifact import ArtifactKind, ArtifactLayout
from wasmkube.api.common import QUANTITY_PATTERN, Condition, TaintEffect, Toleration, TolerationOperator
from wasmkube.api.crdgen import WASMAPP, WASMRUNTIME, crd_manifest
from wasmkube.api.wasmapp import (
    IMAGE_REFERENCE_REGEX,
    ArtifactStatus,
    ContainerPort,
    Protocol,
    ServiceType,
    StrategyType,
    UpdatePolicy,
    Volume,
    WasmApp,
    WasmAppSpec,
)
from wasmkube.api.wasmruntime import WasmRuntime, WasmRuntimeSpec
from wasmkube.controller.artifacts import DEFAULT_TRACK_INTERVAL_SECONDS, needs_resolution, seconds_until_next_check

DIGEST = "sha256:" + "ab" * 32

VALID_IMAGES = [
    "nginx",
    "127.0.0.1:5001/a/b:v1",
    f"ghcr.io/x/y@{DIGEST}",
    "images.example.com/team/app:1.0",
    f"images.example.com:443/team/app:1.0@{DIGEST}",
    "localhost/wasm/hello_world:latest",
    "ghcr.io/spinkube/spin-operator/hello-world:20240708-130250-gfefd2b1",
    "docker.io/library/some-name__x:Tag_1.2-rc",
]
INVALID_IMAGES = [
    "UPPER/Case",
    "a b",
    "http://x/y",
    "ghcr.io/x/y@sha256:short",
    "ghcr.io/x/y:",
    "ghcr.io/x/Y",
    "ghcr.io/x/y:-tag",
    "ghcr.io//y",
    "",
]


def spec_body(**fields: Any) -> dict[str, Any]:
    return {"image": "registry.example.com/team/app:1.0", **fields}


def app_body(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "app", "namespace": "ns"}, "spec": spec_body(**spec)}


# --- wire format ----------------------------------------------------------------------------------


def test_spec_parses_camel_case_fields() -> None:
    spec = WasmAppSpec.model_validate(
        spec_body(
            updatePolicy="Track",
            trackIntervalSeconds=60,
            imagePullSecrets=[{"name": "pull"}],
            serviceAccountName="runner",
            ports=[{"name": "http", "containerPort": 8080}],
            volumeMounts=[{"name": "data", "mountPath": "/data", "readOnly": True}],
            volumes=[{"name": "data", "emptyDir": {}}],
            envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "APP_"}],
            podLabels={"team": "a"},
            topologySpreadConstraints=[{"maxSkew": 1}],
        )
    )
    assert spec.update_policy is UpdatePolicy.TRACK
    assert spec.track_interval_seconds == 60
    assert spec.image_pull_secrets is not None and spec.image_pull_secrets[0].name == "pull"
    assert spec.service_account_name == "runner"
    assert spec.ports is not None and spec.ports[0].container_port == 8080
    assert spec.volume_mounts is not None and spec.volume_mounts[0].mount_path == "/data"
    assert spec.volume_mounts[0].read_only is True
    assert spec.env_from is not None and spec.env_from[0].config_map_ref is not None
    assert spec.env_from[0].config_map_ref.name == "cfg"
    assert spec.pod_labels == {"team": "a"}
    assert spec.topology_spread_constraints == [{"maxSkew": 1}]


def test_snake_case_names_are_accepted_too() -> None:
    port = ContainerPort.model_validate({"container_port": 80})
    assert port.container_port == 80


def test_dump_by_alias_gives_camel_case_back() -> None:
    port = ContainerPort.model_validate({"name": "http", "containerPort": 8080})
    assert port.model_dump(by_alias=True, mode="json") == {"name": "http", "containerPort": 8080, "protocol": "TCP"}


def test_unknown_fields_are_ignored_not_refused() -> None:
    spec = WasmAppSpec.model_validate(spec_body(someFutureField={"x": 1}))
    assert not hasattr(spec, "someFutureField")
    assert "someFutureField" not in spec.model_dump(by_alias=True)


def test_models_are_frozen() -> None:
    spec = WasmAppSpec.model_validate(spec_body())
    with pytest.raises(ValidationError):
        spec.image = "other"  # type: ignore[misc]


def test_image_is_required() -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate({})


def test_empty_image_is_refused() -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate({"image": ""})


def test_wasmapp_object_accessors() -> None:
    app = WasmApp.model_validate(
        {
            "metadata": {"name": "a", "namespace": "ns", "uid": "u", "generation": 3, "labels": {"k": "v"}},
            "spec": spec_body(),
        }
    )
    assert (app.name, app.namespace, app.uid, app.generation, app.labels) == ("a", "ns", "u", 3, {"k": "v"})
    assert (app.api_version, app.kind) == ("wasmkube.dev/v1alpha1", "WasmApp")


def test_wasmapp_accessor_fallbacks() -> None:
    app = WasmApp.model_validate({"metadata": {"name": "a"}, "spec": spec_body()})
    assert app.namespace == "default"
    assert app.uid == ""
    assert app.generation == 0
    assert app.labels == {}


def test_wasmapp_status_parses_artifact() -> None:
    app = WasmApp.model_validate(
        {
            **app_body(),
            "status": {
                "observedGeneration": 2,
                "readyReplicas": 1,
                "artifact": {
                    "reference": "r/a:1",
                    "digest": DIGEST,
                    "pinnedImage": f"r/a@{DIGEST}",
                    "kind": "Component",
                    "layout": "CNCFWasmArtifact",
                },
            },
        }
    )
    assert app.status is not None and app.status.artifact is not None
    assert app.status.artifact.kind is ArtifactKind.COMPONENT
    assert app.status.artifact.layout is ArtifactLayout.CNCF_WASM
    assert app.status.ready_replicas == 1


# --- defaults -------------------------------------------------------------------------------------


def test_optional_spec_fields_default_to_unset() -> None:
    spec = WasmAppSpec.model_validate(spec_body())
    for name, value in spec:
        if name != "image":
            assert value is None, name


def test_container_port_defaults_to_tcp() -> None:
    assert ContainerPort.model_validate({"containerPort": 80}).protocol is Protocol.TCP


def test_service_defaults() -> None:
    spec = WasmAppSpec.model_validate(spec_body(service={}))
    assert spec.service is not None
    assert spec.service.enabled is True
    assert spec.service.type is ServiceType.CLUSTER_IP
    assert spec.service.port == 80
    assert spec.service.target_port is None


def test_probe_defaults() -> None:
    spec = WasmAppSpec.model_validate(spec_body(probes={"readiness": {}}))
    assert spec.probes is not None and spec.probes.use_defaults is True
    assert spec.probes.readiness is not None and spec.probes.readiness.path == "/"


def test_strategy_defaults_to_rolling_update() -> None:
    spec = WasmAppSpec.model_validate(spec_body(strategy={}))
    assert spec.strategy is not None and spec.strategy.type is StrategyType.ROLLING_UPDATE


def test_autoscaling_defaults() -> None:
    spec = WasmAppSpec.model_validate(spec_body(autoscaling={"maxReplicas": 5}))
    assert spec.autoscaling is not None
    assert spec.autoscaling.min_replicas == 1
    assert spec.autoscaling.target_cpu_utilization_percentage == 80
    assert spec.autoscaling.target_memory_utilization_percentage is None


def test_autoscaling_cpu_target_is_spelled_as_in_autoscaling_v1() -> None:
    spec = WasmAppSpec.model_validate(spec_body(autoscaling={"maxReplicas": 5, "targetCPUUtilizationPercentage": 50}))
    assert spec.autoscaling is not None and spec.autoscaling.target_cpu_utilization_percentage == 50
    dumped = spec.autoscaling.model_dump(by_alias=True)
    assert dumped["targetCPUUtilizationPercentage"] == 50


def test_runtime_spec_defaults() -> None:
    spec = WasmRuntimeSpec.model_validate({"handler": "spin"})
    assert spec.artifact_kinds == [ArtifactKind.MODULE, ArtifactKind.COMPONENT]
    assert spec.default is False
    assert spec.default_port == 8080
    assert spec.listen_address_env is None


def test_runtime_runs_only_its_artifact_kinds() -> None:
    spec = WasmRuntimeSpec.model_validate({"handler": "spin", "artifactKinds": ["SpinApp"]})
    assert spec.runs(ArtifactKind.SPIN_APP)
    assert not spec.runs(ArtifactKind.MODULE)


def test_runtime_class_name_defaults_to_runtime_name() -> None:
    runtime = WasmRuntime.model_validate({"metadata": {"name": "wasmtime"}, "spec": {"handler": "wasmtime"}})
    assert runtime.runtime_class_name == "wasmtime"


def test_runtime_class_name_from_spec_wins() -> None:
    runtime = WasmRuntime.model_validate(
        {"metadata": {"name": "wasmtime"}, "spec": {"handler": "wasmtime", "runtimeClassName": "wasm-fast"}}
    )
    assert runtime.runtime_class_name == "wasm-fast"


def test_runtime_handler_must_be_a_dns_label() -> None:
    with pytest.raises(ValidationError):
        WasmRuntimeSpec.model_validate({"handler": "Spin_Shim"})


def test_runtime_overhead_keeps_quantities() -> None:
    spec = WasmRuntimeSpec.model_validate({"handler": "spin", "overhead": {"podFixed": {"cpu": "10m", "memory": 1}}})
    assert spec.overhead is not None and spec.overhead.pod_fixed == {"cpu": "10m", "memory": 1}


def test_runtime_artifact_kinds_must_not_be_empty() -> None:
    with pytest.raises(ValidationError):
        WasmRuntimeSpec.model_validate({"handler": "spin", "artifactKinds": []})


# --- bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("port", [1, 80, 65535])
def test_container_port_in_range_is_accepted(port: int) -> None:
    assert ContainerPort.model_validate({"containerPort": port}).container_port == port


@pytest.mark.parametrize("port", [0, -1, 65536])
def test_container_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ValidationError):
        ContainerPort.model_validate({"containerPort": port})


@pytest.mark.parametrize("port", [0, 65536])
def test_service_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(service={"port": port}))


@pytest.mark.parametrize("port", [0, 65536])
def test_runtime_default_port_out_of_range_is_refused(port: int) -> None:
    with pytest.raises(ValidationError):
        WasmRuntimeSpec.model_validate({"handler": "spin", "defaultPort": port})


def test_port_name_longer_than_fifteen_characters_is_refused() -> None:
    with pytest.raises(ValidationError):
        ContainerPort.model_validate({"name": "h" * 16, "containerPort": 80})


@pytest.mark.parametrize("replicas", [0, 1, 1000])
def test_replicas_up_to_one_thousand_are_accepted(replicas: int) -> None:
    assert WasmAppSpec.model_validate(spec_body(replicas=replicas)).replicas == replicas


@pytest.mark.parametrize("replicas", [-1, 1001])
def test_replicas_out_of_range_are_refused(replicas: int) -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(replicas=replicas))


def test_autoscaling_max_replicas_is_capped() -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(autoscaling={"maxReplicas": 1001}))


def test_autoscaling_needs_max_replicas() -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(autoscaling={"minReplicas": 2}))


@pytest.mark.parametrize("seconds", [29, 86401])
def test_track_interval_out_of_range_is_refused(seconds: int) -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(trackIntervalSeconds=seconds))


def test_runtime_name_must_be_a_dns_subdomain() -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(runtime="Not_A_Name"))


def test_mount_path_must_be_absolute() -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(volumeMounts=[{"name": "data", "mountPath": "data"}]))


def test_probe_path_must_be_absolute() -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(probes={"liveness": {"path": "healthz"}}))


def test_unknown_update_policy_is_refused() -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(updatePolicy="Always"))


@pytest.mark.parametrize("quantity", ["100m", "64Mi", "1", "1.5", "2Gi", "1e3", "0.5"])
def test_quantity_pattern_accepts_kubernetes_quantities(quantity: str) -> None:
    assert re.fullmatch(QUANTITY_PATTERN, quantity)


@pytest.mark.parametrize("quantity", ["lots", "64MB", "1.2.3", "Mi", "", "1 Gi"])
def test_quantity_pattern_refuses_other_strings(quantity: str) -> None:
    assert not re.fullmatch(QUANTITY_PATTERN, quantity)


def test_condition_reason_must_be_camel_case_word() -> None:
    with pytest.raises(ValidationError):
        Condition.model_validate(
            {"type": "Ready", "status": "True", "reason": "not a reason", "lastTransitionTime": "2024-01-01T00:00:00Z"}
        )


# --- volumes keep their source --------------------------------------------------------------------


def test_volume_keeps_its_source_fields() -> None:
    volume = Volume.model_validate({"name": "cfg", "configMap": {"name": "app-config", "items": [{"key": "a"}]}})
    assert volume.name == "cfg"
    assert volume.source() == {"configMap": {"name": "app-config", "items": [{"key": "a"}]}}


def test_volume_keeps_an_empty_source_object() -> None:
    assert Volume.model_validate({"name": "scratch", "emptyDir": {}}).source() == {"emptyDir": {}}


def test_volume_source_survives_parsing_inside_a_spec() -> None:
    spec = WasmAppSpec.model_validate(spec_body(volumes=[{"name": "s", "secret": {"secretName": "tls"}}]))
    assert spec.volumes is not None and spec.volumes[0].source() == {"secret": {"secretName": "tls"}}


def test_volume_source_does_not_include_the_name() -> None:
    assert "name" not in Volume.model_validate({"name": "x", "emptyDir": {}}).source()


def test_volume_name_must_be_a_dns_label() -> None:
    with pytest.raises(ValidationError):
        Volume.model_validate({"name": "Bad.Name", "emptyDir": {}})


# --- tolerations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("operator", list(TolerationOperator))
def test_toleration_operators_parse_to_enums(operator: TolerationOperator) -> None:
    assert Toleration.model_validate({"key": "k", "operator": operator.value}).operator is operator


@pytest.mark.parametrize("effect", list(TaintEffect))
def test_toleration_effects_parse_to_enums(effect: TaintEffect) -> None:
    assert Toleration.model_validate({"key": "k", "effect": effect.value}).effect is effect


def test_toleration_operator_values_are_the_kubernetes_ones() -> None:
    assert {o.value for o in TolerationOperator} == {"Exists", "Equal"}
    assert {e.value for e in TaintEffect} == {"NoSchedule", "PreferNoSchedule", "NoExecute"}


@pytest.mark.parametrize("body", [{"operator": "In"}, {"effect": "NoWay"}, {"operator": "exists"}])
def test_toleration_unknown_enum_values_are_refused(body: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Toleration.model_validate({"key": "k", **body})


def test_toleration_dumps_camel_case() -> None:
    toleration = Toleration.model_validate({"key": "k", "operator": "Exists", "tolerationSeconds": 30})
    assert toleration.model_dump(by_alias=True, exclude_none=True, mode="json") == {
        "key": "k",
        "operator": "Exists",
        "tolerationSeconds": 30,
    }


# --- update policy and registry resolution --------------------------------------------------------


def test_effective_update_policy_defaults_to_pinned() -> None:
    assert WasmAppSpec.model_validate(spec_body()).effective_update_policy is UpdatePolicy.PINNED


@pytest.mark.parametrize("policy", list(UpdatePolicy))
def test_effective_update_policy_is_the_declared_one(policy: UpdatePolicy) -> None:
    assert WasmAppSpec.model_validate(spec_body(updatePolicy=policy.value)).effective_update_policy is policy


def recorded_artifact(reference: str, resolved_at: str | None = "2024-01-01T00:00:00Z") -> ArtifactStatus:
    return ArtifactStatus(
        reference=reference,
        digest=DIGEST,
        pinned_image=f"{reference.split(':')[0]}@{DIGEST}",
        kind=ArtifactKind.MODULE,
        layout=ArtifactLayout.CNCF_WASM,
        resolved_at=resolved_at,
    )


JAN_1_2024 = 1704067200.0  # 2024-01-01T00:00:00Z


def test_resolution_needed_when_nothing_is_recorded() -> None:
    app = WasmApp.model_validate(app_body())
    assert needs_resolution(app, None, JAN_1_2024)


def test_resolution_needed_when_the_image_changed() -> None:
    app = WasmApp.model_validate(app_body(image="registry.example.com/team/app:2.0"))
    assert needs_resolution(app, recorded_artifact("registry.example.com/team/app:1.0"), JAN_1_2024)


def test_pinned_app_is_never_resolved_again() -> None:
    app = WasmApp.model_validate(app_body())
    recorded = recorded_artifact(app.spec.image)
    assert not needs_resolution(app, recorded, JAN_1_2024 + 10 * 365 * 86400)


def test_tracked_app_is_resolved_again_after_the_default_interval() -> None:
    app = WasmApp.model_validate(app_body(updatePolicy="Track"))
    recorded = recorded_artifact(app.spec.image)
    assert not needs_resolution(app, recorded, JAN_1_2024 + DEFAULT_TRACK_INTERVAL_SECONDS - 1)
    assert needs_resolution(app, recorded, JAN_1_2024 + DEFAULT_TRACK_INTERVAL_SECONDS)


def test_tracked_app_honours_its_own_interval() -> None:
    app = WasmApp.model_validate(app_body(updatePolicy="Track", trackIntervalSeconds=60))
    recorded = recorded_artifact(app.spec.image)
    assert not needs_resolution(app, recorded, JAN_1_2024 + 59)
    assert needs_resolution(app, recorded, JAN_1_2024 + 60)


@pytest.mark.parametrize("resolved_at", [None, "yesterday"])
def test_tracked_app_without_a_readable_resolution_time_is_resolved(resolved_at: str | None) -> None:
    app = WasmApp.model_validate(app_body(updatePolicy="Track"))
    assert needs_resolution(app, recorded_artifact(app.spec.image, resolved_at), JAN_1_2024)


# --- the image reference pattern (Python `re`) ----------------------------------------------------


@pytest.mark.parametrize("image", VALID_IMAGES)
def test_image_pattern_accepts_oci_references(image: str) -> None:
    assert re.match(IMAGE_REFERENCE_REGEX, image)


@pytest.mark.parametrize("image", INVALID_IMAGES)
def test_image_pattern_refuses_non_references(image: str) -> None:
    assert not re.match(IMAGE_REFERENCE_REGEX, image)


# --- the CEL rules, evaluated with cel-python -----------------------------------------------------


@cache
def _program(rule: str) -> Any:
    celpy = pytest.importorskip("celpy")
    env = celpy.Environment()
    return env.program(env.compile(rule))


def cel_violations(schema: dict[str, Any], value: Any) -> list[str]:
    """Messages of every CEL rule that fails, walking `value` along `schema` as the API server does."""
    celpy = pytest.importorskip("celpy")
    messages: list[str] = []
    if value is None:
        return messages
    for rule in schema.get("x-kubernetes-validations") or []:
        try:
            ok = bool(_program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)}))
        except celpy.CELEvalError as exc:
            messages.append(f"CEL error in {rule['rule']!r}: {exc}")
            continue
        if not ok:
            messages.append(rule["message"])
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            messages += cel_violations(sub, value.get(name))
        if isinstance(schema.get("additionalProperties"), dict):
            for sub_value in value.values():
                messages += cel_violations(schema["additionalProperties"], sub_value)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            messages += cel_violations(schema["items"], item)
    return messages


def _spec_schema(spec: Any) -> dict[str, Any]:
    schema: dict[str, Any] = crd_manifest(spec)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema["properties"]["spec"]  # type: ignore[no-any-return]


def app_violations(**spec: Any) -> list[str]:
    return cel_violations(_spec_schema(WASMAPP), spec_body(**spec))


def runtime_violations(**spec: Any) -> list[str]:
    return cel_violations(_spec_schema(WASMRUNTIME), {"handler": "spin", **spec})


def test_every_cel_rule_compiles() -> None:
    pytest.importorskip("celpy")
    for spec in (WASMAPP, WASMRUNTIME):
        schema = crd_manifest(spec)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        rules: list[str] = []
        stack = [schema]
        while stack:
            node = stack.pop()
            rules += [r["rule"] for r in node.get("x-kubernetes-validations") or []]
            stack += list((node.get("properties") or {}).values())
            stack += [node[k] for k in ("items", "additionalProperties") if isinstance(node.get(k), dict)]
        assert rules
        for rule in rules:
            _program(rule)


def test_a_full_valid_spec_passes_every_rule() -> None:
    assert (
        app_violations(
            updatePolicy="Track",
            trackIntervalSeconds=60,
            resources={"requests": {"cpu": "100m", "memory": "64Mi"}},
            autoscaling={"minReplicas": 1, "maxReplicas": 4, "targetMemoryUtilizationPercentage": 70},
            env=[{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
            envFrom=[{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}}],
            # Every port named: cel-python (unlike cel-go) lets an error escape a nested exists_one on
            # the short-circuited side of `||`, so a mix of named and unnamed ports cannot be judged here.
            ports=[{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9090}],
            volumes=[{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}],
            volumeMounts=[{"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/b"}],
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
            tolerations=[{"key": "k", "operator": "Exists"}, {"key": "k", "operator": "Equal", "value": "v"}],
        )
        == []
    )


@pytest.mark.parametrize("image", VALID_IMAGES)
def test_cel_image_rule_accepts_oci_references(image: str) -> None:
    assert app_violations(image=image) == []


@pytest.mark.parametrize("image", [i for i in INVALID_IMAGES if i])
def test_cel_image_rule_refuses_non_references(image: str) -> None:
    (message,) = app_violations(image=image)
    assert message.startswith("image must be an OCI reference")


def test_cel_replicas_and_autoscaling_are_exclusive() -> None:
    messages = app_violations(replicas=2, autoscaling={"maxReplicas": 3}, resources={"requests": {"cpu": "1"}})
    assert len(messages) == 1 and "mutually exclusive" in messages[0]


def test_cel_autoscaling_needs_a_cpu_request() -> None:
    assert app_violations(autoscaling={"maxReplicas": 3}) == [
        "autoscaling on CPU utilization needs resources.requests.cpu"
    ]


def test_cel_memory_autoscaling_needs_a_memory_request() -> None:
    messages = app_violations(
        autoscaling={"maxReplicas": 3, "targetMemoryUtilizationPercentage": 50},
        resources={"requests": {"cpu": "1"}},
    )
    assert messages == ["autoscaling on memory utilization needs resources.requests.memory"]


def test_cel_autoscaling_min_must_not_exceed_max() -> None:
    messages = app_violations(autoscaling={"minReplicas": 5, "maxReplicas": 3}, resources={"requests": {"cpu": "1"}})
    assert messages == ["autoscaling.minReplicas must not exceed autoscaling.maxReplicas"]


def test_cel_track_refuses_a_digest_pinned_image() -> None:
    messages = app_violations(image=f"ghcr.io/x/y@{DIGEST}", updatePolicy="Track")
    assert len(messages) == 1 and "cannot be tracked" in messages[0]


def test_cel_track_interval_needs_track() -> None:
    assert app_violations(trackIntervalSeconds=60) == ["trackIntervalSeconds is only used with updatePolicy Track"]
    assert app_violations(trackIntervalSeconds=60, updatePolicy="Pinned") != []


def test_cel_volume_mounts_must_name_a_volume() -> None:
    assert app_violations(volumeMounts=[{"name": "data", "mountPath": "/d"}]) == [
        "every volumeMounts[].name must name an entry of volumes"
    ]


def list_map_keys(field: str) -> list[str] | None:
    """The list-map keys of a WasmApp spec list: the API server itself refuses two items with the
    same keys (`Duplicate value`), so no CEL rule has to (e2e/tools/celcost `check` shows it)."""
    node = _spec_schema(WASMAPP)["properties"][field]
    if node.get("x-kubernetes-list-type") != "map":
        return None
    assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"].get("required") or []), field
    return list(node["x-kubernetes-list-map-keys"])


@pytest.mark.parametrize(("field", "keys"), [("volumes", ["name"]), ("ports", ["containerPort"]),
                                             ("variables", ["name"])])
def test_unique_lists_are_list_maps_keyed_by_their_unique_field(field: str, keys: list[str]) -> None:
    assert list_map_keys(field) == keys


def test_uniqueness_is_left_to_the_list_map_not_to_cel() -> None:
    assert app_violations(volumes=[{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]) == []
    assert app_violations(ports=[{"containerPort": 80}, {"containerPort": 80}]) == []


def test_cel_port_names_must_be_unique() -> None:
    messages = app_violations(ports=[{"name": "http", "containerPort": 80}, {"name": "http", "containerPort": 81}])
    assert messages == ["ports[].name must be unique"]


def test_cel_unnamed_ports_do_not_clash() -> None:
    assert app_violations(ports=[{"containerPort": 80}, {"containerPort": 81}]) == []


def test_cel_env_value_and_value_from_are_exclusive() -> None:
    messages = app_violations(env=[{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s"}}}])
    assert messages == ["env: set value or valueFrom, not both"]


@pytest.mark.parametrize(
    "entry", [{"prefix": "X_"}, {"configMapRef": {"name": "c"}, "secretRef": {"name": "s"}}], ids=["none", "both"]
)
def test_cel_env_from_names_exactly_one_source(entry: dict[str, Any]) -> None:
    assert app_violations(envFrom=[entry]) == ["envFrom: each entry names exactly one of configMapRef or secretRef"]


def test_cel_rolling_update_settings_need_rolling_update_strategy() -> None:
    messages = app_violations(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": 1}})
    assert messages == ["strategy.rollingUpdate is only allowed with type RollingUpdate"]


def test_cel_exists_toleration_must_not_set_a_value() -> None:
    messages = app_violations(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}])
    assert messages == ["a toleration with operator Exists must not set a value"]


def test_cel_runtime_default_spec_passes() -> None:
    assert runtime_violations() == []
    assert runtime_violations(artifactKinds=["Module", "Component", "SpinApp"]) == []


def test_cel_runtime_refuses_container_kind() -> None:
    assert runtime_violations(artifactKinds=["Module", "Container"]) == [
        "artifactKinds lists Wasm kinds only (Module, Component, SpinApp)"
    ]


def test_cel_runtime_refuses_repeated_kinds() -> None:
    assert runtime_violations(artifactKinds=["Module", "Module"]) == ["artifactKinds must not repeat a kind"]


def test_cel_runtime_tolerations_are_checked_too() -> None:
    messages = runtime_violations(tolerations=[{"key": "k", "operator": "Exists", "value": "v"}])
    assert messages == ["a toleration with operator Exists must not set a value"]


def test_next_track_check_counts_from_the_recorded_resolution() -> None:
    # An operator restarted 50 s after the last check waits the remaining 10 s, not 60 more.
    app = WasmApp.model_validate(app_body(updatePolicy="Track", trackIntervalSeconds=60))
    recorded = recorded_artifact(app.spec.image)
    assert seconds_until_next_check(app, recorded, JAN_1_2024) == 60
    assert seconds_until_next_check(app, recorded, JAN_1_2024 + 50) == 10
    assert seconds_until_next_check(app, recorded, JAN_1_2024 + 600) == 1  # overdue: soon, not at once
    assert seconds_until_next_check(app, recorded, JAN_1_2024 - 3600) == 60  # clock skew: at most an interval


def test_pinned_app_has_no_next_check() -> None:
    app = WasmApp.model_validate(app_body())
    assert seconds_until_next_check(app, recorded_artifact(app.spec.image), JAN_1_2024) is None


GOOD_KEYS = ["team", "app.kubernetes.io/name", "example.com/a_b.c-d", "a" * 63, "x.y/" + "Z" * 63]
BAD_KEYS = ["", "bad key", "-lead", "trail-", "a/b/c", "Upper.Example.com/x", "a" * 64, "/name", "prefix/"]


@pytest.mark.parametrize("key", GOOD_KEYS)
def test_cel_label_and_annotation_keys_accept_qualified_names(key: str) -> None:
    assert app_violations(podLabels={key: "v"}, podAnnotations={key: "any value at all"},
                          nodeSelector={key: "v"}) == []  # fmt: skip


@pytest.mark.parametrize("key", BAD_KEYS)
def test_cel_label_and_annotation_keys_refuse_other_strings(key: str) -> None:
    messages = app_violations(podLabels={key: "v"}, podAnnotations={key: "v"}, nodeSelector={key: "v"})
    assert sorted(m.split(" key ")[0] for m in messages) == [
        "every annotation", "every label", "every nodeSelector",
    ]  # fmt: skip


@pytest.mark.parametrize(("value", "ok"), [("", True), ("v1.2_3-x", True), ("has space", False),
                                           ("-lead", False), ("trail.", False), ("ünïcode", False)])
def test_cel_label_values_follow_the_label_syntax(value: str, ok: bool) -> None:
    messages = app_violations(podLabels={"k": value}, nodeSelector={"k": value})
    assert (messages == []) is ok, messages


def test_cel_runtime_node_selector_keys_are_checked_too() -> None:
    assert runtime_violations(nodeSelector={"bad key": "ready"}) != []
    assert runtime_violations(nodeSelector={"wasmkube.dev/shim-spin": "ready"}) == []


# --- Spin variables, OpenTelemetry, shutdown ------------------------------------------------------

# Spin's own examples of good and bad variable names (spin-expressions' key tests), plus a few more.
SPIN_NAMES_OK = ["a", "abc", "a1b2c3", "a_1", "a_1_b_3", "api_token", "x9"]
SPIN_NAMES_BAD = ["aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y", "API_TOKEN", "a b", "é"]


@pytest.mark.parametrize("name", SPIN_NAMES_OK)
def test_cel_spin_variable_names_accept_what_spin_accepts(name: str) -> None:
    assert app_violations(variables=[{"name": name, "value": "v"}]) == []


@pytest.mark.parametrize("name", SPIN_NAMES_BAD)
def test_cel_spin_variable_names_refuse_what_spin_refuses(name: str) -> None:
    (message,) = app_violations(variables=[{"name": name, "value": "v"}])
    assert message.startswith("variables[].name must be a Spin variable name")


def test_spin_variable_env_name_is_upper_cased() -> None:
    spec = WasmAppSpec.model_validate(spec_body(variables=[{"name": "api_token_2", "value": "x"}]))
    assert spec.variables is not None and spec.variables[0].env_name == "SPIN_VARIABLE_API_TOKEN_2"


@pytest.mark.parametrize(
    "variable",
    [{"name": "a"}, {"name": "a", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
    ids=["neither", "both"],
)
def test_cel_spin_variable_sets_exactly_one_of_value_or_value_from(variable: dict[str, Any]) -> None:
    assert app_violations(variables=[variable]) == ["variables[]: set exactly one of value or valueFrom"]


@pytest.mark.parametrize(
    "source",
    [{}, {"secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}}],
    ids=["none", "both"],
)
def test_cel_spin_variable_source_names_exactly_one_object(source: dict[str, Any]) -> None:
    messages = app_violations(variables=[{"name": "a", "valueFrom": source}])
    assert messages == ["variables[].valueFrom: set exactly one of secretKeyRef or configMapKeyRef"]


def test_cel_spin_variable_names_must_be_unique() -> None:
    assert list_map_keys("variables") == ["name"]


def test_spin_variable_source_only_takes_secret_and_config_map_keys() -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(
            spec_body(variables=[{"name": "a", "valueFrom": {"secretKeyRef": {"name": "Bad Name", "key": "k"}}}])
        )


OTEL_URLS_OK = [
    "http://otel-collector.observability:4318",
    "https://otel.example.com",
    "http://10.0.0.7:4317",
    "http://[fd00::1]:4318/v1/traces",
    "http://collector:4318/v1/traces",
]
OTEL_URLS_BAD = ["otel-collector:4318", "ftp://x", "http://", "http://a b", "grpc://collector:4317", "http://-x"]


@pytest.mark.parametrize("url", OTEL_URLS_OK)
def test_cel_otel_endpoints_accept_urls(url: str) -> None:
    otel = {"endpoint": url, "tracesEndpoint": url, "metricsEndpoint": url, "logsEndpoint": url}
    assert app_violations(otel=otel) == []
    assert runtime_violations(otel=otel) == []


@pytest.mark.parametrize("url", OTEL_URLS_BAD)
@pytest.mark.parametrize("field", ["endpoint", "tracesEndpoint", "metricsEndpoint", "logsEndpoint"])
def test_cel_otel_endpoints_refuse_non_urls(url: str, field: str) -> None:
    (message,) = app_violations(otel={field: url})
    assert message.startswith(f"otel.{field} must be an http:// or https:// URL")
    assert runtime_violations(otel={field: url}) == [message]


def test_otel_protocol_is_one_of_the_specified_values() -> None:
    spec = WasmRuntimeSpec.model_validate({"handler": "spin", "otel": {"protocol": "http/protobuf"}})
    assert spec.otel is not None and spec.otel.protocol is not None and spec.otel.protocol.value == "http/protobuf"
    with pytest.raises(ValidationError):
        WasmRuntimeSpec.model_validate({"handler": "spin", "otel": {"protocol": "thrift"}})


def test_cel_grace_period_must_outlast_the_drain() -> None:
    assert app_violations(drainSeconds=10, terminationGracePeriodSeconds=11) == []
    (message,) = app_violations(drainSeconds=10, terminationGracePeriodSeconds=10)
    assert message.startswith("terminationGracePeriodSeconds must be longer than drainSeconds")


@pytest.mark.parametrize("seconds", [-1, 301])
def test_drain_seconds_out_of_range_are_refused(seconds: int) -> None:
    with pytest.raises(ValidationError):
        WasmAppSpec.model_validate(spec_body(drainSeconds=seconds))
