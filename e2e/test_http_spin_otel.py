"""HTTP apps, Spin variables and OpenTelemetry against the real API server (KWOK nodes suffice).

What is checked here needs only the apiserver, its admission (CEL) and the scheduler: the refusals
at `kubectl apply`, the Deployment the operator applies (probes, preStop drain, strategy,
termination message, SPIN_VARIABLE_* and OTEL_EXPORTER_OTLP_* env), a Stalled reason for Spin
variables on a module, and a pod the scheduler cannot place reported in the scheduler's words.
Failures that need a kubelet are in e2e/test_pod_failures.py (real node).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from e2e.support import Cluster
from e2e.support.apps import condition, get, wait_condition, wasmapp
from e2e.support.operator import OperatorProcess
from e2e.support.operator_fixtures import ExampleImages


@pytest.fixture
def images(operator: OperatorProcess, example_images: ExampleImages) -> ExampleImages:
    return example_images


def refused(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> str:
    """The API server's refusal of a create (fails the test if it was accepted)."""
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(manifest), check=False)
    assert result.returncode != 0, f"accepted: {manifest}"
    return result.stderr


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"variables": [{"name": "API_TOKEN", "value": "x"}]}, "must be a Spin variable name"),
        ({"variables": [{"name": "a__b", "value": "x"}]}, "must be a Spin variable name"),
        ({"variables": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]}, "variables[1]: Duplicate value"),
        ({"variables": [{"name": "a"}]}, "set exactly one of value or valueFrom"),
        ({"variables": [{"name": "a", "valueFrom": {}}]}, "exactly one of secretKeyRef or configMapKeyRef"),
        ({"otel": {"endpoint": "otel-collector:4318"}}, "otel.endpoint must be an http:// or https:// URL"),
        ({"otel": {"protocol": "thrift"}}, "Unsupported value"),
        ({"drainSeconds": 20, "terminationGracePeriodSeconds": 20}, "must be longer than drainSeconds"),
    ],
    ids=["upper-case", "double-underscore", "duplicate", "no-value", "empty-source", "otel-url", "otel-protocol",
         "grace-vs-drain"],
)  # fmt: skip
def test_admission_refuses_bad_settings_with_a_sentence(
    cluster: Cluster, namespace: str, crds: None, spec: dict[str, Any], words: str
) -> None:
    assert words in refused(cluster, namespace, wasmapp("bad", "registry.example.com/a/b:1", **spec))


def test_admission_refuses_a_bad_runtime_otel_endpoint(cluster: Cluster, crds: None) -> None:
    runtime = {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmRuntime", "metadata": {"name": "e2e-bad-otel"},
               "spec": {"handler": "x", "otel": {"tracesEndpoint": "grpc://collector:4317"}}}  # fmt: skip
    result = cluster.kubectl("create", "-f", "-", input=json.dumps(runtime), check=False)
    assert result.returncode != 0 and "otel.tracesEndpoint must be an http:// or https:// URL" in result.stderr


def test_http_app_deployment_drains_probes_and_rolls_out_safely(
    cluster: Cluster, namespace: str, images: ExampleImages
) -> None:
    cluster.apply(wasmapp("web", images.component.reference, ports=[{"name": "http", "containerPort": 8080}],
                          probes={"readiness": {"path": "/healthz"}},
                          otel={"endpoint": "http://otel-collector.observability:4318", "protocol": "grpc"},
                          env=[{"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"}]), namespace)
    wait_condition(cluster, "wasmapp", "web", namespace, "Ready")
    deployment = get(cluster, "deployment", "web", namespace)
    assert deployment is not None
    assert deployment["spec"]["strategy"] == {"type": "RollingUpdate",
                                              "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}}  # fmt: skip
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz", probe
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector.observability:4318"
    assert env["OTEL_EXPORTER_OTLP_PROTOCOL"] == "http/protobuf"  # the explicit env entry wins
    assert [e["name"] for e in container["env"]].count("OTEL_EXPORTER_OTLP_PROTOCOL") == 1


def test_spin_variables_reach_the_pods_env(cluster: Cluster, namespace: str, images: ExampleImages) -> None:
    cluster.kubectl("create", "secret", "generic", "greeter-secrets", "-n", namespace, "--from-literal=token=s3cr3t")
    cluster.apply(wasmapp("spin-vars", images.spin.reference, tolerations=[{"key": "wasmkube.dev/wasm-only",
                                                                            "operator": "Exists"}],
                          variables=[{"name": "greeting", "value": "hello"},
                                     {"name": "api_token",
                                      "valueFrom": {"secretKeyRef": {"name": "greeter-secrets", "key": "token"}}}]),
                  namespace)  # fmt: skip
    wait_condition(cluster, "wasmapp", "spin-vars", namespace, "Ready", timeout=90)
    deployment = get(cluster, "deployment", "spin-vars", namespace)
    assert deployment is not None
    env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "SPIN_VARIABLE_GREETING", "value": "hello"} in env
    assert {"name": "SPIN_VARIABLE_API_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "greeter-secrets", "key": "token"}}} in env  # fmt: skip


def test_spin_variables_on_a_module_stall_with_the_reason(
    cluster: Cluster, namespace: str, images: ExampleImages
) -> None:
    cluster.apply(wasmapp("not-spin", images.module.reference, variables=[{"name": "a", "value": "1"}]), namespace)
    app = wait_condition(cluster, "wasmapp", "not-spin", namespace, "Stalled", reason="VariablesNeedSpinApp")
    assert "is a Module" in condition(app, "Stalled")["message"]
    assert get(cluster, "deployment", "not-spin", namespace) is None


def test_a_pod_the_scheduler_cannot_place_is_reported_in_its_words(
    cluster: Cluster, namespace: str, images: ExampleImages
) -> None:
    """No node has 500 CPUs: the pod stays Pending, and after the stuck threshold the app's
    conditions carry the scheduler's message instead of "0 of 1 replicas available"."""
    cluster.apply(wasmapp("too-big", images.module.reference, resources={"requests": {"cpu": "500"}}), namespace)
    app = wait_condition(cluster, "wasmapp", "too-big", namespace, "Reconciling", reason="Unschedulable",
                         timeout=90)  # fmt: skip
    message = condition(app, "Reconciling")["message"]
    assert "Insufficient cpu" in message and message.startswith("pod too-big-"), message
    assert condition(app, "Stalled")["status"] == "False"
    assert condition(app, "Ready")["reason"] == "Unschedulable"
