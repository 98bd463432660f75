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
    ObjectModel,
    OpaqueObject,
    Quantity,
    StringMap,
    Tolerations,
    cel,
    cel_rules,
    list_map,
)
from wasmkube.api.scaletozero import SPEC_RULES as SCALE_TO_ZERO_RULES
from wasmkube.api.scaletozero import ScaleToZero
from wasmkube.api.telemetry import OtlpExporter

# An OCI reference: [registry[:port]/]path[:tag][@sha256:digest]. Checked with CEL so that
# `kubectl apply` answers with a sentence instead of a regular expression.
IMAGE_REFERENCE_REGEX = (
    r"^([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)*(:[0-9]{1,5})?/)?"
    r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)

# Where the rules live, for admission cost (issue #14; e2e/tools/celcost measures it): the API
# server's CEL reads a field of an object in time and allocations proportional to the number of
# properties in that object's schema, and WasmAppSpec has more than thirty. So a rule that reads
# one field sits on that field (evaluated only when it is set, on a small value), uniqueness is a
# list-map (checked by the API server in Go), and only rules that compare sibling fields stay on
# the spec, each testing the rarely set field first so that a typical spec pays one lookup.
IMAGE_RULE = cel(
    f"self.matches(r'{IMAGE_REFERENCE_REGEX}')",
    "image must be an OCI reference such as registry.example.com/team/app:1.0 "
    "or registry.example.com/team/app@sha256:<64 hex digits>",
)

MAX_REPLICAS = 1000
MAX_DRAIN_SECONDS = 300


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
    """Port name (IANA service name). A port named `http` or `http-*` is the app's HTTP port: it gets default probes
    and the runtime's listen-address variable."""
    container_port: Annotated[int, Field(ge=1, le=65535)]
    """Port the module listens on inside the pod."""
    protocol: Protocol = Protocol.TCP
    """TCP (default), UDP or SCTP."""


class EnvVar(KubeModel):
    """An environment variable, as in core/v1 (valueFrom is passed through unchanged)."""

    name: Annotated[str, Field(min_length=1, max_length=256)]
    """Variable name."""
    value: Annotated[str, Field(max_length=1048576)] | None = None
    """Literal value."""
    value_from: OpaqueObject | None = None
    """A core/v1 EnvVarSource (configMapKeyRef, secretKeyRef, fieldRef, resourceFieldRef), passed through unchanged."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel("!(has(self.value) && has(self.valueFrom))", "env: set value or valueFrom, not both")
        )
    )


class KeyedSourceRef(KubeModel):
    name: DnsSubdomain
    """Name of the ConfigMap or Secret in the app's namespace."""
    optional: bool | None = None
    """Start even if it does not exist."""


class EnvFromSource(KubeModel):
    prefix: Annotated[str, Field(max_length=128)] | None = None
    """Prefix added to every variable name."""
    config_map_ref: KeyedSourceRef | None = None
    """Import every key of this ConfigMap."""
    secret_ref: KeyedSourceRef | None = None
    """Import every key of this Secret."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "has(self.configMapRef) != has(self.secretRef)",
                "envFrom: each entry names exactly one of configMapRef or secretRef",
            )
        )
    )


# Spin's own rule for variable names (spin-expressions `Key::validate`): lower-case ASCII letters,
# digits and single underscores, starting with a letter and not ending with an underscore. Spin's
# environment provider reads `SPIN_VARIABLE_<NAME>`, the name upper-cased.
SPIN_VARIABLE_NAME_PATTERN = r"^[a-z](_?[a-z0-9])*$"
SPIN_VARIABLE_ENV_PREFIX = "SPIN_VARIABLE_"


class KeySelector(KubeModel):
    """One key of a ConfigMap or Secret in the app's namespace."""

    name: DnsSubdomain
    """Name of the ConfigMap or Secret."""
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
    """The key whose value is used."""
    optional: bool | None = None
    """Start even if the object or the key does not exist (the variable is then unset)."""


class VariableSource(KubeModel):
    """Where a Spin variable's value comes from: exactly one of secretKeyRef or configMapKeyRef."""

    secret_key_ref: KeySelector | None = None
    """A key of a Secret (for credentials: the value never appears in the WasmApp)."""
    config_map_key_ref: KeySelector | None = None
    """A key of a ConfigMap."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                "variables[].valueFrom: set exactly one of secretKeyRef or configMapKeyRef",
            )
        )
    )


class SpinVariable(KubeModel):
    """A Spin application variable, given to the app as `SPIN_VARIABLE_<NAME>` (Spin's environment
    variable provider). Only for Spin apps (artifact kind SpinApp)."""

    name: Annotated[str, Field(min_length=1, max_length=200)]
    """Variable name as the Spin manifest declares it: lower-case letters, digits and single underscores, starting
    with a letter and not ending with an underscore (e.g. `api_token`)."""
    value: Annotated[str, Field(max_length=1048576)] | None = None
    """Literal value."""
    value_from: VariableSource | None = None
    """Take the value from a Secret or ConfigMap key."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                f"self.name.matches('{SPIN_VARIABLE_NAME_PATTERN}')",
                "variables[].name must be a Spin variable name: lower-case letters, digits and single underscores, "
                "starting with a letter and not ending with an underscore (e.g. api_token)",
                ".name",
            ),
            cel("has(self.value) != has(self.valueFrom)", "variables[]: set exactly one of value or valueFrom"),
        )
    )

    @property
    def env_name(self) -> str:
        return SPIN_VARIABLE_ENV_PREFIX + self.name.upper()


ResourceList = Annotated[dict[str, Quantity], Field(max_length=16)]


class ResourceRequirements(KubeModel):
    requests: ResourceList | None = None
    """Resources reserved for each pod's Wasm container (cpu, memory)."""
    limits: ResourceList | None = None
    """Upper bounds for each pod's Wasm container."""


class ServiceType(StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class ServiceSpec(KubeModel):
    """Expose the app's first port (or `targetPort`) through a Service named after the app."""

    enabled: bool = True
    """Set false to keep the block but remove the Service."""
    type: ServiceType = ServiceType.CLUSTER_IP
    """ClusterIP (default), NodePort or LoadBalancer."""
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    """Port the Service listens on (default 80)."""
    target_port: IntOrString | None = None
    """Container port (number or name) to forward to; default: the first declared port."""
    annotations: AnnotationMap | None = None
    """Annotations for the Service (for load balancers, meshes)."""


class HttpProbe(KubeModel):
    """An HTTP GET probe against the app. Unset fields take Kubernetes' own defaults."""

    path: Annotated[str, Field(max_length=2048, pattern=r"^/")] = "/"
    """HTTP path to GET (default `/`)."""
    port: IntOrString | None = None
    """Port number or name; default: the app's HTTP port."""
    initial_delay_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    """Seconds before the first probe."""
    period_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    """Seconds between probes."""
    timeout_seconds: Annotated[int, Field(ge=1, le=3600)] | None = None
    """Seconds before a probe times out."""
    failure_threshold: Annotated[int, Field(ge=1, le=1000)] | None = None
    """Failures in a row that count as failed."""
    success_threshold: Annotated[int, Field(ge=1, le=1000)] | None = None
    """Successes in a row that count as succeeded."""


class Probes(KubeModel):
    """Health probes. With `useDefaults` (the default), an app with an HTTP port gets
    readiness, liveness and startup probes on `/` for any probe not given here."""

    use_defaults: bool = True
    """Give an app with an HTTP port default probes for any probe not set here (default true)."""
    liveness: HttpProbe | None = None
    """Restart the pod when this fails."""
    readiness: HttpProbe | None = None
    """Take the pod out of the Service when this fails."""
    startup: HttpProbe | None = None
    """Hold liveness and readiness back until this succeeds."""


class Volume(KubeModel):
    """A pod volume: `name` plus one core/v1 volume source (configMap, secret, emptyDir, ...)."""

    name: DnsLabel
    """Volume name, referenced by volumeMounts."""

    model_config = ConfigDict(extra="allow", json_schema_extra={PRESERVE_UNKNOWN: True})

    def source(self) -> dict[str, Any]:
        """The volume source fields as given (everything but the name)."""
        return dict(self.model_extra or {})


class VolumeMount(KubeModel):
    """Mounting a volume is the module's capability grant: only mounted directories are
    visible to it (the shim preopens exactly the container's mounts)."""

    name: DnsLabel
    """Name of an entry of volumes."""
    mount_path: Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^/")]
    """Absolute path where the module sees the directory."""
    read_only: bool | None = None
    """Mount read-only."""
    sub_path: Annotated[str, Field(max_length=4096)] | None = None
    """Mount only this path inside the volume."""


class StrategyType(StrEnum):
    ROLLING_UPDATE = "RollingUpdate"
    RECREATE = "Recreate"


class RollingUpdate(KubeModel):
    max_surge: IntOrString | None = None
    """Pods above the desired count during a rollout (number or percentage)."""
    max_unavailable: IntOrString | None = None
    """Pods that may be unavailable during a rollout (number or percentage)."""


class Strategy(KubeModel):
    type: StrategyType = StrategyType.ROLLING_UPDATE
    """RollingUpdate (default) or Recreate."""
    rolling_update: RollingUpdate | None = None
    """Rolling update parameters."""

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
    """Lowest replica count (default 1)."""
    max_replicas: Annotated[int, Field(ge=1, le=MAX_REPLICAS)]
    """Highest replica count."""
    # Spelled as in autoscaling/v1 (`CPU`, not `Cpu`), which users already know.
    target_cpu_utilization_percentage: Annotated[int, Field(ge=1, le=1000, alias="targetCPUUtilizationPercentage")] = 80
    """Average CPU use, as a percentage of resources.requests.cpu, that the autoscaler aims for (default 80)."""
    target_memory_utilization_percentage: Annotated[int, Field(ge=1, le=1000)] | None = None
    """Average memory use, as a percentage of resources.requests.memory, to aim for as well."""

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
        "!(has(self.autoscaling) && has(self.replicas))",
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
        "!has(self.terminationGracePeriodSeconds) || !has(self.drainSeconds) || "
        "self.terminationGracePeriodSeconds > self.drainSeconds",
        "terminationGracePeriodSeconds must be longer than drainSeconds: the grace period includes the drain, and "
        "the module needs time to stop after it",
        ".terminationGracePeriodSeconds",
    ),
]

# On the ports list itself: containerPort is the list-map key; names are optional, so their
# uniqueness stays a rule (at most 16 ports).
PORT_NAMES_RULE = cel(
    "self.all(p, !has(p.name) || self.filter(q, has(q.name) && q.name == p.name).size() == 1)",
    "ports[].name must be unique",
)


class WasmAppSpec(KubeModel):
    """What the user declares. Every field is optional except `image`."""

    image: Annotated[str, Field(min_length=1, max_length=512, json_schema_extra=cel_rules(IMAGE_RULE))]
    """OCI reference of the Wasm artifact: `registry/repository:tag` or `registry/repository@sha256:...`. The
    operator resolves it and runs the digest."""
    runtime: DnsSubdomain | None = None
    """Name of the WasmRuntime to run on. Default: the runtime marked default for the artifact's kind."""
    update_policy: UpdatePolicy | None = None
    """Pinned (default): resolve the tag when spec.image changes and keep that digest. Track: re-resolve every
    trackIntervalSeconds and roll out a new digest."""
    track_interval_seconds: Annotated[int, Field(ge=30, le=86400)] | None = None
    """With updatePolicy Track, seconds between registry checks (default 300; the operator's registry cache TTL,
    300 s by default, is the floor: many apps on one image share one lookup)."""
    replicas: Annotated[int, Field(ge=0, le=MAX_REPLICAS)] | None = None
    """Number of pods (default 1). Not allowed together with autoscaling. `kubectl scale wasmapp` sets it."""
    command: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=64)] | None = None
    """Container command. runwasi reads the module path and optional `#function` from the first entry; default `/`
    (the artifact's own module)."""
    args: Annotated[list[Annotated[str, Field(max_length=4096)]], Field(max_length=256)] | None = None
    """Arguments passed to the module."""
    env: Annotated[list[EnvVar], Field(max_length=256)] | None = None
    """Environment variables of the module."""
    env_from: Annotated[list[EnvFromSource], Field(max_length=32)] | None = None
    """Import variables from ConfigMaps or Secrets."""
    resources: ResourceRequirements | None = None
    """CPU and memory requests and limits of each pod's Wasm container."""
    ports: (
        Annotated[
            list[ContainerPort],
            Field(max_length=16, json_schema_extra={**list_map("containerPort"), **cel_rules(PORT_NAMES_RULE)}),
        ]
        | None
    ) = None
    """Ports the module listens on."""
    service: ServiceSpec | None = None
    """Expose the app through a Service named after it. Remove the block (or set enabled false) to delete the
    Service."""
    probes: Probes | None = None
    """HTTP health probes; defaults apply when the app has an HTTP port."""
    image_pull_secrets: Annotated[list[LocalObjectReference], Field(max_length=16)] | None = None
    """Secrets (kubernetes.io/dockerconfigjson) with credentials for the image's registry. The operator reads them by
    name to inspect the image; the kubelet uses them to pull."""
    service_account_name: DnsSubdomain | None = None
    """ServiceAccount of the pods (no token is mounted)."""
    node_selector: NodeSelector | None = None
    """Extra node labels the pods require, on top of the runtime's node selection."""
    tolerations: Tolerations | None = None
    """Extra tolerations, added to the runtime's."""
    affinity: OpaqueObject | None = None
    """A core/v1 Affinity for the pods, passed through unchanged."""
    topology_spread_constraints: Annotated[list[OpaqueObject], Field(max_length=16)] | None = None
    """core/v1 TopologySpreadConstraints for the pods, passed through unchanged."""
    priority_class_name: DnsSubdomain | None = None
    """PriorityClass of the pods."""
    pod_annotations: AnnotationMap | None = None
    """Annotations added to the pods."""
    pod_labels: StringMap | None = None
    """Labels added to the pods (the operator's own labels win on conflict)."""
    volumes: Annotated[list[Volume], Field(max_length=32, json_schema_extra=list_map("name"))] | None = None
    """Pod volumes (a name plus one core/v1 volume source)."""
    volume_mounts: Annotated[list[VolumeMount], Field(max_length=32)] | None = None
    """Where volumes appear to the module. A directory is visible to the module only if it is mounted: this is the
    capability grant."""
    strategy: Strategy | None = None
    """How a new version replaces the old one."""
    autoscaling: Autoscaling | None = None
    """Scale between minReplicas and maxReplicas with a HorizontalPodAutoscaler (needs resources.requests.cpu). Not
    allowed together with replicas."""
    drain_seconds: Annotated[int, Field(ge=0, le=MAX_DRAIN_SECONDS)] | None = None
    """Seconds a stopping pod keeps serving before its module gets SIGTERM, so Services and load balancers stop
    sending it requests first (a preStop `sleep`, run by the kubelet: the Wasm container has no shell). Default 5 for
    apps with an HTTP port, none otherwise; 0 turns it off."""
    termination_grace_period_seconds: Annotated[int, Field(ge=0, le=3600)] | None = None
    """Seconds from the stop request until the pod is killed, drain included (default 30, or drainSeconds + 10 when
    that is longer). Must be longer than drainSeconds."""
    variables: Annotated[list[SpinVariable], Field(max_length=128, json_schema_extra=list_map("name"))] | None = None
    """Spin application variables (Spin apps only), passed as SPIN_VARIABLE_<NAME> environment variables. An `env`
    entry of the same name wins."""
    otel: OtlpExporter | None = None
    """OpenTelemetry export for this app; each field set here overrides the runtime's `otel` field of the same
    name."""
    scale_to_zero: ScaleToZero | None = None
    """Go to 0 replicas when idle and wake on the next request, which the activator holds meanwhile (needs a
    Service; works with autoscaling: the autoscaler scales between 1 and maxReplicas, scale to zero between 0 and 1)."""

    model_config = ConfigDict(json_schema_extra=cel_rules(*_SPEC_RULES, *SCALE_TO_ZERO_RULES))

    @property
    def effective_update_policy(self) -> UpdatePolicy:
        return self.update_policy or UpdatePolicy.PINNED


class ArtifactStatus(KubeModel):
    """What the registry said `spec.image` is, and exactly which bytes run."""

    reference: Annotated[str, Field(max_length=512)]
    """spec.image as it was resolved."""
    digest: Annotated[str, Field(max_length=128)]
    """Digest of the manifest (or index) the tag pointed to."""
    pinned_image: Annotated[str, Field(max_length=640)]
    """The digest-pinned reference the pods run."""
    kind: ArtifactKind
    """Module, Component, SpinApp or Container."""
    layout: ArtifactLayout
    """How the artifact was packaged: CNCFWasmArtifact, SpinOCI, WasmLayers or ContainerImage."""
    media_type: Annotated[str, Field(max_length=256)] = ""
    """Media type of the manifest."""
    size: Annotated[int, Field(ge=0)] = 0
    """Bytes of config and layers."""
    exports: Annotated[list[Annotated[str, Field(max_length=256)]], Field(max_length=64)] | None = None
    """For a component: the interfaces its config says it exports."""
    resolved_at: Annotated[str, Field(json_schema_extra={"format": "date-time"})] | None = None
    """When the registry was last asked."""


class WasmAppStatus(KubeModel):
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation this status describes."""
    conditions: Conditions | None = None
    """Ready (the app serves as declared), Reconciling (the operator is still working on it), Stalled (it cannot go
    on without a change)."""
    replicas: Annotated[int, Field(ge=0)] | None = None
    """Pods of the Deployment."""
    ready_replicas: Annotated[int, Field(ge=0)] | None = None
    """Pods that are ready."""
    available_replicas: Annotated[int, Field(ge=0)] | None = None
    """Pods available for at least minReadySeconds."""
    updated_replicas: Annotated[int, Field(ge=0)] | None = None
    """Pods running the current template."""
    selector: Annotated[str, Field(max_length=1024)] | None = None
    """Label selector of the pods, for /scale (HPA, KEDA)."""
    runtime: Annotated[str, Field(max_length=253)] | None = None
    """The WasmRuntime the app runs on."""
    runtime_class_name: Annotated[str, Field(max_length=253)] | None = None
    """The RuntimeClass of its pods."""
    deployment_name: Annotated[str, Field(max_length=253)] | None = None
    """Name of the generated Deployment."""
    service_name: Annotated[str, Field(max_length=63)] | None = None
    """Name of the generated Service."""
    autoscaler_name: Annotated[str, Field(max_length=253)] | None = None
    """Name of the generated HorizontalPodAutoscaler."""
    artifact: ArtifactStatus | None = None
    """What the registry said spec.image is, and exactly which bytes run."""


class WasmApp(ObjectModel):
    """A whole WasmApp object as read from the API server."""

    api_version: str = "wasmkube.dev/v1alpha1"
    kind: str = "WasmApp"
    spec: WasmAppSpec
    status: WasmAppStatus | None = None

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace") or "default")
