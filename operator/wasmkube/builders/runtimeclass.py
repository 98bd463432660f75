"""The RuntimeClass a WasmRuntime owns."""

from __future__ import annotations

from typing import Any

from wasmkube.api.wasmruntime import WasmRuntime
from wasmkube.builders.applied import stamp_hash
from wasmkube.builders.identity import MANAGED_BY, owner_reference


def build_runtime_class(runtime: WasmRuntime) -> dict[str, Any]:
    """The RuntimeClass: handler, node selection (merged into pods by admission) and overhead."""
    spec = runtime.spec
    body: dict[str, Any] = {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {
            "name": runtime.runtime_class_name,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "app.kubernetes.io/component": "wasm-runtime",
                "wasmkube.dev/runtime": runtime.name,
            },
            "ownerReferences": [owner_reference(runtime.api_version, runtime.kind, runtime.name, runtime.uid)],
        },
        "handler": spec.handler,
    }
    scheduling: dict[str, Any] = {}
    if spec.node_selector:
        scheduling["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        scheduling["tolerations"] = [
            t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in spec.tolerations
        ]
    if scheduling:
        body["scheduling"] = scheduling
    if spec.overhead:
        body["overhead"] = {"podFixed": dict(spec.overhead.pod_fixed)}
    return stamp_hash(body)
