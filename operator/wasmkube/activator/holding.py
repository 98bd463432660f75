"""Bounded holding: at most `maxPendingRequests` requests per app wait for a wake, per replica.

A burst at zero is held in full up to that bound; past it the activator answers 503 with
Retry-After at once, so memory and file descriptors stay bounded however hard a client pushes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wasmkube.clients.kube import Key


class Overflow(Exception):
    """The app already has as many held requests as it allows."""

    def __init__(self, key: Key, limit: int) -> None:
        super().__init__(f"{key[0]}/{key[1]} already holds {limit} requests (maxPendingRequests)")
        self.limit = limit


class Holding:
    def __init__(self) -> None:
        self._pending: dict[Key, int] = {}

    def count(self, key: Key) -> int:
        return self._pending.get(key, 0)

    def total(self) -> int:
        return sum(self._pending.values())

    def acquire(self, key: Key, limit: int) -> None:
        """Count one more held request for `key`; `Overflow` if it already holds `limit`."""
        current = self._pending.get(key, 0)
        if current >= limit:
            raise Overflow(key, limit)
        self._pending[key] = current + 1

    def release(self, key: Key) -> None:
        left = self._pending.get(key, 0) - 1
        if left > 0:
            self._pending[key] = left
        else:
            self._pending.pop(key, None)

    @contextmanager
    def hold(self, key: Key, limit: int) -> Iterator[None]:
        """Count one held request for `key` while the block runs; `Overflow` if it is full."""
        self.acquire(key, limit)
        try:
            yield
        finally:
            self.release(key)
