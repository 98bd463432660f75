"""The controller's work queue and object caches."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from wasmkube.clients.kube import key_of
from wasmkube.controller import queue as queue_module
from wasmkube.controller.queue import BASE_DELAY_SECONDS, MAX_DELAY_SECONDS, WorkQueue
from wasmkube.controller.store import ObjectCache, Store

SOON = 1.0  # generous bound for things that should happen within milliseconds


async def next_key(queue: WorkQueue[str]) -> str:
    return await asyncio.wait_for(queue.get(), SOON)


async def nothing_arrives(queue: WorkQueue[str], within: float) -> bool:
    try:
        await asyncio.wait_for(queue.get(), within)
    except TimeoutError:
        return True
    return False


# --- coalescing -----------------------------------------------------------------------------------


async def test_repeated_adds_of_a_waiting_key_coalesce() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(5):
        queue.add("a")
    assert queue.depth() == 1
    assert await next_key(queue) == "a"
    assert queue.depth() == 0


async def test_distinct_keys_come_out_in_order() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "c", "b"):
        queue.add(key)
    assert [await next_key(queue) for _ in range(3)] == ["a", "b", "c"]


async def test_key_can_be_queued_again_once_taken() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await next_key(queue)
    queue.done("a")
    queue.add("a")
    assert queue.depth() == 1


# --- one worker per key ---------------------------------------------------------------------------


async def test_key_added_while_active_is_held_back() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await next_key(queue)
    queue.add("a")
    assert queue.depth() == 0  # another worker must not take it now


async def test_key_added_while_active_runs_again_after_done() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await next_key(queue)
    queue.add("a")
    queue.add("a")
    queue.done("a")
    assert queue.depth() == 1
    assert await next_key(queue) == "a"
    queue.done("a")
    assert queue.depth() == 0


async def test_done_without_new_adds_does_not_requeue() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await next_key(queue)
    queue.done("a")
    assert queue.depth() == 0
    assert queue.idle()


async def test_idle_tracks_queued_and_active_keys() -> None:
    queue: WorkQueue[str] = WorkQueue()
    assert queue.idle()
    queue.add("a")
    assert not queue.idle()
    await next_key(queue)
    assert not queue.idle()
    queue.done("a")
    assert queue.idle()


async def test_concurrent_workers_never_process_one_key_twice_at_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    active: dict[str, int] = {}
    most_at_once: dict[str, int] = {}
    runs: dict[str, int] = {}
    last_start: dict[str, float] = {}
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        while True:
            key = await queue.get()
            active[key] = active.get(key, 0) + 1
            most_at_once[key] = max(most_at_once.get(key, 0), active[key])
            runs[key] = runs.get(key, 0) + 1
            last_start[key] = loop.time()
            await asyncio.sleep(0.005)
            active[key] -= 1
            queue.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    try:
        last_add: dict[str, float] = {}
        for _ in range(20):
            for key in ("a", "b"):
                queue.add(key)
                last_add[key] = loop.time()
            await asyncio.sleep(0.002)
        for _ in range(200):
            if queue.idle():
                break
            await asyncio.sleep(0.005)
        assert queue.idle()
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)

    assert most_at_once == {"a": 1, "b": 1}
    assert 1 < runs["a"] < 20  # adds coalesced, yet it ran again
    for key in ("a", "b"):  # no lost update: a run started after the last add
        assert last_start[key] >= last_add[key]


# --- delayed adds ---------------------------------------------------------------------------------


async def test_add_after_delivers_after_the_delay() -> None:
    queue: WorkQueue[str] = WorkQueue()
    loop = asyncio.get_running_loop()
    start = loop.time()
    queue.add_after("a", 0.05)
    assert queue.depth() == 0
    assert await next_key(queue) == "a"
    assert loop.time() - start >= 0.045


async def test_earlier_timer_replaces_a_later_one() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 60)
    queue.add_after("a", 0.01)
    assert await next_key(queue) == "a"
    queue.done("a")
    queue.drop("a")


async def test_later_timer_does_not_postpone_an_earlier_one() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.01)
    queue.add_after("a", 60)
    assert await next_key(queue) == "a"


async def test_timers_fire_in_due_order() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("late", 0.06)
    queue.add_after("early", 0.02)
    assert [await next_key(queue), await next_key(queue)] == ["early", "late"]


async def test_timer_for_a_waiting_key_coalesces() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add_after("a", 0.01)
    await asyncio.sleep(0.05)
    assert queue.depth() == 1


async def test_timer_fires_only_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.01)
    assert await next_key(queue) == "a"
    queue.done("a")
    assert await nothing_arrives(queue, 0.05)


# --- retries --------------------------------------------------------------------------------------


async def test_retry_delays_grow_exponentially_within_jitter() -> None:
    queue: WorkQueue[str] = WorkQueue()
    delays = [queue.retry("a") for _ in range(8)]
    queue.drop("a")
    for failures, delay in enumerate(delays, start=1):
        nominal = BASE_DELAY_SECONDS * 2 ** (failures - 1)
        assert 0.8 * nominal <= delay <= 1.2 * nominal
    assert delays == sorted(delays)
    assert len(set(delays)) == len(delays)


async def test_retry_delay_is_capped() -> None:
    queue: WorkQueue[str] = WorkQueue()
    delays = [queue.retry("a") for _ in range(40)]
    queue.drop("a")
    assert max(delays) <= 1.2 * MAX_DELAY_SECONDS
    assert all(d >= 0.8 * MAX_DELAY_SECONDS for d in delays[-10:])


async def test_retries_are_counted_per_key() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(6):
        queue.retry("broken")
    assert queue.retry("healthy") <= 1.2 * BASE_DELAY_SECONDS
    queue.drop("broken")
    queue.drop("healthy")


async def test_forget_starts_backoff_over() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(6):
        queue.retry("a")
    queue.forget("a")
    assert queue.retry("a") <= 1.2 * BASE_DELAY_SECONDS
    queue.drop("a")


async def test_retry_requeues_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue_module, "BASE_DELAY_SECONDS", 0.01)
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    await next_key(queue)
    queue.retry("a")
    queue.done("a")
    assert await next_key(queue) == "a"


async def test_drop_cancels_a_pending_timer() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add_after("a", 0.02)
    queue.drop("a")
    assert await nothing_arrives(queue, 0.08)


async def test_drop_forgets_failures() -> None:
    queue: WorkQueue[str] = WorkQueue()
    for _ in range(6):
        queue.retry("a")
    queue.drop("a")
    assert queue.retry("a") <= 1.2 * BASE_DELAY_SECONDS
    queue.drop("a")


async def test_drop_of_an_unknown_key_is_harmless() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.drop("never-seen")
    queue.forget("never-seen")
    assert queue.idle()


async def test_queue_works_with_tuple_keys() -> None:
    queue: WorkQueue[tuple[str, str]] = WorkQueue()
    queue.add(("ns", "a"))
    queue.add(("ns", "a"))
    assert await asyncio.wait_for(queue.get(), SOON) == ("ns", "a")
    assert queue.depth() == 0


# --- ObjectCache ----------------------------------------------------------------------------------


def obj(name: str, version: str | None = None, namespace: str | None = "ns", **extra: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if version is not None:
        metadata["resourceVersion"] = version
    return {"metadata": metadata, **extra}


def test_key_of_namespaced_and_cluster_scoped_objects() -> None:
    assert key_of(obj("a", namespace="ns")) == ("ns", "a")
    assert key_of(obj("a", namespace=None)) == ("", "a")


def test_cache_stores_and_returns_objects() -> None:
    cache = ObjectCache()
    assert cache.upsert(obj("a", "1"))
    assert cache.get(("ns", "a")) == obj("a", "1")
    assert cache.get(("ns", "b")) is None
    assert len(cache) == 1


def test_cache_takes_a_newer_version() -> None:
    cache = ObjectCache()
    cache.upsert(obj("a", "1", data=1))
    assert cache.upsert(obj("a", "2", data=2))
    assert cache.get(("ns", "a"))["data"] == 2  # type: ignore[index]


def test_cache_refuses_an_older_version() -> None:
    cache = ObjectCache()
    cache.upsert(obj("a", "5", data="new"))
    assert not cache.upsert(obj("a", "4", data="old"))
    assert cache.get(("ns", "a"))["data"] == "new"  # type: ignore[index]


def test_cache_compares_versions_as_numbers_not_strings() -> None:
    cache = ObjectCache()
    cache.upsert(obj("a", "10", data="new"))
    assert not cache.upsert(obj("a", "9", data="old"))
    assert cache.upsert(obj("a", "11", data="newer"))


def test_cache_treats_the_same_version_as_no_news() -> None:
    # The watch event for our own write carries the version its response already gave us.
    cache = ObjectCache()
    assert cache.upsert(obj("a", "3", data=1))
    assert not cache.upsert(obj("a", "3", data=1))
    assert cache.get(("ns", "a"))["data"] == 1  # type: ignore[index]


@pytest.mark.parametrize("versions", [(None, "1"), ("1", None), ("abc", "1"), ("2", "xyz")])
def test_cache_accepts_when_versions_cannot_be_compared(versions: tuple[str | None, str | None]) -> None:
    cache = ObjectCache()
    cache.upsert(obj("a", versions[0], data="first"))
    assert cache.upsert(obj("a", versions[1], data="second"))


def test_cache_keys_by_namespace_and_name() -> None:
    cache = ObjectCache()
    cache.upsert(obj("a", "9", namespace="one"))
    assert cache.upsert(obj("a", "1", namespace="two"))
    assert sorted(cache.known_keys()) == [("one", "a"), ("two", "a")]


def test_cache_remove() -> None:
    cache = ObjectCache()
    cache.upsert(obj("a", "1"))
    assert cache.remove(("ns", "a")) == obj("a", "1")
    assert cache.get(("ns", "a")) is None
    assert cache.remove(("ns", "a")) is None
    assert len(cache) == 0


def test_cache_accepts_any_version_after_removal() -> None:
    cache = ObjectCache()
    cache.upsert(obj("a", "50"))
    cache.remove(("ns", "a"))
    assert cache.upsert(obj("a", "1"))


def test_cache_values_are_a_snapshot() -> None:
    cache = ObjectCache()
    for name in ("a", "b", "c"):
        cache.upsert(obj(name, "1"))
    seen = []
    for value in cache.values():
        seen.append(value["metadata"]["name"])
        cache.remove(key_of(value))
    assert sorted(seen) == ["a", "b", "c"]
    assert len(cache) == 0


def decoded(name: str, version: str) -> dict[str, Any]:
    """An object as a watch delivers it: freshly decoded JSON, so none of its strings is shared."""
    return dict(
        json.loads(
            json.dumps(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {
                        "name": name,
                        "namespace": "ns",
                        "resourceVersion": version,
                        "labels": {"app.kubernetes.io/managed-by": "wasmkube"},
                        "managedFields": [{"manager": "wasmkube", "fieldsV1": {"f:spec": {}}}],
                    },
                    "spec": {"replicas": 2, "paused": False, "minReadySeconds": None, "args": ["--port", "8080"]},
                    "status": {"conditions": [{"type": "Available", "status": "True"}]},
                }
            )
        )
    )


def test_cache_keeps_everything_but_managed_fields() -> None:
    cache = ObjectCache()
    given = decoded("a", "1")
    cache.upsert(given)
    expected = decoded("a", "1")
    del expected["metadata"]["managedFields"]
    assert cache.get(("ns", "a")) == expected
    assert "managedFields" in given["metadata"]  # the caller's object is left as it was


def test_cached_objects_share_their_strings() -> None:
    # Two objects decoded separately hold equal strings as distinct objects; the cache keeps one of each.
    first, second = decoded("a", "1"), decoded("b", "1")
    assert first["metadata"]["namespace"] is not second["metadata"]["namespace"]
    cache = ObjectCache()
    cache.upsert(first)
    cache.upsert(second)
    a, b = cache.get(("ns", "a")), cache.get(("ns", "b"))
    assert a is not None and b is not None
    assert a["metadata"]["namespace"] is b["metadata"]["namespace"]
    assert a["spec"]["args"][1] is b["spec"]["args"][1]
    assert a["status"]["conditions"][0]["type"] is b["status"]["conditions"][0]["type"]
    key_a = next(k for k in a["metadata"]["labels"])
    key_b = next(k for k in b["metadata"]["labels"])
    assert key_a is key_b


def test_store_has_independent_caches() -> None:
    store = Store()
    store.apps.upsert(obj("a", "1"))
    assert store.deployments.get(("ns", "a")) is None
    caches = [
        store.apps,
        store.runtimes,
        store.deployments,
        store.services,
        store.autoscalers,
        store.runtime_classes,
        store.nodes,
    ]
    assert len({id(c) for c in caches}) == len(caches)


async def test_urgent_keys_are_served_before_normal_ones() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("status-a")
    queue.add("status-b")
    queue.add("new-app", urgent=True)
    assert [await queue.get() for _ in range(3)] == ["new-app", "status-a", "status-b"]


async def test_a_queued_key_is_promoted_once_and_served_once() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    queue.add("b")
    queue.add("b", urgent=True)
    queue.add("b")  # a normal request does not demote it
    assert queue.depth() == 2
    assert await queue.get() == "b"
    assert await queue.get() == "a"
    assert queue.depth() == 0 and queue._ready.qsize() == 1  # the superseded entry is left over
    queue.add("c")
    assert await queue.get() == "c"  # and is skipped, not served


async def test_urgency_survives_a_request_made_while_active() -> None:
    queue: WorkQueue[str] = WorkQueue()
    queue.add("a")
    assert await queue.get() == "a"
    queue.add("a", urgent=True)
    queue.add("z")
    queue.done("a")
    assert await queue.get() == "a"
