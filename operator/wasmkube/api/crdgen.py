"""Generate the CustomResourceDefinitions from the pydantic models.

Pydantic emits JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3 schema: no
`$ref`, a `type` on every node, no `null` types, no `additionalProperties: false`, no titles.
`structural()` performs exactly that translation, so the models stay the one source of truth and
the committed `crds/*.yaml` are a pure function of them (a unit test proves it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml
from pydantic import BaseModel

from wasmkube.api.common import GROUP, INT_OR_STRING, PRESERVE_UNKNOWN, VERSION
from wasmkube.api.wasmapp import WasmAppSpec, WasmAppStatus
from wasmkube.api.wasmruntime import WasmRuntimeSpec, WasmRuntimeStatus

# JSON-Schema keywords the API server rejects or that carry no meaning for it.
_DROPPED_KEYS = frozenset({"title", "default", "$defs", "examples", "readOnly", "writeOnly"})


def _resolve(ref: str, defs: Mapping[str, Any]) -> dict[str, Any]:
    name = ref.rsplit("/", 1)[-1]
    return dict(defs[name])


def _collapse_nullable(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`X | None` becomes just X: absence already means "not set" in Kubernetes."""
    return [o for o in options if o.get("type") != "null"]


def structural(node: Any, defs: Mapping[str, Any]) -> Any:
    """Translate one pydantic JSON-schema node (recursively) into structural OpenAPI."""
    if isinstance(node, list):
        return [structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node

    node = dict(node)
    if "$ref" in node:
        extra = {k: v for k, v in node.items() if k != "$ref"}
        node = {**_resolve(node.pop("$ref"), defs), **extra}

    if node.get(INT_OR_STRING):
        # int | str: the API server's int-or-string marker replaces the anyOf entirely.
        kept = {k: v for k, v in node.items() if k in {"description", "pattern", INT_OR_STRING}}
        return kept

    if "anyOf" in node:
        options = _collapse_nullable(node.pop("anyOf"))
        if len(options) == 1:
            merged = {**structural(options[0], defs), **{k: v for k, v in node.items() if k not in _DROPPED_KEYS}}
            return structural(merged, defs)
        raise ValueError(f"unions other than `X | None` need an explicit schema marker: {options}")

    if "const" in node:
        node["enum"] = [node.pop("const")]

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:
            continue
        if key == "additionalProperties":
            if value is False:
                continue  # the API server prunes unknown fields anyway
            if value is True:
                out[PRESERVE_UNKNOWN] = True
                continue
            out[key] = structural(value, defs)
        elif key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value, defs)
        elif key == "description":
            out[key] = " ".join(str(value).split())  # docstrings are wrapped; descriptions are one line
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"] = value
            out["exclusiveMinimum"] = True
        elif key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"] = value
            out["exclusiveMaximum"] = True
        elif key == "maxLength" and node.get("type") in {"array", "object"}:
            # pydantic's max_length on a collection means a count of items/keys.
            out["maxItems" if node.get("type") == "array" else "maxProperties"] = value
        elif key == "minLength" and node.get("type") in {"array", "object"}:
            out["minItems" if node.get("type") == "array" else "minProperties"] = value
        else:
            out[key] = value
    if "properties" in out and "type" not in out:
        out["type"] = "object"
    if out.get(PRESERVE_UNKNOWN) and "type" not in out:
        out["type"] = "object"
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The structural OpenAPI schema of one model, validated by alias (camelCase)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return structural(raw, defs)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    priority: int = 0
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        column: dict[str, Any] = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.priority:
            column["priority"] = self.priority
        if self.description:
            column["description"] = self.description
        return column


@dataclass(frozen=True)
class CrdSpec:
    """Everything about one kind that is not in its pydantic models."""

    kind: str
    plural: str
    singular: str
    scope: str
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    columns: tuple[PrinterColumn, ...] = ()
    scale: bool = False
    description: str = ""
    root_rules: tuple[dict[str, str], ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def filename(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


def _condition_column(condition: str, field_name: str, priority: int = 0) -> PrinterColumn:
    return PrinterColumn(
        name=condition if field_name == "status" else field_name.capitalize(),
        json_path=f'.status.conditions[?(@.type=="{condition}")].{field_name}',
        priority=priority,
    )


WASMAPP = CrdSpec(
    kind="WasmApp",
    plural="wasmapps",
    singular="wasmapp",
    scope="Namespaced",
    spec_model=WasmAppSpec,
    status_model=WasmAppStatus,
    short_names=("wapp",),
    categories=("wasm",),
    scale=True,
    description="A WebAssembly application run as a Deployment on a containerd Wasm shim (RuntimeClass).",
    columns=(
        PrinterColumn("Runtime", ".status.runtime"),
        _condition_column("Ready", "status"),
        # Shown by default: it is where `ScaledToZero` (and `Waking`) are seen at a glance.
        _condition_column("Ready", "reason"),
        PrinterColumn("Replicas", ".status.readyReplicas", type="integer", description="ready replicas"),
        PrinterColumn("Image", ".spec.image"),
        PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        PrinterColumn("Kind", ".status.artifact.kind", priority=1),
        PrinterColumn("RuntimeClass", ".status.runtimeClassName", priority=1),
        PrinterColumn("Digest", ".status.artifact.digest", priority=1),
    ),
)

WASMRUNTIME = CrdSpec(
    kind="WasmRuntime",
    plural="wasmruntimes",
    singular="wasmruntime",
    scope="Cluster",
    spec_model=WasmRuntimeSpec,
    status_model=WasmRuntimeStatus,
    short_names=("wrt",),
    categories=("wasm",),
    description="A containerd Wasm shim on some nodes; the operator keeps its RuntimeClass.",
    columns=(
        PrinterColumn("RuntimeClass", ".status.runtimeClassName"),
        PrinterColumn("Handler", ".spec.handler"),
        PrinterColumn("Default", ".spec.default", type="boolean"),
        PrinterColumn("Ready Nodes", ".status.readyNodes", type="integer"),
        _condition_column("Ready", "status"),
        PrinterColumn("Age", ".metadata.creationTimestamp", type="date"),
        PrinterColumn("Eligible", ".status.eligibleNodes", type="integer", priority=1),
        _condition_column("Ready", "reason", priority=1),
    ),
)

ALL_CRDS: tuple[CrdSpec, ...] = (WASMAPP, WASMRUNTIME)

# What the API server shows as status before the operator has written any. kstatus (Flux's health
# checks, Helm 4's --wait) calls an object without status or conditions Current, so a WasmApp no
# operator has seen would pass as ready; with observedGeneration 0 behind metadata.generation it
# is InProgress until the operator reports on the current generation. Create requests cannot set
# status (the status subresource drops it); the default is applied when the object is read.
UNOBSERVED_STATUS: dict[str, Any] = {"observedGeneration": 0}


def crd_manifest(spec: CrdSpec) -> dict[str, Any]:
    """The whole CustomResourceDefinition object for one kind."""
    spec_schema = model_schema(spec.spec_model)
    status_schema = model_schema(spec.status_model)
    root: dict[str, Any] = {
        "type": "object",
        "description": spec.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": {**status_schema, "default": UNOBSERVED_STATUS},
        },
    }
    if spec.root_rules:
        root["x-kubernetes-validations"] = list(spec.root_rules)
    subresources: dict[str, Any] = {"status": {}}
    if spec.scale:
        subresources["scale"] = {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": ".status.selector",
        }
    names: dict[str, Any] = {
        "kind": spec.kind,
        "listKind": f"{spec.kind}List",
        "plural": spec.plural,
        "singular": spec.singular,
    }
    if spec.short_names:
        names["shortNames"] = list(spec.short_names)
    if spec.categories:
        names["categories"] = list(spec.categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": spec.name,
            "labels": {"app.kubernetes.io/name": "wasmkube", "app.kubernetes.io/part-of": "wasmkube"},
        },
        "spec": {
            "group": GROUP,
            "names": names,
            "scope": spec.scope,
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": subresources,
                    "additionalPrinterColumns": [c.to_dict() for c in spec.columns],
                }
            ],
        },
    }


HEADER = "# Generated by `wasmkube crds` from the pydantic models in operator/wasmkube/api. Do not edit.\n"


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated sub-trees out in full: anchors (`&id001`) have no place in a CRD file."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_yaml(spec: CrdSpec) -> str:
    """One CRD as the exact text committed under `crds/`."""
    body = yaml.dump(crd_manifest(spec), Dumper=_PlainDumper, sort_keys=False, width=120, allow_unicode=True)
    return HEADER + body


def render_all() -> dict[str, str]:
    """File name → YAML text for every CRD."""
    return {spec.filename: render_yaml(spec) for spec in ALL_CRDS}
