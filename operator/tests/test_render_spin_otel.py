"""`wasmkube render` of the settings SpinKube users bring along: Spin variables and OpenTelemetry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from wasmkube.cli import main

SPIN_RUNTIME = """\
apiVersion: wasmkube.dev/v1alpha1
kind: WasmRuntime
metadata:
  name: spin
spec:
  handler: spin
  default: true
  artifactKinds: [SpinApp]
  listenAddressEnv: SPIN_HTTP_LISTEN_ADDR
  otel:
    endpoint: http://otel-collector.observability:4318
    protocol: http/protobuf
"""

SPIN_APP = """\
apiVersion: wasmkube.dev/v1alpha1
kind: WasmApp
metadata:
  name: greeter
spec:
  image: registry.example.com/demo/greeter:1.0
  ports: [{name: http, containerPort: 80}]
  variables:
    - name: greeting
      value: hello
    - name: api_token
      valueFrom:
        secretKeyRef: {name: greeter-secrets, key: token}
  otel:
    tracesEndpoint: http://tempo.observability:4318/v1/traces
"""


def render(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, kind: str) -> tuple[int, Any, str]:
    path = tmp_path / "in.yaml"
    path.write_text(text)
    code = main(["render", "-f", str(path), "--kind", kind])
    out, err = capsys.readouterr()
    return code, [d for d in yaml.safe_load_all(out) if d], err


def test_render_spin_app_with_variables_and_otel(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, docs, err = render(capsys, tmp_path, SPIN_RUNTIME + "---\n" + SPIN_APP, "SpinApp")
    assert (code, err) == (0, "")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [
        {"name": "SPIN_HTTP_LISTEN_ADDR", "value": "0.0.0.0:80"},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.observability:4318"},
        {"name": "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "value": "http://tempo.observability:4318/v1/traces"},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
        {"name": "SPIN_VARIABLE_GREETING", "value": "hello"},
        {"name": "SPIN_VARIABLE_API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "greeter-secrets", "key": "token"}}},
    ]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": "25%"}


def test_render_refuses_spin_variables_for_a_module(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    runtime = SPIN_RUNTIME.replace("artifactKinds: [SpinApp]", "artifactKinds: [Module, SpinApp]")
    code, docs, err = render(capsys, tmp_path, runtime + "---\n" + SPIN_APP, "Module")
    assert (code, docs) == (1, [])
    assert err.startswith("wasmkube render: spec.variables are Spin application variables")
    assert "is a Module" in err
