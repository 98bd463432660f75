"""Operator configuration: command-line flags, each with a `WASMKUBE_*` environment fallback."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class OperatorConfig(BaseModel):
    """Everything `wasmkube run` can be told. Defaults suit a cluster-wide install."""

    model_config = ConfigDict(frozen=True)

    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    workers: Annotated[int, Field(ge=1, le=256)] = 64
    resync_seconds: Annotated[float, Field(ge=10)] = 600.0
    api_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    registry_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    registry_ttl_seconds: Annotated[float, Field(ge=0)] = 300.0
    insecure_registries: tuple[str, ...] = ()
    allowed_registries: tuple[str, ...] | None = None
    liveness_port: Annotated[int, Field(ge=0, le=65535)] = 8080  # 0: off
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9090  # 0: off
    bind_address: str = "0.0.0.0"
    log_format: str = "auto"  # auto | json | console
    log_level: str = "INFO"
    leader_elect: bool = False  # active/standby replicas through a Lease
    leader_election_namespace: str = "default"
    leader_election_id: str = "wasmkube"
    lease_seconds: Annotated[float, Field(ge=2, le=300)] = 15.0
    # Where scale-to-zero apps point while they have no Ready pod: the activator Service
    # ("namespace/name", its Ready endpoints) or fixed IPv4:port addresses (tests). Neither: none.
    activator_service: str | None = None
    activator_addresses: tuple[str, ...] = ()

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces
