"""A keyed work queue with the semantics controllers rely on.

- A key waiting in the queue is queued once, however many events name it (events coalesce).
- A key is never processed by two workers at once; if it is added while being processed, it
  runs again right after (no lost update).
- Failures retry with capped exponential backoff and jitter, per key, so one broken app never
  slows the others.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Hashable
from typing import Generic, TypeVar

BASE_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 300.0

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        self._ready: asyncio.Queue[K] = asyncio.Queue()
        self._queued: set[K] = set()
        self._active: set[K] = set()
        self._again: set[K] = set()
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._failures: dict[K, int] = {}

    def add(self, key: K) -> None:
        """Process `key` soon (coalescing with any pending request for it)."""
        if key in self._active:
            self._again.add(key)
            return
        if key in self._queued:
            return
        self._queued.add(key)
        self._ready.put_nowait(key)

    def add_after(self, key: K, delay: float) -> None:
        """Process `key` after `delay` seconds; an earlier pending timer for it wins."""
        loop = asyncio.get_running_loop()
        existing = self._timers.get(key)
        due = loop.time() + delay
        if existing is not None and existing.when() <= due:
            return
        if existing is not None:
            existing.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> K:
        key = await self._ready.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: K) -> None:
        self._active.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)

    def retry(self, key: K) -> float:
        """Schedule a retry after a failure; returns the delay chosen."""
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        delay: float = min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2.0 ** (failures - 1))
        delay *= random.uniform(0.8, 1.2)
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        """The key succeeded: its next failure starts from the shortest delay again."""
        self._failures.pop(key, None)

    def drop(self, key: K) -> None:
        """The object is gone: cancel timers and forget it."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._failures.pop(key, None)

    def depth(self) -> int:
        return self._ready.qsize()

    def idle(self) -> bool:
        return not self._queued and not self._active
