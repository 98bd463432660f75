"""OpenTelemetry export settings, shared by WasmRuntime (the default) and WasmApp (the override).

The settings become the standard OTLP exporter variables of the OpenTelemetry specification
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `..._TRACES_ENDPOINT`, ...), which Spin and the OpenTelemetry
SDKs read, so nothing here is specific to one runtime.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field

from wasmkube.api.common import JsonDict, KubeModel, cel, cel_rules

# http(s)://host[:port][/path]: a hostname, an IPv4 address or a bracketed IPv6 address. Checked
# with CEL so that a typo is refused at `kubectl apply` with a sentence, not at export time by a
# module that silently drops its telemetry. (In the CEL string literal, `\\[` is the regex `\[`.)
_URL = r"^https?://([A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]+\\])(:[0-9]{1,5})?(/[^\\s]*)?$"
MAX_URL = 2048



class OtlpProtocol(StrEnum):
    """The values OTEL_EXPORTER_OTLP_PROTOCOL may take."""

    GRPC = "grpc"
    HTTP_PROTOBUF = "http/protobuf"
    HTTP_JSON = "http/json"


# Model field (snake_case) -> the variable it becomes.
OTEL_ENV = {
    "endpoint": "OTEL_EXPORTER_OTLP_ENDPOINT",
    "traces_endpoint": "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "metrics_endpoint": "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "logs_endpoint": "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "protocol": "OTEL_EXPORTER_OTLP_PROTOCOL",
}


Url = Annotated[str, Field(min_length=1, max_length=MAX_URL)]


def url_rule(field: str) -> JsonDict:
    """The rule of one endpoint field, on the string itself: evaluated only when the field is set
    (on the exporter, each of the four rules would read its field of every exporter)."""
    return cel_rules(
        cel(
            f"self.matches('{_URL}')",
            f"otel.{field} must be an http:// or https:// URL such as http://otel-collector.observability:4318",
        )
    )


class OtlpExporter(KubeModel):
    """Where the module sends traces, metrics and logs (OTLP). Each field set becomes one standard
    OpenTelemetry variable; a WasmApp's own `env` entry of the same name wins."""

    endpoint: Annotated[Url, Field(json_schema_extra=url_rule("endpoint"))] | None = None
    """Base OTLP endpoint for every signal (OTEL_EXPORTER_OTLP_ENDPOINT), e.g. http://otel-collector:4318."""
    traces_endpoint: Annotated[Url, Field(json_schema_extra=url_rule("tracesEndpoint"))] | None = None
    """Endpoint for traces only (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), e.g. http://collector:4318/v1/traces."""
    metrics_endpoint: Annotated[Url, Field(json_schema_extra=url_rule("metricsEndpoint"))] | None = None
    """Endpoint for metrics only (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)."""
    logs_endpoint: Annotated[Url, Field(json_schema_extra=url_rule("logsEndpoint"))] | None = None
    """Endpoint for logs only (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT)."""
    protocol: OtlpProtocol | None = None
    """grpc, http/protobuf or http/json (OTEL_EXPORTER_OTLP_PROTOCOL); unset leaves the SDK's default."""


def merged_otel(runtime: OtlpExporter | None, app: OtlpExporter | None) -> dict[str, str]:
    """The OTLP variables for one app, in a fixed order: each the app's value, else the runtime's."""
    values: dict[str, str] = {}
    for field, name in OTEL_ENV.items():
        chosen = next((v for v in (getattr(s, field) for s in (app, runtime) if s is not None) if v is not None), None)
        if chosen is not None:
            values[name] = chosen.value if isinstance(chosen, StrEnum) else str(chosen)
    return values
