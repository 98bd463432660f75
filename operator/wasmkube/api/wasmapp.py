"""The WasmApp API: one WebAssembly application, run as a Deployment on a Wasm RuntimeClass."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from wasmkube.api.artifact import ArtifactKind, ArtifactLayout
from wasmkube.api.common import (
    PRESERVE_UNKNOWN,
    AnnotationMap,
    Conditions,
    DnsLabel,
    DnsSubdomain,
    IntOrString,
    KubeModel,
    LocalObjectReference,
    NodeSelector,
    OpaqueObject,
    Quantity,
    StringMap,
    Tolerations,
    cel,
    cel_rules,
)

# An OCI reference: [registry[:port]/]path[:tag][@sha256:digest]. Checked with CEL so that
# `kubectl apply` answers with a sentence instead of a regular expression.
IMAGE_REFERENCE_REGEX = (
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?/)?"
    r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)

MAX_REPLICAS = 1000


class UpdatePolicy(StrEnum):
    """When the operator looks at the registry again."""

    PINNED = "Pinned"  # resolve the tag when the spec changes; keep that digest
    TRACK = "Track"  # re-resolve the tag on an interval and roll out a new digest


class Protocol(StrEnum):
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"


class ContainerPort(KubeModel):
    """A port the module listens on. A port named `http` (or `http-*`) gets default probes."""

    name: Annotated[str, Field(min_length=1, max_length=15, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")] | None = None
    container_port: Annotated[int, Field(ge=1, le=65535)]
    protocol: Protocol = Protocol.TCP


class EnvVar(KubeModel):
    """An environment variable, as in core/v1 (valueFrom is passed through unchanged)."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    value: Annotated[str, Field(max_length=1048576)] | None = None
    value_from: OpaqueObject | None = None

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel("!(has(self.value) && has(self.valueFrom))", "env: set value or valueFrom, not both")
        )
    )


class KeyedSourceRef(KubeModel):
    name: DnsSubdomain
    optional: bool | None = None


class EnvFromSource(KubeModel):
    prefix: Annotated[str, Field(max_length=128)] | None = None
    config_map_ref: KeyedSourceRef | None = None
    secret_ref: KeyedSourceRef | None = None

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "has(self.configMapRef) != has(self.secretRef)",
                "envFrom: each entry names exactly one of configMapRef or secretRef",
            )
        )
    )


ResourceList = Annotated[dict[str, Quantity], Field(max_length=16)]


class ResourceRequirements(KubeModel):
    requests: ResourceList | None = None
    limits: ResourceList | None = None


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ServiceSpec(KubeModel):
    """Expose the app's first port (or `targetPort`) through a Service named after the app."""

    enabled: bool = True
    type: ServiceType = ServiceType.CLUSTER_IP
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    target_port: IntOrString | None = None
    annotations: AnnotationMap | None = None


class HttpProbe(KubeModel):
    """An HTTP GET probe against the app. Unset fields take Kubernetes' own defaults."""

    path: Annotated[str, Field(max_length=2048, pattern=r"^/")] = "/"
    port: IntOrString | None = None
    initial_delay_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    period_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    failure_threshold: Annotated[int, Field(ge=1, le=1000)] | None = None
    success_threshold: Annotated[int, Field(ge=1, le=1000)] | None = None


class Probes(KubeModel):
    """Health probes. With `useDefaults` (the default), an app with an HTTP port gets
    readiness, liveness and startup probes on `/` for any probe not given here."""

    use_defaults: bool = True
    liveness: HttpProbe | None = None
    readiness: HttpProbe | None = None
    startup: HttpProbe | None = None


class Volume(KubeModel):
    """A pod volume: `name` plus one core/v1 volume source (configMap, secret, emptyDir, ...)."""

    name: DnsLabel

    model_config = ConfigDict(extra="allow", json_schema_extra={PRESERVE_UNKNOWN: True})

    def source(self) -> dict[str, Any]:
        """The volume source fields as given (everything but the name)."""
        return dict(self.model_extra or {})


class VolumeMount(KubeModel):
    """Mounting a volume is the module's capability grant: only mounted directories are
    visible to it (the shim preopens exactly the container's mounts)."""

    name: DnsLabel
    mount_path: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")]
    read_only: bool | None = None
    sub_path: Annotated[str, Field(max_length=4096)] | None = None


class StrategyType(StrEnum):
    ROLLING_UPDATE = "RollingUpdate"
    RECREATE = "Recreate"


class RollingUpdate(KubeModel):
    max_surge: IntOrString | None = None
    max_unavailable: IntOrString | None = None


class Strategy(KubeModel):
    type: StrategyType = StrategyType.ROLLING_UPDATE
    rolling_update: RollingUpdate | None = None

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.rollingUpdate) || !has(self.type) || self.type == 'RollingUpdate'",
                "strategy.rollingUpdate is only allowed with type RollingUpdate",
            )
        )
    )


class Autoscaling(KubeModel):
    """Scale with an autoscaling/v2 HorizontalPodAutoscaler on CPU (and optionally memory)."""

    min_replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)]
    target_cpu_utilization_percentage: Annotated[int, Field(ge=1, le=1000)] = 80
    target_memory_utilization_percentage: Annotated[int, Field(ge=1, le=1000)] | None = None

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",
                "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
            )
        )
    )


_SPEC_RULES = [
    cel(
        f"self.image.matches(r'{IMAGE_REFERENCE_REGEX}')",
        "image must be an OCI reference such as registry.example.com/team/app:1.0 "
        "or registry.example.com/team/app@sha256:<64 hex digits>",
        ".image",
    ),
    cel(
        "!(has(self.replicas) && has(self.autoscaling))",
        "replicas and autoscaling are mutually exclusive: with autoscaling the HorizontalPodAutoscaler "
        "sets the replica count (use autoscaling.minReplicas)",
    ),
    cel(
        "!has(self.autoscaling) || (has(self.resources) && has(self.resources.requests) && "
        "'cpu' in self.resources.requests)",
        "autoscaling on CPU utilization needs resources.requests.cpu",
        ".autoscaling",
    ),
    cel(
        "!has(self.autoscaling) || !has(self.autoscaling.targetMemoryUtilizationPercentage) || "
        "(has(self.resources) && has(self.resources.requests) && 'memory' in self.resources.requests)",
        "autoscaling on memory utilization needs resources.requests.memory",
        ".autoscaling",
    ),
    cel(
        "!has(self.updatePolicy) || self.updatePolicy != 'Track' || !self.image.contains('@')",
        "updatePolicy Track follows a tag: an image pinned by digest cannot be tracked",
        ".updatePolicy",
    ),
    cel(
        "!has(self.trackIntervalSeconds) || (has(self.updatePolicy) && self.updatePolicy == 'Track')",
        "trackIntervalSeconds is only used with updatePolicy Track",
        ".trackIntervalSeconds",
    ),
    cel(
        "!has(self.volumeMounts) || self.volumeMounts.all(m, has(self.volumes) && "
        "self.volumes.exists(v, v.name == m.name))",
        "every volumeMounts[].name must name an entry of volumes",
        ".volumeMounts",
    ),
    cel(
        "!has(self.volumes) || self.volumes.all(v, self.volumes.exists_one(w, w.name == v.name))",
        "volumes[].name must be unique",
        ".volumes",
    ),
    cel(
        "!has(self.ports) || self.ports.all(p, self.ports.exists_one(q, q.containerPort == p.containerPort))",
        "ports[].containerPort must be unique",
        ".ports",
    ),
    cel(
        "!has(self.ports) || self.ports.all(p, !has(p.name) || "
        "self.ports.exists_one(q, has(q.name) && q.name == p.name))",
        "ports[].name must be unique",
        ".ports",
    ),
]


class WasmAppSpec(KubeModel):
    """What the user declares. Every field is optional except `image`."""

    image: Annotated[str, Field(min_length=1, max_length=512)]
    runtime: DnsSubdomain | None = None
    update_policy: UpdatePolicy | None = None
    track_interval_seconds: Annotated[int, Field(ge=30, le=86400)] | None = None
    replicas: Annotated[int, Field(ge=0, le=MAX_REPLICAS)] | None = None
    command: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=64)] | None = None
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=256)] | None = None
    env: Annotated[list[EnvVar], Field(max_length=256)] | None = None
    env_from: Annotated[list[EnvFromSource], Field(max_length=32)] | None = None
    resources: ResourceRequirements | None = None
    ports: Annotated[list[ContainerPort], Field(max_length=16)] | None = None
    service: ServiceSpec | None = None
    probes: Probes | None = None
    image_pull_secrets: Annotated[list[LocalObjectReference], Field(max_length=16)] | None = None
    service_account_name: DnsSubdomain | None = None
    node_selector: NodeSelector | None = None
    tolerations: Tolerations | None = None
    affinity: OpaqueObject | None = None
    topology_spread_constraints: Annotated[list[OpaqueObject], Field(max_length=16)] | None = None
    priority_class_name: DnsSubdomain | None = None
    pod_annotations: AnnotationMap | None = None
    pod_labels: StringMap | None = None
    volumes: Annotated[list[Volume], Field(max_length=32)] | None = None
    volume_mounts: Annotated[list[VolumeMount], Field(max_length=32)] | None = None
    strategy: Strategy | None = None
    autoscaling: Autoscaling | None = None

    model_config = ConfigDict(json_schema_extra=cel_rules(*_SPEC_RULES))

    @property
    def effective_update_policy(self) -> UpdatePolicy:
        return self.update_policy or UpdatePolicy.PINNED


class ArtifactStatus(KubeModel):
    """What the registry said `spec.image` is, and exactly which bytes run."""

    reference: Annotated[str, Field(max_length=512)]
    digest: Annotated[str, Field(max_length=128)]
    pinned_image: Annotated[str, Field(max_length=640)]
    kind: ArtifactKind
    layout: ArtifactLayout
    media_type: Annotated[str, Field(max_length=256)] = ""
    size: Annotated[int, Field(ge=0)] = 0
    exports: Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=64)] | None = None
    resolved_at: Annotated[str, Field(json_schema_extra={"format": "date-time"})] | None = None


class WasmAppStatus(KubeModel):
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    conditions: Conditions | None = None
    replicas: Annotated[int, Field(ge=0)] | None = None
    ready_replicas: Annotated[int, Field(ge=0)] | None = None
    available_replicas: Annotated[int, Field(ge=0)] | None = None
    updated_replicas: Annotated[int, Field(ge=0)] | None = None
    selector: Annotated[str, Field(max_length=1024)] | None = None
    runtime: Annotated[str, Field(max_length=253)] | None = None
    runtime_class_name: Annotated[str, Field(max_length=253)] | None = None
    deployment_name: Annotated[str, Field(max_length=253)] | None = None
    service_name: Annotated[str, Field(max_length=63)] | None = None
    autoscaler_name: Annotated[str, Field(max_length=253)] | None = None
    artifact: ArtifactStatus | None = None


class WasmApp(KubeModel):
    """A whole WasmApp object as read from the API server."""

    api_version: str = "wasmkube.dev/v1alpha1"
    kind: str = "WasmApp"
    metadata: dict[str, Any]
    spec: WasmAppSpec
    status: WasmAppStatus | None = None

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid", ""))

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation") or 0)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.get("labels") or {})
