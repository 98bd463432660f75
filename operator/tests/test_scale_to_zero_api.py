"""spec.scaleToZero: the model, its defaults, and the CEL rules the API server enforces at apply."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from test_api_models import app_violations

from wasmkube.api.crdgen import WASMAPP, crd_manifest
from wasmkube.api.scaletozero import ScaleToZero
from wasmkube.api.wasmapp import WasmAppSpec

SERVICE: dict[str, Any] = {"service": {"port": 80}}


def test_defaults() -> None:
    settings = ScaleToZero()
    assert (settings.idle_seconds, settings.wake_timeout_seconds, settings.max_pending_requests) == (300, 60, 100)


def test_parses_camel_case() -> None:
    spec = WasmAppSpec.model_validate(
        {"image": "r.example/a:1", "scaleToZero": {"idleSeconds": 30, "wakeTimeoutSeconds": 5, "maxPendingRequests": 7}}
    )
    assert spec.scale_to_zero == ScaleToZero(idle_seconds=30, wake_timeout_seconds=5, max_pending_requests=7)


@pytest.mark.parametrize(
    "fields",
    [{"idleSeconds": 9}, {"idleSeconds": 86401}, {"wakeTimeoutSeconds": 0}, {"maxPendingRequests": 0},
     {"maxPendingRequests": 10001}],
)  # fmt: skip
def test_out_of_range_values_are_refused(fields: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        ScaleToZero.model_validate(fields)


def test_schema_has_the_block_with_bounds() -> None:
    schema = crd_manifest(WASMAPP)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    block = schema["properties"]["spec"]["properties"]["scaleToZero"]
    assert block["properties"]["idleSeconds"]["minimum"] == 10
    assert block["properties"]["maxPendingRequests"]["maximum"] == 10000
    assert "default" not in block["properties"]["idleSeconds"]


def test_a_scale_to_zero_app_with_a_service_passes() -> None:
    assert app_violations(scaleToZero={}, **SERVICE) == []
    assert app_violations(scaleToZero={"idleSeconds": 30, "wakeTimeoutSeconds": 30}, replicas=3, **SERVICE) == []


def test_needs_a_service() -> None:
    [message] = app_violations(scaleToZero={})
    assert "scaleToZero needs a Service" in message
    [message] = app_violations(scaleToZero={}, service={"enabled": False})
    assert "scaleToZero needs a Service" in message


def test_replicas_zero_is_refused_because_zero_is_what_idling_does() -> None:
    [message] = app_violations(scaleToZero={}, replicas=0, **SERVICE)
    assert "replicas is the count while awake and must be at least 1" in message


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        ({"idleSeconds": 30, "wakeTimeoutSeconds": 31}, True),
        ({"idleSeconds": 30}, True),  # default wake timeout 60 > 30
        ({"wakeTimeoutSeconds": 300}, False),  # default idle 300
        ({"wakeTimeoutSeconds": 301}, True),
        ({"idleSeconds": 30, "wakeTimeoutSeconds": 30}, False),
    ],
)
def test_wake_timeout_must_not_exceed_idle_time(settings: dict[str, int], refused: bool) -> None:
    messages = app_violations(scaleToZero=settings, **SERVICE)
    assert bool(messages) is refused, messages
    if refused:
        assert "wakeTimeoutSeconds must not exceed idleSeconds" in messages[0]


def test_works_with_autoscaling() -> None:
    spec = {
        "scaleToZero": {},
        "autoscaling": {"minReplicas": 2, "maxReplicas": 5},
        "resources": {"requests": {"cpu": "100m"}},
        **SERVICE,
    }
    assert app_violations(**spec) == []
