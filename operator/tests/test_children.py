"""ChildApplier's decisions: when to skip an apply, when to force it, and when to refuse.

A unit test of the decision logic with the fake client of `fakekube` standing in for the API
server (shared with the in-process reconcile tests): it stores what is applied, bumps generations
the way the API server does for a spec change, and can be told to answer an apply with a 409
conflict. Nothing here talks to a cluster.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fakekube import FakeClient

from wasmkube.builders.applied import stamp_hash
from wasmkube.clients.kube import DEPLOYMENTS, SERVICES, KubeApiError
from wasmkube.controller.children import ChildApplier, change_marker, controlled_by, controller_reference
from wasmkube.controller.store import ObjectCache
from wasmkube.errors import SpecError

OWNER = "owner-uid"
STRANGER = "someone-else"


def owner_ref(uid: str) -> dict[str, Any]:
    return {"apiVersion": "wasmkube.dev/v1alpha1", "kind": "WasmApp", "name": "hello", "uid": uid, "controller": True}


def desired_deployment(replicas: int = 1, owner: str = OWNER) -> dict[str, Any]:
    return stamp_hash(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "hello", "namespace": "apps", "ownerReferences": [owner_ref(owner)]},
            "spec": {"replicas": replicas},
        }
    )


@pytest.fixture
def client() -> FakeClient:
    return FakeClient()


@pytest.fixture
def applier(client: FakeClient) -> ChildApplier:
    return ChildApplier(client)  # type: ignore[arg-type]


@pytest.fixture
def cache() -> ObjectCache:
    return ObjectCache()


# --- ownership helpers ----------------------------------------------------------------------------


def test_controlled_by_needs_a_controller_reference_with_the_uid() -> None:
    obj = {"metadata": {"ownerReferences": [owner_ref(OWNER)]}}
    assert controlled_by(obj, OWNER)
    assert not controlled_by(obj, STRANGER)


def test_plain_owner_reference_is_not_control() -> None:
    obj = {"metadata": {"ownerReferences": [{**owner_ref(OWNER), "controller": False}]}}
    assert not controlled_by(obj, OWNER)
    assert controller_reference(obj) is None


def test_object_without_owners_is_controlled_by_nobody() -> None:
    assert not controlled_by({"metadata": {}}, OWNER)
    assert controller_reference({"metadata": {}}) is None


def test_controller_of_finds_the_controller_among_owners() -> None:
    refs = [{**owner_ref("a"), "controller": False}, owner_ref("b")]
    assert controller_reference({"metadata": {"ownerReferences": refs}}) == owner_ref("b")


# --- ensure: first apply --------------------------------------------------------------------------


async def test_missing_child_is_applied_without_force(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    stored = await applier.ensure(desired_deployment(), cache, OWNER)
    assert client.applies == [("hello", False)]
    assert stored["metadata"]["generation"] == 1
    assert cache.get(("apps", "hello")) == stored


async def test_unchanged_child_is_not_applied_again(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    first = await applier.ensure(desired_deployment(), cache, OWNER)
    second = await applier.ensure(desired_deployment(), cache, OWNER)
    assert second == first
    assert len(client.applies) == 1


# --- ensure: re-applies ---------------------------------------------------------------------------


async def test_changed_desired_state_is_applied_with_force(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    await applier.ensure(desired_deployment(replicas=1), cache, OWNER)
    stored = await applier.ensure(desired_deployment(replicas=3), cache, OWNER)
    assert client.applies == [("hello", False), ("hello", True)]
    assert stored["spec"]["replicas"] == 3
    assert stored["metadata"]["generation"] == 2


async def test_edit_by_someone_else_is_repaired(applier: ChildApplier, client: FakeClient, cache: ObjectCache) -> None:
    stored = await applier.ensure(desired_deployment(), cache, OWNER)
    edited = copy.deepcopy(stored)
    edited["spec"]["replicas"] = 9
    edited["metadata"]["generation"] = 2  # the API server bumped it for the foreign edit
    cache.upsert(edited)
    await applier.ensure(desired_deployment(), cache, OWNER)
    assert client.applies == [("hello", False), ("hello", True)]


async def test_after_a_restart_each_child_is_applied_once(client: FakeClient, cache: ObjectCache) -> None:
    await ChildApplier(client).ensure(desired_deployment(), cache, OWNER)  # type: ignore[arg-type]
    restarted = ChildApplier(client)  # type: ignore[arg-type]
    await restarted.ensure(desired_deployment(), cache, OWNER)
    await restarted.ensure(desired_deployment(), cache, OWNER)
    assert client.applies == [("hello", False), ("hello", True)]


async def test_forget_makes_the_next_ensure_apply(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    await applier.ensure(desired_deployment(), cache, OWNER)
    applier.forget(DEPLOYMENTS, ("apps", "hello"))
    await applier.ensure(desired_deployment(), cache, OWNER)
    assert len(client.applies) == 2


async def test_generations_are_remembered_per_resource_type(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    await applier.ensure(desired_deployment(), cache, OWNER)
    applier.forget(SERVICES, ("apps", "hello"))  # a Service of the same name: not the Deployment
    await applier.ensure(desired_deployment(), cache, OWNER)
    assert len(client.applies) == 1


# --- ensure: conflicts ----------------------------------------------------------------------------


async def test_cached_object_of_another_owner_is_a_name_conflict(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    cache.upsert(client.put(desired_deployment(owner=STRANGER)))
    with pytest.raises(SpecError) as caught:
        await applier.ensure(desired_deployment(), cache, OWNER)
    assert caught.value.reason == "NameConflict"
    assert "Deployment apps/hello already exists" in caught.value.message
    assert client.applies == []


async def test_cached_object_without_owner_is_a_name_conflict(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    foreign = desired_deployment()
    foreign["metadata"].pop("ownerReferences")
    cache.upsert(client.put(foreign))
    with pytest.raises(SpecError):
        await applier.ensure(desired_deployment(), cache, OWNER)
    assert client.applies == []


async def test_conflict_on_an_unseen_object_of_ours_is_forced(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    client.put(desired_deployment())  # ours on the server, not yet in the cache
    client.conflict_unless_forced = True
    stored = await applier.ensure(desired_deployment(), cache, OWNER)
    assert client.applies == [("hello", False), ("hello", True)]
    assert client.gets == [("deployments", "apps", "hello")]
    assert cache.get(("apps", "hello")) == stored


async def test_conflict_on_an_unseen_foreign_object_is_a_name_conflict(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    client.put(desired_deployment(owner=STRANGER))
    client.conflict_unless_forced = True
    with pytest.raises(SpecError) as caught:
        await applier.ensure(desired_deployment(), cache, OWNER)
    assert caught.value.reason == "NameConflict"
    assert isinstance(caught.value.__cause__, KubeApiError)
    assert client.applies == [("hello", False)]  # never forced onto someone else's object
    assert cache.get(("apps", "hello")) is None


async def test_conflict_on_an_object_that_vanished_is_a_name_conflict(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    client.fail_with = KubeApiError(409, "Conflict", "conflict")
    with pytest.raises(SpecError):
        await applier.ensure(desired_deployment(), cache, OWNER)
    assert len(client.applies) == 1


@pytest.mark.parametrize("status", [403, 422, 500])
async def test_other_api_errors_propagate(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache, status: int
) -> None:
    client.fail_with = KubeApiError(status, "Failure", "nope")
    with pytest.raises(KubeApiError) as caught:
        await applier.ensure(desired_deployment(), cache, OWNER)
    assert caught.value.status == status
    assert cache.get(("apps", "hello")) is None  # nothing was recorded
    assert client.gets == []


async def test_failed_apply_leaves_nothing_recorded(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    client.fail_with = KubeApiError(500, "InternalError", "etcd")
    with pytest.raises(KubeApiError):
        await applier.ensure(desired_deployment(), cache, OWNER)
    client.fail_with = None
    await applier.ensure(desired_deployment(), cache, OWNER)
    assert [force for _, force in client.applies] == [False, False]
    assert cache.get(("apps", "hello")) is not None


# --- remove ---------------------------------------------------------------------------------------


async def test_remove_deletes_our_child_by_uid(applier: ChildApplier, client: FakeClient, cache: ObjectCache) -> None:
    stored = await applier.ensure(desired_deployment(), cache, OWNER)
    await applier.remove(DEPLOYMENTS, ("apps", "hello"), cache, OWNER)
    assert client.deletes == [("deployments", "apps", "hello", stored["metadata"]["uid"])]
    assert cache.get(("apps", "hello")) is None


async def test_remove_leaves_foreign_objects_alone(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    cache.upsert(client.put(desired_deployment(owner=STRANGER)))
    await applier.remove(DEPLOYMENTS, ("apps", "hello"), cache, OWNER)
    assert client.deletes == []
    assert cache.get(("apps", "hello")) is not None


async def test_remove_of_an_unknown_child_does_nothing(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    await applier.remove(DEPLOYMENTS, ("apps", "hello"), cache, OWNER)
    assert client.deletes == []


async def test_child_recreated_after_removal_is_applied_again(
    applier: ChildApplier, client: FakeClient, cache: ObjectCache
) -> None:
    await applier.ensure(desired_deployment(), cache, OWNER)
    await applier.remove(DEPLOYMENTS, ("apps", "hello"), cache, OWNER)
    await applier.ensure(desired_deployment(), cache, OWNER)
    assert [force for _, force in client.applies] == [False, False]


def test_change_marker_falls_back_to_resource_version_for_kinds_without_generation() -> None:
    """A RuntimeClass has no spec and so no generation; without a fallback, every resync
    re-applied it (found by the steady-state benchmark)."""
    assert change_marker({"metadata": {"generation": 3, "resourceVersion": "77"}}) == "3"
    assert change_marker({"metadata": {"resourceVersion": "77"}}) == "77"
    assert change_marker({"metadata": {}}) is None
