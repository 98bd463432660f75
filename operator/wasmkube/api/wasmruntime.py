"""The WasmRuntime API: a containerd Wasm shim, published to the cluster as a RuntimeClass."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from wasmkube.api.artifact import ArtifactKind
from wasmkube.api.common import (
    Conditions,
    DnsSubdomain,
    KubeModel,
    NodeSelector,
    ObjectModel,
    Quantity,
    Tolerations,
    cel,
    cel_rules,
)
from wasmkube.api.telemetry import OtlpExporter

# containerd runtime handler names: what follows `runtimes.` in containerd's CRI config.
HandlerName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]


class Overhead(KubeModel):
    """Resources each pod of this runtime costs beyond its containers (the shim itself)."""

    pod_fixed: Annotated[dict[str, Quantity], Field(max_length=8)]
    """Resources each pod costs on top of its containers (added to scheduling and quota)."""


class WasmRuntimeSpec(KubeModel):
    """A shim installed on some nodes, and which artifacts it can run."""

    handler: HandlerName
    """The containerd runtime handler: the name under `runtimes.` in containerd's CRI configuration on the nodes
    (immutable in a RuntimeClass: changing it replaces the RuntimeClass)."""
    runtime_class_name: DnsSubdomain | None = None
    """Name of the RuntimeClass the operator creates (default: the WasmRuntime's name)."""
    artifact_kinds: Annotated[list[ArtifactKind], Field(min_length=1, max_length=3)] = [
        ArtifactKind.MODULE,
        ArtifactKind.COMPONENT,
    ]
    """Which artifacts this shim runs: Module, Component, SpinApp (default Module and Component)."""
    default: bool = False
    """Use this runtime for WasmApps that name none and whose artifact kind it runs."""
    node_selector: NodeSelector | None = None
    """Labels of the nodes that have this shim (copied to RuntimeClass.scheduling; pods land only there)."""
    tolerations: Tolerations | None = None
    """Tolerations for taints on those nodes (copied to RuntimeClass.scheduling)."""
    overhead: Overhead | None = None
    """Per-pod overhead of the shim (copied to RuntimeClass.overhead)."""
    default_port: Annotated[int, Field(ge=1, le=65535)] = 8080
    """Port the shim serves HTTP on when a WasmApp asks for a Service but declares no port."""
    listen_address_env: Annotated[str, Field(max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    """Environment variable that tells the shim where to listen (e.g. WASMTIME_HTTP_PROXY_SOCKET_ADDR,
    SPIN_HTTP_LISTEN_ADDR); set to 0.0.0.0:<http port> for apps with an HTTP port."""
    otel: OtlpExporter | None = None
    """OpenTelemetry export for every app on this runtime (e.g. the cluster's collector), as the standard
    OTEL_EXPORTER_OTLP_* variables. A WasmApp's `otel` overrides it field by field; its `env` wins over both."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.artifactKinds) || !self.artifactKinds.exists(k, k == 'Container')",
                "artifactKinds lists Wasm kinds only (Module, Component, SpinApp)",
                ".artifactKinds",
            ),
            cel(
                "!has(self.artifactKinds) || self.artifactKinds.all(k, self.artifactKinds.exists_one(j, j == k))",
                "artifactKinds must not repeat a kind",
                ".artifactKinds",
            ),
        )
    )

    def runs(self, kind: ArtifactKind) -> bool:
        return kind in self.artifact_kinds


class WasmRuntimeStatus(KubeModel):
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation this status describes."""
    conditions: Conditions | None = None
    """Ready (the RuntimeClass is in sync and some matching node is Ready), Reconciling, Stalled."""
    runtime_class_name: Annotated[str, Field(max_length=253)] | None = None
    """The RuntimeClass this runtime owns."""
    eligible_nodes: Annotated[int, Field(ge=0)] | None = None
    """Nodes matching the node selection (and tolerating their taints)."""
    ready_nodes: Annotated[int, Field(ge=0)] | None = None
    """Of those, nodes that are Ready and schedulable."""


class WasmRuntime(ObjectModel):
    """A whole WasmRuntime object as read from the API server."""

    api_version: str = "wasmkube.dev/v1alpha1"
    kind: str = "WasmRuntime"
    spec: WasmRuntimeSpec
    status: WasmRuntimeStatus | None = None

    @property
    def runtime_class_name(self) -> str:
        """The RuntimeClass this runtime owns: named in the spec, else after the runtime."""
        return self.spec.runtime_class_name or self.name
