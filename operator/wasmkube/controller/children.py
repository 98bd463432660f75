"""Make generated objects match their desired state with as few writes as possible.

A child is applied (server-side apply, field manager `wasmkube`) only when it is missing, when
its desired form changed (the hash annotation differs), or when someone else changed its spec
since our last apply (its generation moved). Otherwise nothing is sent: an idle cluster costs
no writes. After a restart the first reconcile re-applies each child once (a no-op for etcd), so
drift that happened while the operator was down is repaired too.
"""

from __future__ import annotations

from typing import Any

from wasmkube.builders.applied import applied_hash
from wasmkube.clients.kube import Key, KubeApiError, KubeClient, ResourceType, key_of, resource_of
from wasmkube.controller.store import ObjectCache
from wasmkube.errors import SpecError


def change_marker(obj: dict[str, Any]) -> str | None:
    """What moves when someone else edits the object: its generation, or for kinds without one
    (a RuntimeClass has no spec, so no generation) its resourceVersion."""
    meta = obj.get("metadata", {})
    marker = meta.get("generation") or meta.get("resourceVersion")
    return str(marker) if marker is not None else None


def controlled_by(obj: dict[str, Any], owner_uid: str) -> bool:
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(r.get("uid") == owner_uid and r.get("controller") for r in refs)


def controller_reference(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The object's controlling ownerReference (the one with `controller: true`), if any."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return next((r for r in refs if r.get("controller")), None)


class ChildApplier:
    """Applies and removes children, remembering the generation each apply produced."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client
        self._applied_marker: dict[tuple[str, Key], str | None] = {}

    def _up_to_date(self, desired: dict[str, Any], observed: dict[str, Any] | None, resource: ResourceType) -> bool:
        if observed is None or applied_hash(observed) != applied_hash(desired):
            return False
        recorded = self._applied_marker.get((resource.plural, key_of(observed)))
        return recorded is not None and recorded == change_marker(observed)

    async def ensure(self, desired: dict[str, Any], cache: ObjectCache, owner_uid: str) -> dict[str, Any]:
        """Bring one child to its desired state; returns the object as the API server holds it."""
        resource = resource_of(desired)
        key = key_of(desired)
        observed = cache.get(key)
        if self._up_to_date(desired, observed, resource):
            assert observed is not None
            return observed
        if observed is not None and not controlled_by(observed, owner_uid):
            raise self._name_conflict(desired)
        # Force only what we know is ours; an object we have not seen yet might be someone
        # else's, and a non-forced apply surfaces that as a conflict instead of taking it over.
        try:
            stored = await self._client.apply(desired, force=observed is not None)
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            current = await self._client.get(resource, key[0] or None, key[1])
            if current is None or not controlled_by(current, owner_uid):
                raise self._name_conflict(desired) from exc
            stored = await self._client.apply(desired, force=True)
        cache.upsert(stored)
        self._applied_marker[(resource.plural, key)] = change_marker(stored)
        return stored

    async def remove(self, resource: ResourceType, key: Key, cache: ObjectCache, owner_uid: str) -> None:
        """Delete a child that should no longer exist, if (and only if) it is ours."""
        observed = cache.get(key)
        if observed is None or not controlled_by(observed, owner_uid):
            return
        await self._client.delete(resource, key[0] or None, key[1], uid=observed["metadata"].get("uid"))
        cache.remove(key)
        self._applied_marker.pop((resource.plural, key), None)

    def forget(self, resource: ResourceType, key: Key) -> None:
        self._applied_marker.pop((resource.plural, key), None)

    @staticmethod
    def _name_conflict(desired: dict[str, Any]) -> SpecError:
        meta = desired["metadata"]
        where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
        return SpecError(
            "NameConflict",
            f"{desired['kind']} {where}{meta['name']} already exists and is not managed by this object; "
            "rename or delete it",
        )
