"""The applied-hash annotation: a hash of each object as built, stamped on it before it is applied.

Every builder of an object the operator applies stamps its result here, as its last step, so
the operator and `wasmkube render` print and send the same annotation. The controller reads it
back from what the API server holds: an equal hash means the desired form has not changed
since the last apply, and nothing need be sent.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

APPLIED_HASH_ANNOTATION = "wasmkube.dev/applied-hash"
_DIGEST_LENGTH = 16


def stamp_hash(obj: dict[str, Any]) -> dict[str, Any]:
    """Record a hash of the desired object on it (in place; returned for chaining).

    The JSON is canonical (sorted keys, no spaces), so the hash is the same in every process."""
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(canonical).hexdigest()[:_DIGEST_LENGTH]
    obj["metadata"].setdefault("annotations", {})[APPLIED_HASH_ANNOTATION] = digest
    return obj


def applied_hash(obj: dict[str, Any] | None) -> str | None:
    """The hash an object carries, None for no object or one we never stamped."""
    if not obj:
        return None
    annotations = obj.get("metadata", {}).get("annotations") or {}
    value = annotations.get(APPLIED_HASH_ANNOTATION)
    return str(value) if value is not None else None
