"""Names and labels of the objects generated for a WasmApp.

Generated names must be valid for every valid WasmApp name. A WasmApp may be named with up to 253
characters and dots (a DNS subdomain); a Service needs a DNS-1035 label (63 characters, starting
with a letter), and label values are limited to 63 characters. So an unusual name is shortened
and made unique with a hash of the full name; an ordinary name is used as it is.
"""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "wasmkube"
# What Kopf watches children by: only objects this operator generated.
MANAGED_SELECTOR = {"app.kubernetes.io/managed-by": MANAGED_BY}
APP_LABEL = "wasmkube.dev/app"
RUNTIME_LABEL = "wasmkube.dev/runtime"

_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_MAX_LABEL = 63
_HASH_LENGTH = 8


def child_name(app_name: str) -> str:
    """The name shared by the Deployment, Service and HPA of a WasmApp; also a label value."""
    if len(app_name) <= _MAX_LABEL and _DNS_1035_LABEL.match(app_name):
        return app_name
    digest = hashlib.sha256(app_name.encode()).hexdigest()[:_HASH_LENGTH]
    cleaned = re.sub(r"[^a-z0-9-]+", "-", app_name.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = f"w-{cleaned}".rstrip("-")
    prefix = cleaned[: _MAX_LABEL - _HASH_LENGTH - 1].rstrip("-")
    return f"{prefix}-{digest}"


def selector_labels(app_name: str) -> dict[str, str]:
    """The Deployment selector: stable for the app's lifetime (selectors are immutable)."""
    return {APP_LABEL: child_name(app_name)}


def selector_string(app_name: str) -> str:
    """`status.selector` for the /scale subresource, in the form HPA and kubectl parse."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector_labels(app_name).items()))


def curated_labels(app_name: str, parent_labels: dict[str, str], runtime: str | None = None) -> dict[str, str]:
    """Labels for generated objects. Never the parent's labels wholesale: a GitOps tool's
    tracking label on the WasmApp must not make it claim the children too."""
    labels = {
        "app.kubernetes.io/name": child_name(app_name),
        "app.kubernetes.io/instance": child_name(app_name),
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/component": "wasm-app",
        **selector_labels(app_name),
    }
    part_of = parent_labels.get("app.kubernetes.io/part-of")
    if part_of:
        labels["app.kubernetes.io/part-of"] = part_of
    if runtime:
        labels[RUNTIME_LABEL] = child_name(runtime)
    return labels


def owner_reference(api_version: str, kind: str, name: str, uid: str) -> dict[str, object]:
    """The controller reference that lets garbage collection delete children with the parent."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
