"""Activator configuration: every `wasmkube activator` setting, written once.

Each field is a flag of `wasmkube activator` and a `WASMKUBE_ACTIVATOR_*` environment variable
(see `wasmkube.settings` for the spelling and the precedence: flag > variable > default); its
description is the flag's help. The chart passes flags only, plus WASMKUBE_POD_NAMESPACE, the
Lease's namespace when none is given.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from wasmkube.activator.routing import DEFAULT_CLUSTER_DOMAIN
from wasmkube.api.common import DnsLabel, DnsSubdomain
from wasmkube.logging_setup import LogFormat, LogLevel
from wasmkube.setting_types import POD_NAMESPACE_ENV, BindAddress, Port
from wasmkube.settings import Flag, Settings

Seconds = Annotated[float, Field(gt=0)]


class ActivatorConfig(BaseModel):
    """Everything `wasmkube activator` can be told. Defaults match the chart's."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    namespaces: Annotated[
        tuple[DnsLabel, ...],
        Field(description="serve only this namespace's apps; none: all namespaces"),
        Flag(flag="--namespace", short="-n"),
    ] = ()
    port: Annotated[Port, Field(description="port for the apps' requests")] = 8012
    admin_port: Annotated[Port, Field(description="port for /healthz, /readyz and /metrics")] = 9090
    bind_address: Annotated[BindAddress, Field(description="address of both servers")] = "0.0.0.0"
    cluster_domain: Annotated[
        DnsSubdomain, Field(description="the cluster's DNS domain, as in Host: SERVICE.NAMESPACE.svc.DOMAIN")
    ] = DEFAULT_CLUSTER_DOMAIN
    idle_interval_seconds: Annotated[
        Seconds, Field(description="how often the idle loop reads the pods' request counters")
    ] = 5.0
    pod_metrics_port: Annotated[Port, Field(description="port of the pods' request counters (the Wasm shim's)")] = 9091
    connect_timeout_seconds: Annotated[Seconds, Field(description="longest wait to connect to a pod")] = 5.0
    upstream_timeout_seconds: Annotated[
        Seconds, Field(description="longest wait for the next bytes from a pod (its response headers included)")
    ] = 300.0
    shutdown_delay_seconds: Annotated[
        float,
        Field(ge=0, description="on SIGTERM, keep accepting this long while unready, so endpoints move away first"),
    ] = 5.0
    shutdown_timeout_seconds: Annotated[
        Seconds, Field(description="then wait at most this long for held and in-flight requests")
    ] = 120.0
    leader_elect: Annotated[
        bool, Field(description="several replicas: only the holder of a Lease runs the idle loop (all serve requests)")
    ] = False
    lease_namespace: Annotated[
        DnsLabel, Field(description="namespace of the Lease"), Flag(fallback_env=(POD_NAMESPACE_ENV,))
    ] = "default"
    lease_name: Annotated[DnsSubdomain, Field(description="name of the Lease")] = "wasmkube-activator"
    lease_seconds: Annotated[
        float, Field(ge=2, le=300, description="how long the Lease lasts without renewal (failover time)")
    ] = 15.0
    api_timeout_seconds: Annotated[Seconds, Field(description="timeout of one Kubernetes API request")] = 30.0
    probe_interval_seconds: Annotated[
        Seconds, Field(description="how often a held request's starting pods are asked whether they are ready")
    ] = 0.05
    log_format: Annotated[LogFormat, Field(description="auto: JSON unless stdout is a terminal")] = "auto"
    log_level: Annotated[LogLevel, Field(description="DEBUG, INFO, WARNING, ERROR or CRITICAL")] = "INFO"


ACTIVATOR_SETTINGS = Settings(ActivatorConfig, env_prefix="WASMKUBE_ACTIVATOR_")
