"""Building blocks shared by the WasmApp and WasmRuntime models.

Every model here serves two masters: the operator parses live objects with it, and the CRD
generator turns it into an OpenAPI schema. So constraints live in `Field(...)` (they become
OpenAPI constraints) and cross-field rules live in `x-kubernetes-validations` (CEL, enforced by
the API server at admission, no webhook needed).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.alias_generators import to_camel

JsonDict = dict[str, JsonValue]

GROUP = "wasmkube.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

# Markers the CRD generator understands (see `crdgen`).
PRESERVE_UNKNOWN = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
CEL_RULES = "x-kubernetes-validations"


def cel(rule: str, message: str, field_path: str | None = None) -> JsonDict:
    """One CEL validation rule, as the API server expects it in `x-kubernetes-validations`."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


def cel_rules(*rules: JsonDict) -> JsonDict:
    """The `json_schema_extra` that attaches CEL rules to a model."""
    entries: list[JsonValue] = list(rules)
    return {CEL_RULES: entries}


def list_map(*keys: str) -> JsonDict:
    """The `json_schema_extra` of a list whose items are unique by `keys` (required fields).

    The API server refuses a duplicate itself (`Duplicate value`, naming the item's index) in Go,
    at a fraction of the cost of a CEL uniqueness rule, which is O(n²) and pays for every field
    it reads; server-side apply then merges the list by these keys, as it does a Pod's volumes."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


class KubeModel(BaseModel):
    """Base for API models: camelCase on the wire, snake_case in Python.

    Unknown fields are ignored rather than refused: the API server prunes them before the
    operator ever sees an object, and an operator older than its CRD must keep working.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=False,
        frozen=True,
        # A string right under a field is its description: it reaches the CRD, `kubectl explain`
        # and the API reference from one place.
        use_attribute_docstrings=True,
    )


# A Kubernetes DNS-1123 label: names of ports, volumes, containers.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
# A DNS-1123 subdomain: names of Secrets, ConfigMaps, ServiceAccounts, PriorityClasses.
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DnsSubdomain = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]

# A resource quantity ("100m", "64Mi", 2): int-or-string, checked by the API server when the
# Deployment is applied and by the quantity pattern here at admission.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
Quantity = Annotated[
    int | str,
    Field(json_schema_extra={INT_OR_STRING: True, "pattern": QUANTITY_PATTERN}),
]
IntOrString = Annotated[int | str, Field(json_schema_extra={INT_OR_STRING: True})]

# Label and annotation maps, checked at `kubectl apply` as the API server would check them on the
# Pod template later: keys are qualified names (`[DNS-subdomain prefix/]name`, name at most 63
# characters), label values at most 63 characters of [A-Za-z0-9-_.] starting and ending
# alphanumeric. Without this, a bad key would only surface as a Stalled app.
# (In the CEL string literals below, `\\.` is the regex `\.`.)
_QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
MAX_QUALIFIED_NAME = 253 + 1 + 63


def _qualified_keys(what: str) -> JsonDict:
    return cel(
        f"self.all(k, size(k) <= {MAX_QUALIFIED_NAME} && k.matches('{_QUALIFIED_NAME}'))",
        f"every {what} key must be a qualified name: an optional DNS subdomain prefix and '/', then 1-63 "
        "characters of [A-Za-z0-9-_.] starting and ending with a letter or digit",
    )


def _label_values(what: str) -> JsonDict:
    return cel(
        f"self.all(k, self[k].matches('{_LABEL_VALUE}'))",
        f"every {what} value must be empty or [A-Za-z0-9-_.] starting and ending with a letter or digit",
    )


def label_map(what: str, max_entries: int) -> Any:
    """A map of Kubernetes labels (or a node selector), validated like the API server does."""
    return Annotated[
        dict[str, Annotated[str, Field(max_length=63)]],
        Field(max_length=max_entries, json_schema_extra=cel_rules(_qualified_keys(what), _label_values(what))),
    ]


StringMap = label_map("label", 64)
AnnotationMap = Annotated[
    dict[str, str], Field(max_length=64, json_schema_extra=cel_rules(_qualified_keys("annotation")))
]

# Pass-through Kubernetes structures we do not re-model (affinity, volume sources, valueFrom):
# kept as-is and validated by the API server when the Deployment is applied.
OpaqueObject = Annotated[dict[str, Any], Field(json_schema_extra={"type": "object", PRESERVE_UNKNOWN: True})]


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


# The longest condition message the CRDs accept (the API server counts it in bytes).
MAX_CONDITION_MESSAGE = 32768


class Condition(KubeModel):
    """A status condition, shaped as Kubernetes API conventions and kstatus expect."""

    type: Annotated[str, Field(max_length=316, pattern=r"^[A-Z][A-Za-z0-9]*$")]
    """Condition type."""
    status: ConditionStatus
    """True, False or Unknown."""
    reason: Annotated[str, Field(max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]
    """Machine-readable reason (CamelCase)."""
    message: Annotated[str, Field(max_length=MAX_CONDITION_MESSAGE)] = ""
    """Human-readable explanation."""
    observed_generation: Annotated[int, Field(ge=0)] = 0
    """The metadata.generation the condition was computed for."""
    last_transition_time: Annotated[str, Field(json_schema_extra={"format": "date-time"})]
    """When status last changed."""


Conditions = Annotated[list[Condition], Field(max_length=16, json_schema_extra=list_map("type"))]


class LocalObjectReference(KubeModel):
    """A reference to an object by name in the same namespace (a Secret, a ConfigMap)."""

    name: DnsSubdomain
    """Name of the object in the same namespace."""


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(KubeModel):
    """A core/v1 Toleration (modelled so RuntimeClass and app tolerations can be merged)."""

    key: Annotated[str, Field(max_length=316)] | None = None
    """Taint key; empty with operator Exists tolerates everything."""
    operator: TolerationOperator | None = None
    """Exists or Equal (default)."""
    value: Annotated[str, Field(max_length=63)] | None = None
    """Taint value (with Equal)."""
    effect: TaintEffect | None = None
    """NoSchedule, PreferNoSchedule or NoExecute; empty means all."""
    toleration_seconds: int | None = None
    """With NoExecute: how long the pod stays after the taint appears."""

    model_config = ConfigDict(
        json_schema_extra=cel_rules(
            cel(
                "!has(self.operator) || self.operator != 'Exists' || !has(self.value)",
                "a toleration with operator Exists must not set a value",
            ),
            cel(
                "(has(self.key) && self.key != '') || (has(self.operator) && self.operator == 'Exists')",
                "a toleration without a key must use operator Exists (it then tolerates every taint)",
            ),
        )
    )


Tolerations = Annotated[list[Toleration], Field(max_length=32)]
NodeSelector = label_map("nodeSelector", 32)


class ObjectModel(KubeModel):
    """Accessors shared by the top-level kinds: what reconcilers read from `metadata`."""

    api_version: str
    kind: str
    metadata: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.metadata["name"])

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid", ""))

    @property
    def generation(self) -> int:
        return int(self.metadata.get("generation") or 0)

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.metadata.get("labels") or {})
