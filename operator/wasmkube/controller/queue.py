"""A keyed work queue with the semantics controllers rely on.

- A key waiting in the queue is queued once, however many events name it (events coalesce).
- A key is never processed by two workers at once; if it is added while being processed, it
  runs again right after (no lost update).
- Failures retry with capped exponential backoff and jitter, per key, so one broken app never
  slows the others.
- Two priorities: an urgent key (a spec nobody has acted on yet) is served before every normal
  one (status follow-ups, resyncs, retries). When a thousand apps arrive at once, each gets its
  Deployment before anyone's status is refreshed, as with controller-runtime's priority queue.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Hashable
from typing import Generic, TypeVar

BASE_DELAY_SECONDS = 0.5
MAX_DELAY_SECONDS = 300.0

K = TypeVar("K", bound=Hashable)

URGENT, NORMAL = 0, 1


class WorkQueue(Generic[K]):
    def __init__(self) -> None:
        # Entries are (priority, sequence, key); an entry whose sequence is no longer the key's
        # current one was superseded (the key was promoted to urgent) and is skipped.
        self._ready: asyncio.PriorityQueue[tuple[int, int, K]] = asyncio.PriorityQueue()
        self._sequence = itertools.count()
        self._queued: dict[K, tuple[int, int]] = {}  # key -> (priority, sequence) of its live entry
        self._active: set[K] = set()
        self._again: dict[K, int] = {}  # added while active: run again after, at this priority
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._failures: dict[K, int] = {}

    def add(self, key: K, *, urgent: bool = False) -> None:
        """Process `key` soon (coalescing with any pending request for it)."""
        priority = URGENT if urgent else NORMAL
        if key in self._active:
            self._again[key] = min(priority, self._again.get(key, NORMAL))
            return
        queued = self._queued.get(key)
        if queued is not None and queued[0] <= priority:
            return
        entry = (priority, next(self._sequence))
        self._queued[key] = entry
        self._ready.put_nowait((*entry, key))

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
        while True:
            priority, sequence, key = await self._ready.get()
            if self._queued.get(key) == (priority, sequence):
                break
        del self._queued[key]
        self._active.add(key)
        return key

    def done(self, key: K) -> None:
        self._active.discard(key)
        again = self._again.pop(key, None)
        if again is not None:
            self.add(key, urgent=again == URGENT)

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
        return len(self._queued)

    def idle(self) -> bool:
        return not self._queued and not self._active
