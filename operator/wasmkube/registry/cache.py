"""A TTL cache with single-flight loading and failure backoff, for one asyncio event loop.

Why all three: the operator resolves an image for every reconcile of every WasmApp. With 1,000
apps on one image, a plain TTL cache still sends 1,000 requests at the moment it expires (all
miss together); single-flight makes them share one load. A registry that is down must not be
asked again by every reconcile either, so a failure is remembered for an exponentially growing
time (1 s, 2 s, 4 s ... up to a cap) and re-raised from memory meanwhile.

On expiry the loader is given the stale value, so it can revalidate cheaply (the resolver sends a
HEAD and keeps its classification when the digest has not moved).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from wasmkube.registry.errors import RegistryError

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Loader = Callable[[V | None], Awaitable[V]]
"""Loads a value; receives the expired value (or None) to allow revalidation."""


@dataclass(frozen=True)
class _Entry(Generic[V]):
    value: V | None
    expires_at: float  # value is fresh before this (monotonic seconds)
    error: RegistryError | None = None
    retry_at: float = 0.0  # the error is re-raised from memory before this
    failures: int = 0


class SingleFlightCache(Generic[K, V]):
    """Values and failures per key; concurrent misses of one key share a single load.

    Only :class:`RegistryError` failures are cached: anything else is a bug and propagates.
    The in-flight tasks belong to the running loop, so one instance serves one loop.
    """

    def __init__(
        self,
        *,
        ttl: float,
        failure_backoff: float = 1.0,
        max_failure_backoff: float = 60.0,
        max_entries: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._failure_backoff = failure_backoff
        self._max_failure_backoff = max_failure_backoff
        self._max_entries = max_entries
        self._clock = clock
        self._entries: dict[K, _Entry[V]] = {}
        self._inflight: dict[K, asyncio.Future[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: K, load: Loader[V], *, force: bool = False) -> V:
        """The cached value, a cached failure, or the result of a (shared) load.

        ``force`` skips both caches but still joins a load already in flight: that load started
        after the caller's decision to refresh was made, so its answer is fresh enough.
        """
        entry = self._entries.get(key)
        now = self._clock()
        if entry is not None and not force:
            if entry.value is not None and now < entry.expires_at:
                return entry.value
            if entry.error is not None and now < entry.retry_at:
                raise entry.error.copy()
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(self._load(key, load, entry.value if entry else None))
            self._inflight[key] = future
            future.add_done_callback(lambda done: self._finished(key, done))
        try:
            # shield: a cancelled caller must not cancel the load the other callers wait for
            return await asyncio.shield(future)
        except RegistryError as exc:
            raise exc.copy() from exc

    async def _load(self, key: K, load: Loader[V], stale: V | None) -> V:
        try:
            value = await load(stale)
        except RegistryError as exc:
            previous = self._entries.get(key)
            failures = (previous.failures if previous else 0) + 1
            backoff = min(self._failure_backoff * 2 ** (failures - 1), self._max_failure_backoff)
            self._store(key, _Entry(None, 0.0, exc, self._clock() + backoff, failures))
            raise
        if self._ttl > 0:
            self._store(key, _Entry(value, self._clock() + self._ttl))
        else:
            self._entries.pop(key, None)
        return value

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self._inflight.get(key) is done:
            del self._inflight[key]
        if not done.cancelled():
            done.exception()  # mark retrieved: every waiter may have been cancelled

    def _store(self, key: K, entry: _Entry[V]) -> None:
        self._entries.pop(key, None)  # re-insert at the end: dict order is our LRU order
        self._entries[key] = entry
        if len(self._entries) > self._max_entries:
            self._evict()

    def _evict(self) -> None:
        now = self._clock()
        for key in [k for k, e in self._entries.items() if e.expires_at <= now and e.retry_at <= now]:
            del self._entries[key]
        while len(self._entries) > self._max_entries:
            del self._entries[next(iter(self._entries))]
