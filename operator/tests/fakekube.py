"""A small stand-in for the API server and the registry, for tests that run a reconcile in-process.

`FakeClient` has just the calls the controller makes (apply, get, delete, status and scale
patches, one-page lists, Events). It keeps the objects it was given or that were applied, bumps
`metadata.generation` when an apply changes a spec (as the API server does), keeps a
`spec.replicas` that an apply leaves out (as server-side apply keeps another manager's field),
and records every write so a test can assert on what was sent. It does not pretend to be Kubernetes: no admission,
no defaulting, no Deployment controller. A test that wants a rolled-out Deployment writes that
Deployment's status itself.

`FakeResolver` answers image references from a table, like `ArtifactResolver.resolve` would.
"""

from __future__ import annotations

import copy
from typing import Any

from wasmkube.api.artifact import ArtifactKind, ArtifactLayout
from wasmkube.clients.kube import KubeApiError, ResourceType, key_of
from wasmkube.controller.children import ChildApplier
from wasmkube.controller.context import Context
from wasmkube.controller.events import EventRecorder
from wasmkube.controller.store import ObjectCache, Store
from wasmkube.metrics import Metrics
from wasmkube.registry.artifact import ResolvedArtifact
from wasmkube.registry.auth import Credentials
from wasmkube.registry.errors import RegistryError

KINDS = {
    "deployments": "Deployment",
    "services": "Service",
    "secrets": "Secret",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "endpointslices": "EndpointSlice",
    "runtimeclasses": "RuntimeClass",
    "wasmapps": "WasmApp",
    "wasmruntimes": "WasmRuntime",
    "pods": "Pod",
    "events": "Event",
}


def _labels_match(obj: dict[str, Any], selector: str | None) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in (selector or "").split(","):
        if term:
            name, _, value = term.partition("=")
            if labels.get(name) != value:
                return False
    return True


class FakeClient:
    """Just enough of KubeClient for ChildApplier and the reconcilers."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.applies: list[tuple[str, bool]] = []
        self.gets: list[tuple[str, str | None, str]] = []
        self.deletes: list[tuple[str, str | None, str, str | None]] = []
        self.status_writes: list[tuple[str, str | None, str, dict[str, Any]]] = []
        self.scales: list[tuple[str, int]] = []
        self.events: list[dict[str, Any]] = []
        self.conflict_unless_forced = False
        self.fail_with: KubeApiError | None = None
        self._uids = 0

    def put(self, obj: dict[str, Any], generation: int = 1) -> dict[str, Any]:
        """An object that exists on the server (created by anyone)."""
        stored = copy.deepcopy(obj)
        self._uids += 1
        stored["metadata"].setdefault("uid", f"uid-{self._uids}")
        stored["metadata"]["generation"] = generation
        namespace, name = key_of(stored)
        self.objects[(stored["kind"], namespace, name)] = stored
        return copy.deepcopy(stored)

    def stored(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The object as the server holds it now (a copy)."""
        found = self.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    async def apply(self, obj: dict[str, Any], *, force: bool = True) -> dict[str, Any]:
        self.applies.append((obj["metadata"]["name"], force))
        if self.fail_with is not None:
            raise self.fail_with
        if self.conflict_unless_forced and not force:
            raise KubeApiError(409, "Conflict", 'Apply failed with 1 conflict: conflict with "kubectl"')
        namespace, name = key_of(obj)
        current = self.objects.get((obj["kind"], namespace, name))
        if current is None:
            return self.put(obj)
        merged = copy.deepcopy(obj)
        if "replicas" in current.get("spec", {}) and "replicas" not in merged.get("spec", {}):
            # Left out on purpose (the HPA or the activator owns it): server-side apply keeps it.
            merged["spec"]["replicas"] = current["spec"]["replicas"]
        generation = current["metadata"]["generation"]
        if current.get("spec") != merged.get("spec"):
            generation += 1
        merged["metadata"]["uid"] = current["metadata"]["uid"]
        merged["metadata"]["generation"] = generation
        if "status" in current:
            merged["status"] = copy.deepcopy(current["status"])
        self.objects[(obj["kind"], namespace, name)] = merged
        return copy.deepcopy(merged)

    async def get(self, resource: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        self.gets.append((resource.plural, namespace, name))
        return self.stored(KINDS[resource.plural], namespace or "", name)

    async def delete(self, resource: ResourceType, namespace: str | None, name: str, *, uid: str | None = None) -> None:
        self.deletes.append((resource.plural, namespace, name, uid))
        key = (KINDS[resource.plural], namespace or "", name)
        if key in self.objects and (uid is None or self.objects[key]["metadata"].get("uid") == uid):
            del self.objects[key]

    async def patch_status(
        self, resource: ResourceType, namespace: str | None, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        key = (KINDS[resource.plural], namespace or "", name)
        if key not in self.objects:
            raise KubeApiError(404, "NotFound", f"{resource.plural} {name!r} not found")
        self.status_writes.append((resource.plural, namespace, name, copy.deepcopy(status)))
        self.objects[key]["status"] = copy.deepcopy(status)
        return copy.deepcopy(self.objects[key])

    async def patch_scale(
        self, resource: ResourceType, namespace: str, name: str, replicas: int, *, resource_version: str | None = None
    ) -> dict[str, Any]:
        self.scales.append((name, replicas))
        found = self.objects[(KINDS[resource.plural], namespace, name)]
        found["spec"]["replicas"] = replicas
        return copy.deepcopy(found)

    async def list_objects(
        self,
        resource: ResourceType,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        kind = KINDS[resource.plural]
        return [
            copy.deepcopy(o)
            for (k, ns, _), o in self.objects.items()
            if k == kind and ns == (namespace or "") and _labels_match(o, label_selector)
        ][: limit or None]

    async def post_event(self, event: dict[str, Any]) -> None:
        self.events.append(copy.deepcopy(event))


def resolved(reference: str, digest: str, kind: ArtifactKind = ArtifactKind.MODULE) -> ResolvedArtifact:
    """What the registry says `reference` is: a Wasm artifact with `digest`."""
    name = reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference
    registry, _, repository = name.partition("/")
    return ResolvedArtifact(
        reference=reference,
        registry=registry,
        repository=repository,
        tag=reference.rsplit(":", 1)[-1],
        digest=digest,
        pinned=f"{name}@{digest}",
        kind=kind,
        layout=ArtifactLayout.CNCF_WASM if kind is not ArtifactKind.CONTAINER else ArtifactLayout.CONTAINER_IMAGE,
        media_type="application/vnd.oci.image.manifest.v1+json",
        config_media_type="application/vnd.wasm.config.v0+json",
        size=1024,
        exports=(),
        platform=None,
        resolved_at=0.0,
    )


class FakeResolver:
    """ArtifactResolver.resolve from a table: reference -> the artifact, or the error to raise."""

    def __init__(self) -> None:
        self.answers: dict[str, ResolvedArtifact | RegistryError] = {}
        self.calls: list[tuple[str, Credentials | None]] = []

    async def resolve(
        self, reference: str, credentials: Credentials | None = None, *, force_refresh: bool = False
    ) -> ResolvedArtifact:
        self.calls.append((reference, credentials))
        answer = self.answers[reference]
        if isinstance(answer, RegistryError):
            raise answer.copy()
        return answer


def make_context(client: FakeClient, resolver: FakeResolver | None = None) -> Context:
    """A Context on the fakes, with the real applier, store, Event recorder and metrics."""
    return Context(
        client=client,  # type: ignore[arg-type]
        resolver=resolver or FakeResolver(),  # type: ignore[arg-type]
        store=Store(),
        children=ChildApplier(client),  # type: ignore[arg-type]
        events=EventRecorder(client),  # type: ignore[arg-type]
        metrics=Metrics(),
    )


class World:
    """The state a reconcile starts from: objects on the fake server and in the operator's caches."""

    def __init__(self) -> None:
        self.client = FakeClient()
        self.resolver = FakeResolver()
        self.ctx = make_context(self.client, self.resolver)

    def add(self, obj: dict[str, Any], cache: ObjectCache) -> dict[str, Any]:
        """`obj` exists on the server and the watch has delivered it."""
        stored = self.client.put(obj, generation=int(obj["metadata"].get("generation") or 1))
        cache.upsert(stored)
        return stored

    def edit(self, kind: str, namespace: str, name: str, cache: ObjectCache, change: Any) -> dict[str, Any]:
        """Someone changed an object: `change(obj)` edits it in place; the watch delivers it."""
        obj = self.client.objects[(kind, namespace, name)]
        change(obj)
        cache.upsert(copy.deepcopy(obj))
        return copy.deepcopy(obj)

    async def events(self) -> list[tuple[str, str, str]]:
        """(type, reason, message) of every Event posted so far."""
        await self.ctx.events.flush()
        return [(e["type"], e["reason"], e["message"]) for e in self.client.events]
