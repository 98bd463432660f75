"""Operator configuration: every `wasmkube run` setting, written once.

Each field is a flag of `wasmkube run` and a `WASMKUBE_*` environment variable (see
`wasmkube.settings` for the spelling and the precedence: flag > variable > default); its
description is the flag's help. The chart (charts/wasmkube) and the e2e scripts pass flags only,
plus WASMKUBE_POD_NAMESPACE, the Lease's namespace when none is given.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from wasmkube.api.common import DNS_LABEL_PATTERN, DnsLabel, DnsSubdomain
from wasmkube.controller.activator_endpoints import parse_address
from wasmkube.logging_setup import LogFormat, LogLevel
from wasmkube.setting_types import POD_NAMESPACE_ENV, BindAddress, Port
from wasmkube.settings import Flag, Settings

# The chart's values.schema.json accepts registries in the same form.
RegistryHost = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9.-]+(:[0-9]+)?$")]


def _activator_address(text: str) -> str:
    """IPv4:PORT, checked at startup by the parser the operator later uses on it."""
    parse_address(text)
    return text


ActivatorAddress = Annotated[str, AfterValidator(_activator_address)]
_LABEL = DNS_LABEL_PATTERN.removeprefix("^").removesuffix("$")
# NAMESPACE/NAME of a Service.
ServiceRef = Annotated[str, Field(pattern=f"^{_LABEL}/{_LABEL}$")]
_ACTIVATOR_SERVICE_HELP = (
    "NAMESPACE/NAME of the activator Service: scale-to-zero apps with no Ready pod point at its endpoints"
)


class OperatorConfig(BaseModel):
    """Everything `wasmkube run` can be told. Defaults suit a cluster-wide install."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    namespaces: Annotated[
        tuple[DnsLabel, ...],
        Field(description="watch only this namespace; none: all namespaces"),
        Flag(
            flag="--namespace",
            short="-n",
            reset=("-A", "--all-namespaces"),
            reset_help="watch all namespaces (the default)",
        ),
    ] = ()
    workers: Annotated[int, Field(ge=1, le=256, description="how many objects are reconciled at once")] = 64
    resync_seconds: Annotated[
        float, Field(ge=10, description="every object is reconciled again this often, changed or not")
    ] = 600.0
    api_timeout_seconds: Annotated[float, Field(gt=0, description="timeout of one Kubernetes API request")] = 30.0
    registry_timeout_seconds: Annotated[float, Field(gt=0, description="timeout of one registry request")] = 10.0
    registry_ttl_seconds: Annotated[
        float, Field(ge=0, description="how long a tag's resolved digest and artifact kind are cached")
    ] = 300.0
    insecure_registries: Annotated[
        tuple[RegistryHost, ...],
        Field(description="registry host:port spoken to over plain HTTP, for local registries only"),
        Flag(flag="--insecure-registry"),
    ] = ()
    allowed_registries: Annotated[
        tuple[RegistryHost, ...] | None,
        Field(description="if given, the only registries images may come from"),
        Flag(flag="--allowed-registry"),
    ] = None
    liveness_port: Annotated[Port, Field(description="serve /healthz on this port (0: off)")] = 8080
    metrics_port: Annotated[Port, Field(description="serve Prometheus /metrics on this port (0: off)")] = 9090
    bind_address: Annotated[BindAddress, Field(description="address of the /healthz and /metrics servers")] = "0.0.0.0"
    log_format: Annotated[LogFormat, Field(description="auto: JSON unless stdout is a terminal")] = "auto"
    log_level: Annotated[LogLevel, Field(description="DEBUG, INFO, WARNING, ERROR or CRITICAL")] = "INFO"
    leader_elect: Annotated[
        bool, Field(description="run as one of several replicas: only the holder of a Lease reconciles")
    ] = False
    leader_election_namespace: Annotated[
        DnsLabel, Field(description="namespace of the Lease"), Flag(fallback_env=(POD_NAMESPACE_ENV,))
    ] = "default"
    leader_election_id: Annotated[DnsSubdomain, Field(description="name of the Lease")] = "wasmkube"
    lease_seconds: Annotated[
        float, Field(ge=2, le=300, description="how long a leader's Lease lasts without renewal (failover time)")
    ] = 15.0
    # Where scale-to-zero apps point while they have no Ready pod: the activator Service's Ready
    # endpoints, or fixed addresses (tests). Neither: none.
    activator_service: Annotated[
        ServiceRef | None,
        Field(description=_ACTIVATOR_SERVICE_HELP),
        Flag(exclusive="activator"),
    ] = None
    activator_addresses: Annotated[
        tuple[ActivatorAddress, ...],
        Field(description="fixed IPv4:PORT of an activator instead (for an activator run outside the cluster)"),
        Flag(flag="--activator-address", exclusive="activator"),
    ] = ()

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


OPERATOR_SETTINGS = Settings(OperatorConfig, env_prefix="WASMKUBE_")
