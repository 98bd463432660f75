"""The resolver cache: TTL, single-flight, failure backoff — with a fake clock, no network."""

from __future__ import annotations

import asyncio

import pytest

from wasmkube.registry.cache import SingleFlightCache
from wasmkube.registry.errors import ArtifactUnavailable, NotFound


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingLoader:
    """Returns 'v1', 'v2', ... and remembers the stale values it was handed."""

    def __init__(self, delay: float = 0.0, fail: Exception | None = None) -> None:
        self.calls = 0
        self.stale_seen: list[str | None] = []
        self.delay = delay
        self.fail = fail

    async def __call__(self, stale: str | None) -> str:
        self.calls += 1
        self.stale_seen.append(stale)
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        return f"v{self.calls}"


async def test_values_are_reused_until_the_ttl_then_revalidated_with_the_stale_value() -> None:
    clock = Clock()
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=10, clock=clock)
    load = CountingLoader()
    assert await cache.get("k", load) == "v1"
    clock.now += 9.9
    assert await cache.get("k", load) == "v1"
    clock.now += 0.2
    assert await cache.get("k", load) == "v2"
    assert load.stale_seen == [None, "v1"]


async def test_concurrent_misses_share_one_load() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=10)
    load = CountingLoader(delay=0.05)
    results = await asyncio.gather(*(cache.get("k", load) for _ in range(100)))
    assert results == ["v1"] * 100
    assert load.calls == 1


async def test_force_bypasses_the_cache() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=10)
    load = CountingLoader()
    await cache.get("k", load)
    assert await cache.get("k", load, force=True) == "v2"


async def test_failures_are_remembered_with_exponential_backoff() -> None:
    clock = Clock()
    cache: SingleFlightCache[str, str] = SingleFlightCache(
        ttl=10, failure_backoff=1, max_failure_backoff=3, clock=clock
    )
    load = CountingLoader(fail=ArtifactUnavailable("down"))
    for expected_backoff in (1, 2, 3, 3):  # doubles, capped
        with pytest.raises(ArtifactUnavailable):
            await cache.get("k", load)
        calls = load.calls
        clock.now += expected_backoff - 0.01
        with pytest.raises(ArtifactUnavailable) as info:
            await cache.get("k", load)  # from memory
        assert load.calls == calls
        assert str(info.value) == "down"
        clock.now += 0.02
    load.fail = None
    assert await cache.get("k", load) == "v5"  # four failed loads, then this one


async def test_each_caller_gets_its_own_exception_instance() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=10)
    load = CountingLoader(delay=0.01, fail=NotFound("gone"))
    errors = await asyncio.gather(*(cache.get("k", load) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(e, NotFound) for e in errors)
    assert len({id(e) for e in errors}) == 3
    assert load.calls == 1


async def test_non_registry_errors_are_not_cached() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=10)
    load = CountingLoader(fail=RuntimeError("bug"))
    for _ in range(2):
        with pytest.raises(RuntimeError):
            await cache.get("k", load)
    assert load.calls == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_load() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=10)
    load = CountingLoader(delay=0.05)
    first = asyncio.ensure_future(cache.get("k", load))
    second = asyncio.ensure_future(cache.get("k", load))
    await asyncio.sleep(0.01)
    first.cancel()
    assert await second == "v1"
    assert load.calls == 1


async def test_zero_ttl_still_coalesces_but_never_caches() -> None:
    cache: SingleFlightCache[str, str] = SingleFlightCache(ttl=0)
    load = CountingLoader(delay=0.01)
    assert list(await asyncio.gather(cache.get("k", load), cache.get("k", load))) == ["v1", "v1"]
    assert await cache.get("k", load) == "v2"
    assert len(cache) == 0


async def test_entries_are_bounded() -> None:
    cache: SingleFlightCache[int, str] = SingleFlightCache(ttl=10, max_entries=3)
    for key in range(10):
        await cache.get(key, CountingLoader())
    assert len(cache) == 3
