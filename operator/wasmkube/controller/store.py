"""In-memory copies of the objects the operator watches.

Kopf's watch streams feed these caches; reconcilers read them instead of asking the API server,
so an idle cluster costs no requests at all. An update never replaces a newer copy with an older
one: our own write responses and watch events can arrive in either order.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from wasmkube.clients.kube import Key, key_of

_intern = sys.intern


def _version(obj: dict[str, Any]) -> int | None:
    value = obj.get("metadata", {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _shared(value: Any) -> Any:
    """`value` rebuilt with every string interned (equal, but one object per distinct string).

    Each decoded API object brings its own copy of every key and of every repeated value
    ("metadata", "apiVersion", label keys, the namespace, the runtime's name...): strings were
    well over half of the cache's memory with 1,000 apps, and most of them were duplicates.
    Interned strings are still freed once no object uses them."""
    kind = type(value)
    if kind is str:
        return _intern(value)
    if kind is dict:
        return {(_intern(k) if type(k) is str else k): _shared(v) for k, v in value.items()}
    if kind is list:
        return [_shared(v) for v in value]
    return value  # numbers, booleans, None: nothing to share


def _for_cache(obj: dict[str, Any]) -> dict[str, Any]:
    """The copy the cache keeps, built in one pass: its strings shared (see `_shared`), and
    without `metadata.managedFields`, which no reconciler reads and which is often the largest
    part of a stored object (a third of the cache's memory with 1,000 apps)."""
    return {_intern(k): _metadata(v) if k == "metadata" and type(v) is dict else _shared(v) for k, v in obj.items()}


def _metadata(meta: dict[str, Any]) -> dict[str, Any]:
    return {_intern(k): _shared(v) for k, v in meta.items() if k != "managedFields"}


class ObjectCache:
    """Latest known copy of each object of one kind."""

    def __init__(self) -> None:
        self._objects: dict[Key, dict[str, Any]] = {}

    def upsert(self, obj: dict[str, Any]) -> bool:
        """Store `obj` unless the cache already holds this version or a newer one.

        Returns whether it was stored, i.e. whether it is news. The watch event for our own write
        carries the version we already cached from the write's response: it is not news, and
        reconciling again for it would only recompute what was just written."""
        key = key_of(obj)
        current = self._objects.get(key)
        if current is not None:
            old, new = _version(current), _version(obj)
            if old is not None and new is not None and new <= old:
                return False
        self._objects[key] = _for_cache(obj)
        return True

    def remove(self, key: Key) -> dict[str, Any] | None:
        return self._objects.pop(key, None)

    def get(self, key: Key) -> dict[str, Any] | None:
        return self._objects.get(key)

    def values(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._objects.values()))

    def known_keys(self) -> list[Key]:
        return list(self._objects)

    def __len__(self) -> int:
        return len(self._objects)


class Store:
    """Every cache the reconcilers read."""

    def __init__(self) -> None:
        self.apps = ObjectCache()
        self.runtimes = ObjectCache()
        self.deployments = ObjectCache()
        self.services = ObjectCache()
        self.autoscalers = ObjectCache()
        self.runtime_classes = ObjectCache()
        self.nodes = ObjectCache()
        # scaleToZero apps only: the slices of `<app>-pods` and the ones the operator writes for `<app>`.
        self.endpoint_slices = ObjectCache()
